// Proves the packages work from the outside, as a user gets them: packs @effect-cos/core, testkit and daemon with
// `pnpm pack` (each package's prepack builds it), checks what the tarballs hold, installs them with plain npm into a
// fresh project outside the workspace (effect and the other peers from the npm registry), then:
//   - `cos-retention --version` (the package's version) and `--help`, `cos-fake --version`;
//   - the cos-retention bundle unpacked alone (only better-sqlite3 and sorted-btree beside it): `node dist/bin.js --help` and `demo`
//     without the shebang's flags, and an import of every chunk;
//   - an ESM program importing @effect-cos/core and @effect-cos/testkit purges a prefix on the in-process fake;
//   - `tsc --noEmit` of a TypeScript file against the installed types (module NodeNext, no skipLibCheck);
//   - `cos-retention demo` (the testkit loaded on demand);
//   - `cos-retention run` against `cos-fake`, stopped by SIGTERM and by SIGINT, and the systemd unit's ExecStart
//     (docs/daemon.md) stopped by SIGTERM: exit 0 within the grace period;
//   - `cos-retention purge` against `cos-fake`, stopped by SIGTERM / SIGINT: summary printed, exit 143 / 130.
//
//   node scripts/pack-smoke.mjs                 # everything, in a temporary directory removed at the end
//   node scripts/pack-smoke.mjs --install DIR   # pack and install into DIR (kept), no checks (for bench/)
//
// Exit status 0 when every check passed. Run by .ci/run before the test suite.
import { spawn, spawnSync } from "node:child_process"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(fileURLToPath(new URL("..", import.meta.url)))
const packages = ["core", "testkit", "daemon"]
const version = (name) => JSON.parse(readFileSync(join(root, "packages", name, "package.json"), "utf8")).version

const step = (text) => console.log(`\n> ${text}`)
const fail = (text) => {
  console.error(`pack-smoke: FAILED: ${text}`)
  process.exit(1)
}
const run = (cmd, args, options = {}) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...options })
  if (r.status !== 0) {
    fail(`${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}\n${r.stdout ?? ""}\n${r.stderr ?? ""}`)
  }
  return r.stdout ?? ""
}

/** Packs the three packages into `dir/tarballs`; returns the tarball paths (core, testkit, daemon). */
const pack = (dir) => {
  const out = join(dir, "tarballs")
  mkdirSync(out, { recursive: true })
  for (const name of packages) {
    run("pnpm", ["pack", "--pack-destination", out], { cwd: join(root, "packages", name) })
  }
  return packages.map((name) => join(out, `effect-cos-${name}-${version(name)}.tgz`))
}

/** What a tarball may hold: built JS, declarations, their maps, README, LICENSE, package.json. */
const allowed = /^package\/(README\.md|LICENSE|package\.json|dist\/.+\.(js|js\.map|d\.ts|d\.ts\.map))$/

const inspect = (tarball) => {
  const files = run("tar", ["tzf", tarball]).trim().split("\n")
  const unexpected = files.filter((f) => !allowed.test(f))
  if (unexpected.length > 0) fail(`${tarball} holds files users do not need: ${unexpected.join(", ")}`)
  for (const required of ["package/README.md", "package/LICENSE", "package/package.json"]) {
    if (!files.includes(required)) fail(`${tarball} has no ${required.slice("package/".length)}`)
  }
  const manifest = run("tar", ["xzf", tarball, "-O", "package/package.json"])
  if (manifest.includes("workspace:")) fail(`${tarball}: package.json still has a workspace: range`)
  const pkg = JSON.parse(manifest)
  if (JSON.stringify(pkg.exports ?? {}).includes("\"source\"")) {
    fail(`${tarball}: the "source" export condition (src/ is not shipped) leaked into the published package.json`)
  }
  for (const [bin, path] of Object.entries(pkg.bin ?? {})) {
    const text = run("tar", ["xzf", tarball, "-O", `package/${path.replace(/^\.\//, "")}`])
    if (!text.startsWith("#!/usr/bin/env ")) fail(`${tarball}: bin ${bin} has no shebang`)
  }
  const bytes = readFileSync(tarball).length
  console.log(`${tarball.split("/").pop()}: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB`)
}

/** A fresh npm project in `dir/app` with the tarballs, the peers and TypeScript installed. */
const install = (dir, tarballs) => {
  const app = join(dir, "app")
  mkdirSync(app, { recursive: true })
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "smoke", private: true, type: "module" }, null, 2))
  run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    "--prefer-offline",
    ...tarballs,
    "effect@3.22.4",
    "@effect/platform@0.97.2",
    "@effect/platform-node@0.108.2",
    "typescript@5.9.3",
    "@types/node@20.19.25"
  ], { cwd: app, stdio: ["ignore", "inherit", "inherit"] })
  return app
}

