// What the daemon's audit costs: `cos-retention purge` (no state) against `cos-retention once` (a rule selecting the
// same keys, every key's intent and confirmation recorded in the state), each on a freshly seeded fake COS in its own
// process, the two sides interleaved (their order alternating run by run), the same launch for both.
//
//   node --conditions=source --import tsx bench/audit-cost.ts [--keys 200000] [--latency 20] [--runs 3]
//     [--concurrency 16] [--list-concurrency 8] [--state sqlite|postgres://USER@HOST:PORT/DB] [--launch dist|tsx]
//     [--cpu-prof DIR] [--only purge|once]
//
// `--launch dist` (the default) runs the built binary (`pnpm build` first: node <shipped V8 flags>
// packages/daemon/dist/bin.js); `--launch tsx` runs the sources through tsx. Reported per side: keys/s of the engine
// (the summary's durationMs, first request to last) and of the whole process, and whole-process CPU (user + sys, from
// /usr/bin/time, start-up included) per deleted key; then once / purge. With a Postgres state, every `once` run gets
// its own fresh database (created and dropped through the URL's server). `--cpu-prof DIR` writes a V8 CPU profile of
// each client process there (bench/cpu-profile-summary.ts reads them).
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import {
  fakeBucket,
  fakeCredentials,
  fakePurgeArgs,
  fakeRegion,
  flag,
  root,
  shippedNodeFlags,
  startFake,
  table
} from "./purge-harness.js"

const keys = Number(flag("keys", "200000"))
const latency = Number(flag("latency", "20"))
const runs = Number(flag("runs", "3"))
const concurrency = Number(flag("concurrency", "16"))
const listConcurrency = Number(flag("list-concurrency", "8"))
const stateFlag = flag("state", "sqlite")
const launch = flag("launch", "dist")
const cpuProf = flag("cpu-prof", "")
/** `purge` or `once`: run that side alone (to profile or to compare builds); both by default. */
const only = flag("only", "")
const prefix = "bench/"

// keys two days old, selected on both sides by "older than one day" (a rule needs an age)
const seedArgs = ["--seed", String(keys), "--seed-prefix", prefix, "--seed-age-ms", String(2 * 86_400_000)]
  .concat(["--latency-ms", String(latency)])

const log = (s: string) => process.stderr.write(`[audit-cost] ${s}\n`)

const entry = launch === "dist"
  ? [...shippedNodeFlags, Path.join(root, "packages/daemon/dist/bin.js")]
  : [...shippedNodeFlags, "--conditions=source", "--import", "tsx", Path.join(root, "packages/daemon/src/bin.ts")]

interface Result {
  readonly side: "purge" | "once"
  readonly deleted: number
  /** First request to last (the engine's summary). */
  readonly engineMs: number
  /** The whole process, start-up included. */
  readonly wallMs: number
  /** User + system CPU of the whole process. */
  readonly cpuMs: number
}

