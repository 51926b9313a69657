// Builds the `cos-fake` executable: src/bin.ts and everything it imports (the fake, @effect-cos/core, effect,
// @effect/platform, @effect/platform-node, fast-xml-parser) bundled by esbuild into dist/bin.js, over the file tsc
// emitted there. Node then reads one file instead of several hundred modules: start-up CPU to "listening" drops from
// about 1.0 s to 0.2 s and peak RSS from 85 to 57 MB (README.md, "The cos-fake command"). The library (dist/index.js
// and the rest) stays tsc's output, importing effect and @effect-cos/core from node_modules, because a test's CosClient
// and Effect must be the application's own copies: that is why they are peer dependencies, which npm installs anyway,
// so bundling the command does not make the install lighter (the tarball grows from 124 to 500 KiB, the bundle and its
// source map).
//
// One package stays outside, loaded from node_modules: sorted-btree (src/internal/store.ts loads it with
// createRequire, which esbuild does not follow), a dependency of the library anyway. The build fails when the bundle
// loads anything that is not a dependency or peer dependency. The licences of the third-party code inside the bundle
// go into THIRD-PARTY-NOTICES.txt (shipped, see package.json "files").
//
//   node scripts/bundle.mjs            # run by `pnpm build` after tsc
import * as esbuild from "esbuild"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { loadedPackages, writeNotices } from "../../../scripts/bundle-support.mjs"

const dir = fileURLToPath(new URL("..", import.meta.url))

const result = await esbuild.build({
  absWorkingDir: dir,
  entryPoints: ["src/bin.ts"],
  outfile: "dist/bin.js",
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: ["sorted-btree"],
  // the CommonJS packages in the bundle call require() for Node's built-in modules
  banner: {
    js: "import { createRequire as __cosRequire } from \"node:module\"\nconst require = __cosRequire(import.meta.url)"
  },
  minifySyntax: true,
  minifyWhitespace: true,
  sourcemap: "linked",
  sourcesContent: false,
  legalComments: "eof",
  logLevel: "warning",
  allowOverwrite: true,
  metafile: true
})

const [, output] = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith(".js"))
const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})])
const undeclared = [...loadedPackages(result.metafile, dir)].filter((p) => !allowed.has(p))
if (undeclared.length > 0) {
  console.error(`bundle.mjs: dist/bin.js loads ${undeclared.join(", ")}, not a dependency of @effect-cos/testkit`)
  process.exit(1)
}
const notices = writeNotices(
  result.metafile,
  dir,
  "@effect-cos/testkit bundles the following third-party packages into dist/bin.js (the cos-fake command; the library\n" +
    "in the rest of dist/ imports them from node_modules)."
)
console.log(
  `dist/bin.js: ${(output.bytes / 1024).toFixed(0)} KiB; THIRD-PARTY-NOTICES.txt: ${notices} bundled packages`
)