/** Spawns a command; collects stdout and stderr; `waitFor(regexp)` resolves when the output matches. */
const start = (cmd, args, options) => {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...options })
  let output = ""
  const waiters = []
  const onData = (d) => {
    output += d.toString()
    for (const w of [...waiters]) w()
  }
  child.stdout.on("data", onData)
  child.stderr.on("data", onData)
  const exit = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)))
  const waitFor = (re, ms = 30_000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}:\n${output}`)), ms)
      const check = () => {
        const m = re.exec(output)
        if (m !== null) {
          clearTimeout(timer)
          resolve(m)
        }
      }
      waiters.push(check)
      check()
      exit.then(() => {
        clearTimeout(timer)
        if (!re.test(output)) reject(new Error(`exited before ${re}:\n${output}`))
      })
    })
  return { child, exit, waitFor, output: () => output }
}

/**
 * The daemon's tarball holds a bundle (packages/daemon/scripts/bundle.mjs): dist/bin.js and its chunks need nothing
 * from node_modules but the bundle's two external dependencies, better-sqlite3 and sorted-btree. Unpacked alone, with
 * only those beside it, `node dist/bin.js` (no shebang, so Node's default heap) answers --help and runs demo, and every
 * chunk (the lazily loaded cluster mode, Postgres and OpenTelemetry parts too) imports.
 */
const checkBundle = (dir, app, daemonTarball) => {
  const alone = join(dir, "alone")
  mkdirSync(join(alone, "node_modules"), { recursive: true })
  run("tar", ["xzf", daemonTarball, "-C", alone])
  const pkg = join(alone, "package")
  const dist = join(pkg, "dist")
  const files = readdirSync(dist).filter((f) => f.endsWith(".js"))
  if (!files.includes("bin.js") || files.includes("Cli.js") || files.includes("main.js")) {
    fail(`the daemon's dist/ is not the bundle of scripts/bundle.mjs: ${files.join(", ")}`)
  }
  for (const external of ["better-sqlite3", "sorted-btree"]) {
    symlinkSync(join(app, "node_modules", external), join(alone, "node_modules", external), "dir")
  }
  const help = run(process.execPath, [join(dist, "bin.js"), "--help"], { cwd: alone })
  if (!help.includes("purge")) fail(`node dist/bin.js --help, unpacked alone:\n${help}`)
  const demo = run(process.execPath, [join(dist, "bin.js"), "demo"], { cwd: alone })
  if (!/expire-logs/.test(demo)) fail(`node dist/bin.js demo, unpacked alone, printed no rule:\n${demo}`)
  // bin.js and main-*.js start the command when imported; every other file only defines modules
  const chunks = files.filter((f) => f !== "bin.js" && !/^main-/.test(f))
  run(process.execPath, [
    "--input-type=module",
    "-e",
    `for (const f of ${JSON.stringify(chunks)}) await import(new URL(f, ${JSON.stringify(`file://${dist}/`)}).href)`
  ], { cwd: alone })
  console.log(`${files.length} files; --help, demo and an import of each of ${chunks.length} chunks work alone`)
}

