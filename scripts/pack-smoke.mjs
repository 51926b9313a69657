// Proves the packages work from the outside, as a user gets them: packs @effect-cos/core, testkit and daemon with
// `pnpm pack` (each package's prepack builds it), checks what the tarballs hold, installs them with plain npm outside
// the workspace: core and testkit into a fresh project `app` (effect and the other peers from the npm registry), the
// daemon alone into another, `alone`, so it gets only its own dependencies (better-sqlite3 and sorted-btree: the rest
// is in its bundle); then:
//   - `cos-retention --version` (the package's version) and `--help`, `cos-fake --version` (a bundle importing nothing
//     but Node's modules); both bundles' tarballs carry THIRD-PARTY-NOTICES.txt naming effect and its licence;
//   - beside the daemon, no effect and no other @effect-cos package; `node dist/bin.js --help` and `demo` without the
//     shebang's flags, an import of every chunk; `cos-retention purge` against `cos-fake` to its end (`--json`), and
//     `once` with a SQLite state file, then `history`;
//   - an ESM program importing @effect-cos/core and @effect-cos/testkit purges a prefix on the in-process fake;
//   - `tsc --noEmit` of a TypeScript file against the installed types (module NodeNext, no skipLibCheck);
//   - `cos-retention demo` (the testkit loaded on demand);
//   - `cos-retention run` against `cos-fake`, stopped by SIGTERM and by SIGINT, and the systemd unit's ExecStart
//     (docs/daemon.md) stopped by SIGTERM: exit 0 within the grace period;
//   - `cos-retention purge` against `cos-fake`, stopped by SIGTERM / SIGINT: summary printed, exit 143 / 130.
//
//   node scripts/pack-smoke.mjs                 # everything, in a temporary directory removed at the end
//   node scripts/pack-smoke.mjs --install DIR   # pack and install into DIR/app and DIR/alone (kept), no checks (bench/)
//
// Exit status 0 when every check passed. Run by .ci/run before the test suite.
import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
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

/** What a tarball may hold: built JS, declarations, their maps, README, LICENSE, package.json, bundled licences. */
const allowed =
  /^package\/(README\.md|LICENSE|THIRD-PARTY-NOTICES\.txt|package\.json|dist\/.+\.(js|js\.map|d\.ts|d\.ts\.map))$/

/**
 * The bundles hold third-party code (the daemon's cos-retention, the testkit's cos-fake): their tarballs carry
 * THIRD-PARTY-NOTICES.txt (each package's scripts/bundle.mjs writes it from the metafile), naming each bundled package
 * with its version and licence text, effect among them.
 */
const bundledNames = {
  "@effect-cos/daemon": ["yaml", "undici", "croner", "@effect/platform"],
  "@effect-cos/testkit": ["fast-xml-parser", "@effect/platform-node"]
}
const checkNotices = (tarball, files, pkg) => {
  if (!files.includes("package/THIRD-PARTY-NOTICES.txt")) fail(`${tarball} has no THIRD-PARTY-NOTICES.txt`)
  const notices = run("tar", ["xzf", tarball, "-O", "package/THIRD-PARTY-NOTICES.txt"])
  const effect = pkg.devDependencies.effect
  const entry = new RegExp(
    `^effect ${effect.replace(/\./g, "\\.")} \\(MIT\\)\\n\\nMIT License\\n[^]*?Permission is hereby`,
    "m"
  )
  if (!entry.test(notices)) fail(`THIRD-PARTY-NOTICES.txt has no entry with the licence of effect ${effect}`)
  for (const name of bundledNames[pkg.name]) {
    if (!new RegExp(`^${name} \\d`, "m").test(notices)) fail(`THIRD-PARTY-NOTICES.txt does not name ${name}`)
  }
  console.log(`THIRD-PARTY-NOTICES.txt: ${notices.match(/^-{80}$/gm)?.length ?? 0} bundled packages, effect ${effect}`)
}

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
  if (pkg.name in bundledNames) checkNotices(tarball, files, pkg)
  const bytes = readFileSync(tarball).length
  console.log(`${tarball.split("/").pop()}: ${files.length} files, ${(bytes / 1024).toFixed(0)} KiB`)
}

/** A fresh npm project in `dir/app` with the library tarballs (core, testkit), the peers and TypeScript installed. */
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

