// Builds the `cos-retention` executable: src/bin.ts and everything it imports (our packages, effect, @effect/*, yaml,
// croner, pg, ...) bundled by esbuild into dist/bin.js plus one file per lazily loaded part (each subcommand, the
// cluster mode, OpenTelemetry), all in dist/ beside bin.js. Node then reads a few dozen files instead of about 800
// modules, and only the code a command reaches: tree shaking drops what is never used (fast-check, for one, which
// effect/Schema would otherwise load). Two packages stay outside, loaded from node_modules, so they are dependencies of
// this package: better-sqlite3 (a native addon) and sorted-btree (the testkit, for `demo`, loads it with
// createRequire, which esbuild does not follow).
//
// `tsc -b` still type-checks src/ and emits only declarations (tsconfig.src.json: emitDeclarationOnly); the package
// has no library entry point, so nothing but this bundle is shipped (package.json "files").
//
//   node scripts/bundle.mjs            # run by `pnpm build` after tsc
//   BUNDLE_META=/tmp/meta.json node scripts/bundle.mjs   # also writes esbuild's metafile (what each chunk holds)
import * as esbuild from "esbuild"
import { existsSync, readdirSync, rmSync } from "node:fs"
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
if (process.env.BUNDLE_META) {
  ;(await import("node:fs")).writeFileSync(process.env.BUNDLE_META, JSON.stringify(result.metafile))
}
console.log(`dist/bin.js: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB`)