const checks = async (dir, app, tarballs) => {
  const bin = (name) => join(app, "node_modules", ".bin", name)
  const daemonVersion = version("daemon")

  step("cos-retention --version, --help; cos-fake --version")
  const printed = run(bin("cos-retention"), ["--version"]).trim()
  if (printed !== daemonVersion) {
    fail(`cos-retention --version printed ${JSON.stringify(printed)}, not ${daemonVersion}`)
  }
  const help = run(bin("cos-retention"), ["--help"])
  for (const word of ["purge", "run", "validate", "demo"]) {
    if (!help.includes(word)) fail(`cos-retention --help does not mention ${word}:\n${help}`)
  }
  const fakeVersion = run(bin("cos-fake"), ["--version"]).trim()
  if (fakeVersion !== version("testkit")) fail(`cos-fake --version printed ${JSON.stringify(fakeVersion)}`)
  console.log(`cos-retention ${printed}, cos-fake ${fakeVersion}`)

  step("the cos-retention bundle unpacked alone: node dist/bin.js --help, demo, every chunk")
  checkBundle(dir, app, tarballs[2])

  step("an ESM program purges a prefix on the fake through the installed packages")
  writeFileSync(
    join(app, "purge.mjs"),
    `import { Deletion } from "@effect-cos/core"
import { CosFake, Store } from "@effect-cos/testkit"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const fake = yield* CosFake.CosFake
  yield* Store.seed(fake.store, { bucket: CosFake.testBucket, count: 2500, prefix: "tmp/" })
  yield* Store.seed(fake.store, { bucket: CosFake.testBucket, count: 10, prefix: "keep/" })
  const summary = yield* Deletion.purge({ prefix: "tmp/" })
  const left = yield* Store.keys(fake.store, CosFake.testBucket)
  return { deleted: summary.deleted, failed: summary.failed, left: left.length }
})

Effect.runPromise(Effect.provide(program, CosFake.layerWithClient())).then((r) => console.log(JSON.stringify(r)))
`
  )
  const purged = JSON.parse(run(process.execPath, ["purge.mjs"], { cwd: app }).trim())
  if (purged.deleted !== 2500 || purged.failed !== 0 || purged.left !== 10) {
    fail(`the ESM program's purge: ${JSON.stringify(purged)} (expected 2500 deleted, 10 left)`)
  }
  console.log(JSON.stringify(purged))

  step("tsc --noEmit against the installed types (module NodeNext, skipLibCheck off)")
  writeFileSync(
    join(app, "check.ts"),
    `import { CosClient, type CosError, Credentials, Deletion } from "@effect-cos/core"
import { CosFake, CosFakeServer, Faults } from "@effect-cos/testkit"
import { Effect, Layer, Redacted } from "effect"

export const purge: Effect.Effect<Deletion.Summary, CosError.CosError, CosClient.CosClient> = Deletion.purge({
  prefix: "logs/",
  olderThan: "30 days",
  exclude: ["logs/audit/**"],
  dryRun: true
})

export const live: Layer.Layer<CosClient.CosClient, CosError.CosInvalidRequest, never> = CosClient.layer({
  region: "ap-guangzhou",
  bucket: "examplebucket-1250000000",
  credentials: Credentials.fromStatic({ secretId: "id", secretKey: Redacted.make("key") })
}).pipe(Layer.provide(CosFake.layer()))

export const script = Faults.failNext("DeleteObjects", 2, "SlowDown")
export const server = CosFakeServer.start({ port: 0 })
export const count: Promise<number> = Effect.runPromise(
  Effect.provide(Effect.map(purge, (s) => s.matched), CosFake.layerWithClient())
)
`
  )
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify(
      {
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          noEmit: true,
          skipLibCheck: false,
          types: ["node"]
        },
        files: ["check.ts"]
      },
      null,
      2
    )
  )
  const tsc = spawnSync(process.execPath, [join(app, "node_modules", "typescript", "bin", "tsc"), "-p", app], {
    cwd: app,
    encoding: "utf8"
  })
  if (tsc.status !== 0) {
    const errors = tsc.stdout.split("\n").filter((l) => /error TS/.test(l))
    const ours = errors.filter((l) => !l.startsWith("node_modules/") || l.startsWith("node_modules/@effect-cos/"))
    if (ours.length > 0) fail(`tsc --noEmit:\n${tsc.stdout}`)
    console.log(`tsc: errors only outside our packages (not ours to fix):\n${errors.join("\n")}`)
  } else {
    console.log("tsc: no errors")
  }

  step("cos-retention demo")
  const demo = run(bin("cos-retention"), ["demo"], { cwd: app })
  if (!/expire-logs/.test(demo)) fail(`cos-retention demo printed no rule:\n${demo}`)
  console.log(demo.trim().split("\n").slice(-3).join("\n"))

  const credentials = { COS_SECRET_ID: "AKIDsmokeTest", COS_SECRET_KEY: "smoke-test-secret" }
  const fake = start(bin("cos-fake"), [
    "--port",
    "0",
    "--secret-id",
    credentials.COS_SECRET_ID,
    "--secret-key",
    credentials.COS_SECRET_KEY,
    "--latency-ms",
    "20",
    "--seed",
    "20000",
    "--seed-prefix",
    "logs/",
    "--seed-age-ms",
    String(40 * 86_400_000),
    "--stats"
  ], { cwd: app })
  try {
    const [, url] = await fake.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
    await fake.waitFor(/seeded \d+/)

    const grace = 10
    const config = join(dir, "retention.yaml")
    writeFileSync(
      config,
      `cos: { region: ap-guangzhou, endpoint: "${url}" }
state: ${join(dir, "state.db")}
http: { port: 0 }
gracePeriod: ${grace}s
rules:
  - name: expire-logs
    bucket: examplebucket-1250000000
    prefix: logs/
    olderThan: 30d
    schedule: "* * * * * *"
    concurrency: 2
`
    )
    const env = { ...process.env, ...credentials }
    // The systemd unit of docs/daemon.md runs the installed binary: its ExecStart, with our binary and config.
    const unit = readFileSync(join(root, "docs", "daemon.md"), "utf8")
    const execStart = /^ExecStart=(\S+) (.*)$/m.exec(unit)
    if (execStart === null || !execStart[1].endsWith("/cos-retention")) {
      fail(`docs/daemon.md: the unit's ExecStart does not run the installed cos-retention binary`)
    }
    const unitArgs = execStart[2].split(/\s+/).map((a) => (a.endsWith(".yaml") ? config : a))
    const daemonRuns = [
      ["cos-retention run --config F", ["run", "--config", config, "--log-format", "json"], "SIGTERM"],
      ["cos-retention run --config F", ["run", "--config", config, "--log-format", "json"], "SIGINT"],
      ["the systemd unit's ExecStart", unitArgs, "SIGTERM"]
    ]
    for (const [what, args, signal] of daemonRuns) {
      step(`${what} on cos-fake, stopped by ${signal}`)
      const daemon = start(bin("cos-retention"), args, { cwd: app, env })
      await daemon.waitFor(/"run started"/)
      const t0 = Date.now()
      daemon.child.kill(signal)
      const timer = setTimeout(() => daemon.child.kill("SIGKILL"), (grace + 5) * 1000)
      const code = await daemon.exit
      clearTimeout(timer)
      const seconds = (Date.now() - t0) / 1000
      if (code !== 0) fail(`${what} exited ${code} on ${signal}:\n${daemon.output().slice(-2000)}`)
      if (seconds > grace) fail(`${what} took ${seconds.toFixed(1)} s to stop (grace period ${grace} s)`)
      console.log(`stopped in ${seconds.toFixed(2)} s, exit 0`)
    }

    for (const [signal, expected] of [["SIGTERM", 143], ["SIGINT", 130]]) {
      step(`cos-retention purge on cos-fake, stopped by ${signal}`)
      const purge = start(bin("cos-retention"), [
        "purge",
        "--bucket",
        "examplebucket-1250000000",
        "--region",
        "ap-guangzhou",
        "--endpoint",
        url,
        "--prefix",
        "logs/",
        "--yes",
        "--concurrency",
        "1"
      ], { cwd: app, env })
      // the signal comes once the first batch delete reached the fake (its stats endpoint counts deleted keys)
      const deletedSoFar = async () => (await (await fetch(`${url}/_fake/stats`)).json()).deletedKeys
      const before = await deletedSoFar()
      for (let i = 0; i < 600 && (await deletedSoFar()) === before && purge.child.exitCode === null; i++) {
        await new Promise((r) => setTimeout(r, 50))
      }
      purge.child.kill(signal)
      const code = await purge.exit
      if (code !== expected) {
        fail(`cos-retention purge exited ${code} on ${signal}, not ${expected}:\n${purge.output()}`)
      }
      if (!/stopped early/i.test(purge.output())) fail(`purge printed no "stopped early" summary:\n${purge.output()}`)
      console.log(`exit ${code}; ${purge.output().trim().split("\n").slice(0, 1).join("")}`)
    }
  } finally {
    fake.child.kill("SIGTERM")
    await fake.exit
  }
}

const main = async () => {
  const keepAt = process.argv.indexOf("--install")
  const dir = keepAt >= 0 ?
    resolve(process.argv[keepAt + 1] ?? fail("--install needs a directory")) :
    mkdtempSync(join(tmpdir(), "effect-cos-pack-smoke-"))
  if (keepAt >= 0 && existsSync(join(dir, "app"))) rmSync(join(dir, "app"), { recursive: true, force: true })
  try {
    step("pnpm pack (prepack builds each package)")
    const tarballs = pack(dir)
    tarballs.forEach(inspect)
    step("npm install of the tarballs into a fresh project")
    const app = install(dir, tarballs)
    console.log(`installed in ${app}: ${readdirSync(join(app, "node_modules", "@effect-cos")).join(", ")}`)
    if (keepAt < 0) await checks(dir, app, tarballs)
    console.log("\npack-smoke: OK")
  } finally {
    if (keepAt < 0) rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => fail(e instanceof Error ? e.stack ?? e.message : String(e)))