/** A fresh npm project in `dir/alone` with the daemon's tarball only: npm installs just its declared dependencies. */
const installAlone = (dir, daemonTarball) => {
  const alone = join(dir, "alone")
  mkdirSync(alone, { recursive: true })
  writeFileSync(join(alone, "package.json"), JSON.stringify({ name: "alone", private: true }, null, 2))
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefer-offline", daemonTarball], {
    cwd: alone,
    stdio: ["ignore", "inherit", "inherit"]
  })
  return alone
}

/**
 * The daemon's tarball holds a bundle (packages/daemon/scripts/bundle.mjs): dist/bin.js and its chunks need nothing
 * from node_modules but the bundle's two external dependencies, better-sqlite3 and sorted-btree, the package's only
 * `dependencies`. Installed alone, nothing else of ours or of Effect's is beside it; `node dist/bin.js` (no shebang, so
 * Node's default heap) answers --help and runs demo, and every chunk (the lazily loaded cluster mode, Postgres and
 * OpenTelemetry parts too) imports.
 */
const checkBundle = (alone) => {
  const pkg = join(alone, "node_modules", "@effect-cos", "daemon")
  const deps = Object.keys(JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).dependencies ?? {}).sort()
  if (deps.join(",") !== "better-sqlite3,sorted-btree") fail(`the daemon's dependencies: ${deps.join(", ")}`)
  const ours = readdirSync(join(alone, "node_modules", "@effect-cos"))
  const stray = ["effect", "@effect", "yaml", "pg", "undici"].filter((p) => existsSync(join(alone, "node_modules", p)))
  if (ours.join(",") !== "daemon" || stray.length > 0) {
    fail(`installing the daemon alone brought more than its dependencies: @effect-cos/${ours.join(", ")} ${stray}`)
  }
  const top = readdirSync(join(alone, "node_modules")).filter((f) => !f.startsWith("."))
  console.log(`node_modules: ${top.length} packages (better-sqlite3 and what it needs to install, sorted-btree)`)
  const dist = join(pkg, "dist")
  const files = readdirSync(dist).filter((f) => f.endsWith(".js"))
  if (!files.includes("bin.js") || files.includes("Cli.js") || files.includes("main.js")) {
    fail(`the daemon's dist/ is not the bundle of scripts/bundle.mjs: ${files.join(", ")}`)
  }
  const help = run(process.execPath, [join(dist, "bin.js"), "--help"], { cwd: alone })
  if (!help.includes("purge")) fail(`node dist/bin.js --help, installed alone:\n${help}`)
  const demo = run(process.execPath, [join(dist, "bin.js"), "demo"], { cwd: alone })
  if (!/expire-logs/.test(demo)) fail(`node dist/bin.js demo, installed alone, printed no rule:\n${demo}`)
  // bin.js and main-*.js start the command when imported; every other file only defines modules
  const chunks = files.filter((f) => f !== "bin.js" && !/^main-/.test(f))
  run(process.execPath, [
    "--input-type=module",
    "-e",
    `for (const f of ${JSON.stringify(chunks)}) await import(new URL(f, ${JSON.stringify(`file://${dist}/`)}).href)`
  ], { cwd: alone })
  console.log(`${files.length} files; --help, demo and an import of each of ${chunks.length} chunks work alone`)
}

