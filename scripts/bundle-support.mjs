// What the two esbuild bundles (packages/daemon/scripts/bundle.mjs: cos-retention; packages/testkit/scripts/bundle.mjs:
// cos-fake) check and write after a build, from esbuild's metafile:
//   - `loadedPackages`: the packages a bundle still loads from node_modules at run time (esbuild's externals and the
//     literal require() calls left in the output), so a package.json can list exactly those;
//   - `writeNotices`: THIRD-PARTY-NOTICES.txt, each package that contributes bytes to the bundle with its name,
//     version, declared licence and licence text (its LICENSE file, else its README's licence section).
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { join } from "node:path"

const builtin = new Set(builtinModules)
const packageOf = (spec) => spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/")

/** The package names the bundle's output files (paths relative to `dir`) load from node_modules at run time. */
export const loadedPackages = (metafile, dir) => {
  const loaded = new Set()
  for (const [file, output] of Object.entries(metafile.outputs)) {
    if (!file.endsWith(".js")) continue
    const specs = output.imports.filter((i) => i.external).map((i) => i.path)
    for (const m of readFileSync(join(dir, file), "utf8").matchAll(/\brequire\d*\("([^"]+)"\)/g)) specs.push(m[1])
    for (const spec of specs) {
      if (spec.startsWith("node:") || spec.startsWith(".") || builtin.has(spec.split("/")[0])) continue
      loaded.add(packageOf(spec))
    }
  }
  return loaded
}

const licenceText = (root) => {
  const file = readdirSync(root).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f))
  if (file !== undefined) return readFileSync(join(root, file), "utf8").trim()
  const readme = readdirSync(root).find((f) => /^readme(\.md)?$/i.test(f))
  const section = readme === undefined ?
    null :
    /^#+\s*licen[cs]e\s*\n([\s\S]*?)(?=^#|(?![\s\S]))/im.exec(readFileSync(join(root, readme), "utf8"))
  return section === null || section[1].trim() === "" ? null : `(from its README)\n${section[1].trim()}`
}

/**
 * Writes `dir/THIRD-PARTY-NOTICES.txt`, `intro` (a line saying what bundles them) then one entry per bundled package version (our own packages, core and testkit,
 * are this project's code under its licence). Returns the number of entries.
 */
export const writeNotices = (metafile, dir, intro) => {
  const bundled = new Map()
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const root = bytesInOutput > 0 ? /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1] : undefined
      if (root === undefined) continue
      const pkg = JSON.parse(readFileSync(join(dir, root, "package.json"), "utf8"))
      bundled.set(`${pkg.name}@${pkg.version}`, { pkg, root: join(dir, root) })
    }
  }
  const entries = [...bundled.values()].sort((a, b) => a.pkg.name === b.pkg.name ? 0 : a.pkg.name < b.pkg.name ? -1 : 1)
    .map(({ pkg, root }) => {
      const licence = typeof pkg.license === "string" ? pkg.license : pkg.license?.type ?? "not declared"
      const author = typeof pkg.author === "string" ? pkg.author : pkg.author?.name
      const text = licenceText(root) ??
        `The package ships no licence text; its package.json declares ${licence}${author ? `, author ${author}` : ""}.`
      return `${"-".repeat(80)}\n${pkg.name} ${pkg.version} (${licence})\n\n${text}\n`
    })
  writeFileSync(
    join(dir, "THIRD-PARTY-NOTICES.txt"),
    `${intro}
Each is listed with its version, its declared licence and its licence text.

${entries.join("\n")}`
  )
  return entries.length
}