/** Runs the CLI under /usr/bin/time; resolves with its stdout and its wall and CPU time. */
const timed = (args: ReadonlyArray<string>, env: Record<string, string>, tag: string) =>
  new Promise<{ stdout: string; stderr: string; code: number; wallMs: number; cpuMs: number }>((resolve, reject) => {
    const timeFile = Path.join(Os.tmpdir(), `audit-cost-time-${process.pid}-${tag}`)
    const profFlags = cpuProf === ""
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${cpuProf}`, `--cpu-prof-name=${tag}.cpuprofile`]
    const child = spawn("/usr/bin/time", [
      "-f",
      "%e %U %S",
      "-o",
      timeFile,
      process.execPath,
      ...profFlags,
      ...entry,
      ...args
    ], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      try {
        const [wall, user, sys] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number)
        rmSync(timeFile, { force: true })
        resolve({ stdout, stderr, code: code ?? -1, wallMs: wall! * 1000, cpuMs: (user! + sys!) * 1000 })
      } catch (e) {
        reject(new Error(`${args[0]} failed (${String(e)}): ${stdout}\n${stderr.slice(-2000)}`))
      }
    })
  })

const credentialsEnv = { COS_SECRET_ID: fakeCredentials.secretId, COS_SECRET_KEY: fakeCredentials.secretKey }

const purgeSide = async (run: number): Promise<Result> => {
  const server = await startFake(seedArgs)
  try {
    const r = await timed(
      [
        ...fakePurgeArgs(server.url),
        "--prefix",
        prefix,
        "--concurrency",
        String(concurrency),
        "--list-concurrency",
        String(listConcurrency),
        "--yes",
        "--json",
        "--progress",
        "off"
      ],
      credentialsEnv,
      `purge-${run}`
    )
    if (r.code !== 0) throw new Error(`purge exited ${r.code}: ${r.stdout}\n${r.stderr.slice(-2000)}`)
    const lines = r.stdout.trim().split("\n")
    const s = JSON.parse(lines[lines.length - 1]!) as { deleted: number; durationMs: number }
    return {
      side: "purge",
      deleted: s.deleted,
      engineMs: s.durationMs,
      wallMs: r.wallMs,
      cpuMs: r.cpuMs
    }
  } finally {
    await server.stop()
  }
}

/** A fresh state for one `once`: a SQLite file in a new directory, or a new database on the Postgres server. */
const freshState = async (run: number): Promise<{ readonly state: string; readonly drop: () => Promise<void> }> => {
  if (stateFlag === "sqlite") {
    const dir = mkdtempSync(Path.join(Os.tmpdir(), "audit-cost-"))
    return { state: Path.join(dir, "state.db"), drop: async () => rmSync(dir, { recursive: true, force: true }) }
  }
  const name = `audit_cost_${process.pid}_${run}`
  psql(`DROP DATABASE IF EXISTS ${name}`)
  psql(`CREATE DATABASE ${name}`)
  const url = new URL(stateFlag)
  url.pathname = `/${name}`
  return { state: url.toString(), drop: async () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
}

/** psql (PATH, else Debian's newest /usr/lib/postgresql/<version>/bin) against the --state server. */
const psql = (command: string) => {
  const dirs = existsSync("/usr/lib/postgresql")
    ? readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a))
    : []
  const bin = dirs.length > 0 ? Path.join("/usr/lib/postgresql", dirs[0]!, "bin", "psql") : "psql"
  execFileSync(bin, [stateFlag, "-v", "ON_ERROR_STOP=1", "-qc", command], { stdio: ["ignore", "ignore", "inherit"] })
}

const onceSide = async (run: number): Promise<Result> => {
  const server = await startFake(seedArgs)
  const { drop, state } = await freshState(run)
  const dir = mkdtempSync(Path.join(Os.tmpdir(), "audit-cost-config-"))
  try {
    const config = Path.join(dir, "retention.json")
    // JSON is YAML: the state path or URL is written as a JSON string
    writeFileSync(
      config,
      JSON.stringify({
        cos: { region: fakeRegion, endpoint: server.url },
        state,
        http: { enabled: false },
        rules: [{
          name: "bench",
          bucket: fakeBucket,
          prefix,
          olderThan: "1d",
          schedule: "0 3 * * *",
          concurrency,
          listConcurrency
        }]
      })
    )
    const r = await timed(["once", "--config", config, "--json", "--log-format", "json"], credentialsEnv, `once-${run}`)
    if (r.code !== 0) throw new Error(`once exited ${r.code}: ${r.stdout}\n${r.stderr.slice(-2000)}`)
    const rows = JSON.parse(r.stdout) as Array<{ deleted: number; summary: { durationMs: number } }>
    const row = rows[0]!
    return {
      side: "once",
      deleted: row.deleted,
      engineMs: row.summary.durationMs,
      wallMs: r.wallMs,
      cpuMs: r.cpuMs
    }
  } finally {
    await server.stop()
    await drop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const main = async () => {
  if (cpuProf !== "") mkdirSync(cpuProf, { recursive: true })
  const shownState = stateFlag === "sqlite" ? "sqlite" : "postgres"
  log(
    `${keys} keys, ${latency} ms, ${runs} runs, concurrency ${concurrency}, list concurrency ${listConcurrency}, ` +
      `state ${shownState}, launch ${launch}`
  )
  const results: Array<Result> = []
  for (let i = 0; i < runs; i++) {
    // alternate the order, so that neither side always runs on a warmer (or busier) machine
    const order = i % 2 === 0 ? [purgeSide, onceSide] : [onceSide, purgeSide]
    for (const side of order) {
      if (only !== "" && side !== (only === "purge" ? purgeSide : onceSide)) continue
      const r = await side(i)
      if (r.deleted !== keys) throw new Error(`${r.side} deleted ${r.deleted} of ${keys} keys`)
      log(
        `run ${i + 1} ${r.side}: engine ${(keys / r.engineMs * 1000).toFixed(0)} keys/s, ` +
          `process ${(keys / r.wallMs * 1000).toFixed(0)} keys/s, ${(r.cpuMs * 1000 / keys).toFixed(1)} µs CPU/key`
      )
      results.push(r)
    }
  }
  const stat = (side: Result["side"]) => {
    const rs = results.filter((r) => r.side === side)
    return {
      engine: median(rs.map((r) => keys / r.engineMs * 1000)),
      process: median(rs.map((r) => keys / r.wallMs * 1000)),
      cpu: median(rs.map((r) => r.cpuMs * 1000 / keys)),
      range: rs.map((r) => (keys / r.engineMs * 1000).toFixed(0)).join(", ")
    }
  }
  if (only !== "") {
    process.stdout.write(JSON.stringify({ keys, latency, runs, [only]: stat(only as Result["side"]), results }) + "\n")
    return
  }
  const p = stat("purge")
  const o = stat("once")
  const row = (name: string, s: ReturnType<typeof stat>) => [
    name,
    s.engine.toFixed(0),
    s.range,
    s.process.toFixed(0),
    s.cpu.toFixed(1)
  ]
  process.stdout.write(
    `\n${keys} keys at ${latency} ms, state ${shownState}, launch ${launch}, medians of ${runs} interleaved runs\n\n` +
      table(["side", "engine keys/s", "engine keys/s per run", "process keys/s", "CPU µs/key (process)"], [
        row("purge", p),
        row(`once (audit, ${shownState})`, o)
      ]) +
      `\n\nonce / purge: engine throughput ${(o.engine / p.engine).toFixed(3)}, ` +
      `process throughput ${(o.process / p.process).toFixed(3)}, CPU per key ${(o.cpu / p.cpu).toFixed(3)}\n`
  )
  process.stdout.write(
    JSON.stringify({ keys, latency, runs, state: shownState, launch, purge: p, once: o, results }) + "\n"
  )
}

main().catch((e) => {
  process.stderr.write(`${String(e instanceof Error ? e.stack : e)}\n`)
  process.exit(1)
})