/** The daemon installed alone deletes for real: `purge` to the end, then `once` with a SQLite state file. */
const checkAloneOnFake = async (dir, alone, fakeBin) => {
  const bin = join(alone, "node_modules", ".bin", "cos-retention")
  const help = run(bin, ["--help"], { cwd: alone })
  if (!help.includes("purge")) fail(`cos-retention --help, installed alone:\n${help}`)
  const credentials = { COS_SECRET_ID: "AKIDsmokeAlone", COS_SECRET_KEY: "smoke-alone-secret" }
  const env = { ...process.env, ...credentials }
  const fake = start(fakeBin, [
    "--port",
    "0",
    "--secret-id",
    credentials.COS_SECRET_ID,
    "--secret-key",
    credentials.COS_SECRET_KEY,
    "--seed",
    "3000",
    "--seed-prefix",
    "old/",
    "--seed-age-ms",
    String(40 * 86_400_000),
    "--stats"
  ], { cwd: alone })
  try {
    const [, url] = await fake.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
    await fake.waitFor(/seeded \d+/)
    const bucket = ["--bucket", "examplebucket-1250000000", "--region", "ap-guangzhou", "--endpoint", url]
    const purge = spawnSync(bin, ["purge", ...bucket, "--prefix", "old/", "--max-deletes", "1000", "--yes", "--json"], {
      cwd: alone,
      env,
      encoding: "utf8"
    })
    const summary = JSON.parse(purge.stdout.trim().split("\n").pop() ?? "{}")
    if (purge.status !== 3 || summary.deleted !== 1000 || summary.stoppedBy !== "maxDeletes") {
      fail(
        `cos-retention purge --max-deletes 1000, installed alone: exit ${purge.status}\n${purge.stdout}${purge.stderr}`
      )
    }
    console.log(`purge: exit 3, deleted ${summary.deleted}, stopped by ${summary.stoppedBy}`)
    const config = join(dir, "alone.yaml")
    const state = join(dir, "alone.db")
    writeFileSync(
      config,
      `cos: { region: ap-guangzhou, endpoint: "${url}" }
state: ${state}
rules:
  - name: expire-old
    bucket: examplebucket-1250000000
    prefix: old/
    olderThan: 30d
    schedule: "0 3 * * *"
`
    )
    const once = spawnSync(bin, ["once", "--config", config], { cwd: alone, env, encoding: "utf8" })
    const stats = await (await fetch(`${url}/_fake/stats`)).json()
    if (once.status !== 0 || stats.deletedKeys !== 3000 || !existsSync(state)) {
      fail(
        `cos-retention once (SQLite), installed alone: exit ${once.status}, ${stats.deletedKeys} keys deleted in all\n${once.stdout}${once.stderr}`
      )
    }
    const history = run(bin, ["history", "--config", config], { cwd: alone, env })
    if (!history.includes("expire-old")) fail(`cos-retention history shows no run of expire-old:\n${history}`)
    console.log(`once: exit 0, the other 2000 deleted; the run is in ${state.split("/").pop()} (history)`)
  } finally {
    fake.child.kill("SIGTERM")
    await fake.exit
  }
}

const checks = async (dir, app, alone) => {
  const bin = (name) => join(name === "cos-retention" ? alone : app, "node_modules", ".bin", name)
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
  // cos-fake is one esbuild bundle (packages/testkit/scripts/bundle.mjs): it imports nothing but Node's modules
  const fakeBin = readFileSync(join(app, "node_modules", "@effect-cos", "testkit", "dist", "bin.js"), "utf8")
  const fakeImports = [...fakeBin.matchAll(/(?<![\w$"'.])(?:from\s*|import\()"([^"\s,]+)"/g)].map((m) => m[1])
  if (fakeImports.some((spec) => !spec.startsWith("node:"))) {
    fail(`cos-fake's dist/bin.js is not a bundle: it imports ${fakeImports.filter((s) => !s.startsWith("node:"))}`)
  }
  console.log(`cos-retention ${printed}, cos-fake ${fakeVersion}`)

  step("the daemon's tarball installed alone: its dependencies only; node dist/bin.js --help, demo, every chunk")
  checkBundle(alone)

  step("the daemon installed alone on cos-fake: purge --json, once with SQLite state, history")
  await checkAloneOnFake(dir, alone, bin("cos-fake"))

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
  for (const sub of keepAt >= 0 ? ["app", "alone"] : []) rmSync(join(dir, sub), { recursive: true, force: true })
  try {
    step("pnpm pack (prepack builds each package)")
    const tarballs = pack(dir)
    tarballs.forEach(inspect)
    step("npm install of the library tarballs (core, testkit) into a fresh project, the daemon's into another")
    const app = install(dir, tarballs.slice(0, 2))
    console.log(`installed in ${app}: ${readdirSync(join(app, "node_modules", "@effect-cos")).join(", ")}`)
    const alone = installAlone(dir, tarballs[2])
    console.log(`installed in ${alone}: ${readdirSync(join(alone, "node_modules", "@effect-cos")).join(", ")}`)
    if (keepAt < 0) await checks(dir, app, alone)
    console.log("\npack-smoke: OK")
  } finally {
    if (keepAt < 0) rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => fail(e instanceof Error ? e.stack ?? e.message : String(e)))
