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
// "files"), written from the metafile at each build (scripts/bundle-support.mjs, shared with the testkit's cos-fake
// bundle): every package that contributes bytes to an output file, with its name, version, declared licence and
// licence text (its LICENSE file, else the README's licence section).
//
// `tsc -b` still type-checks src/ and emits only declarations (tsconfig.src.json: emitDeclarationOnly); the package
// has no library entry point, so nothing but this bundle is shipped (package.json "files").
//
//   node scripts/bundle.mjs            # run by `pnpm build` after tsc
//   BUNDLE_META=/tmp/meta.json node scripts/bundle.mjs   # also writes esbuild's metafile (what each chunk holds)
import * as esbuild from "esbuild"
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { loadedPackages, writeNotices } from "../../../scripts/bundle-support.mjs"

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

// What the bundle loads from node_modules at run time (besides these optional requires) must be the dependencies.
const optional = {
  "pg-native": "pg's native bindings, only reached through pg.native, which @effect/sql-pg never uses",
  "bufferutil": "an optional speed-up of ws, required inside try/catch",
  "utf-8-validate": "an optional speed-up of ws, required inside try/catch"
}
const loaded = loadedPackages(result.metafile, dir)
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

const notices = writeNotices(
  result.metafile,
  dir,
  "@effect-cos/daemon bundles the following third-party packages into dist/ (scripts/bundle.mjs)."
)
console.log(`THIRD-PARTY-NOTICES.txt: ${notices} bundled packages`)
