// Builds the `cos-retention` executable: src/bin.ts and everything it imports (our packages, effect, @effect/*, yaml,
// croner, pg, ...) bundled by esbuild into dist/bin.js plus one file per lazily loaded part (each subcommand, the
// cluster mode, OpenTelemetry), all in dist/ beside bin.js. Node then reads a few dozen files instead of about 800
// modules, and only the code a command reaches: tree shaking drops what is never used (fast-check, for one, which
// effect/Schema would otherwise load). Two packages stay outside, loaded from node_modules, and they are the package's
// only `dependencies`: better-sqlite3 (a native addon) and sorted-btree (the testkit, for `demo`, loads it with
// createRequire, which esbuild does not follow). Everything else the source imports is a devDependency (bundled). The
// build fails when the bundle loads a package that is not a dependency, or a dependency is no longer loaded.
//
// The licences of the third-party code inside the bundle go into THIRD-PARTY-NOTICES.txt (shipped, see package.json
// "files"), written from the metafile at each build: every package that contributes bytes to an output file, with its
// name, version, declared licence and licence text (its LICENSE file, else the README's licence section).
//
// `tsc -b` still type-checks src/ and emits only declarations (tsconfig.src.json: emitDeclarationOnly); the package
// has no library entry point, so nothing but this bundle is shipped (package.json "files").
//
//   node scripts/bundle.mjs            # run by `pnpm build` after tsc
//   BUNDLE_META=/tmp/meta.json node scripts/bundle.mjs   # also writes esbuild's metafile (what each chunk holds)
import * as esbuild from "esbuild"
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const dir = fileURLToPath(new URL("..", import.meta.url))
const out = join(dir, "dist")

// what an earlier build left (chunk names carry a content hash)
for (const file of existsSync(out) ? readdirSync(out) : []) {
  if (/\.js(\.map)?$/.test(file)) rmSync(join(out, file))
}

const result = await esbuild.build({
  absWorkingDir: dir,
  entryPoints: ["src/bin.ts"],
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  // flat, so that `new URL("../package.json", import.meta.url)` (src/version.ts) finds the package from every chunk
  chunkNames: "[name]-[hash]",
  external: ["better-sqlite3", "pg-native"],
  // the CommonJS packages in the bundle (yaml, pg, picomatch, ...) call require() for Node's built-in modules
  banner: {
    js: "import { createRequire as __cosRequire } from \"node:module\"\nconst require = __cosRequire(import.meta.url)"
  },
  minifySyntax: true,
  minifyWhitespace: true,
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "eof",
  logLevel: "warning",
  metafile: true
})

const files = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith(".js"))
const bytes = files.reduce((n, [, o]) => n + o.bytes, 0)
if (process.env.BUNDLE_META) writeFileSync(process.env.BUNDLE_META, JSON.stringify(result.metafile))
console.log(`dist/bin.js: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB`)

// What the bundle loads from node_modules at run time: esbuild's externals (import statements) and the literal
// require() calls left in the output (createRequire in the testkit, CommonJS packages' optional requires).
const optional = {
  "pg-native": "pg's native bindings, only reached through pg.native, which @effect/sql-pg never uses",
  "bufferutil": "an optional speed-up of ws, required inside try/catch",
  "utf-8-validate": "an optional speed-up of ws, required inside try/catch"
}
const builtin = new Set(builtinModules)
const packageOf = (spec) => spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/")
const loaded = new Set()
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (!file.endsWith(".js")) continue
  const specs = output.imports.filter((i) => i.external).map((i) => i.path)
  for (const m of readFileSync(join(dir, file), "utf8").matchAll(/\brequire\d*\("([^"]+)"\)/g)) specs.push(m[1])
  for (const spec of specs) {
    if (spec.startsWith("node:") || spec.startsWith(".") || builtin.has(spec.split("/")[0])) continue
    loaded.add(packageOf(spec))
  }
}
const declared = Object.keys(JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).dependencies ?? {})
const undeclared = [...loaded].filter((p) => !declared.includes(p) && !(p in optional))
const unused = declared.filter((p) => !loaded.has(p))
if (undeclared.length > 0 || unused.length > 0) {
  console.error(
    `bundle.mjs: package.json "dependencies" must be exactly what the bundle loads at run time (${
      [...loaded].filter((p) => !(p in optional)).join(", ")
    }):` +
      (undeclared.length > 0 ? ` add ${undeclared.join(", ")};` : "") +
      (unused.length > 0 ? ` move ${unused.join(", ")} to devDependencies (bundled or unused)` : "")
  )
  process.exit(1)
}
console.log(`loaded from node_modules at run time: ${declared.join(", ")}`)

// THIRD-PARTY-NOTICES.txt: one entry per bundled package version (our own packages, core and testkit, are this
// project's code under its licence)
const licenceText = (root) => {
  const file = readdirSync(root).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f))
  if (file !== undefined) return readFileSync(join(root, file), "utf8").trim()
  const readme = readdirSync(root).find((f) => /^readme(\.md)?$/i.test(f))
  const section = readme === undefined ?
    null :
    /^#+\s*licen[cs]e\s*\n([\s\S]*?)(?=^#|(?![\s\S]))/im.exec(readFileSync(join(root, readme), "utf8"))
  return section === null || section[1].trim() === "" ? null : `(from its README)\n${section[1].trim()}`
}
const bundled = new Map()
for (const output of Object.values(result.metafile.outputs)) {
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
  `@effect-cos/daemon bundles the following third-party packages into dist/ (scripts/bundle.mjs).
Each is listed with its version, its declared licence and its licence text.

${entries.join("\n")}`
)
console.log(`THIRD-PARTY-NOTICES.txt: ${entries.length} bundled packages`)
