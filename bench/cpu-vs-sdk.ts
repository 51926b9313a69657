// Whole-process CPU per deleted key and throughput: the built `cos-retention purge` (packages/daemon/dist/bin.js, run
// with the V8 flags of its shebang, as users run it) against Tencent's cos-nodejs-sdk-v5 the way its documentation
// deletes a prefix (bench/sdk-purge.mjs, plain node), side by side in the same run. Each side gets a freshly seeded
// fake COS (`cos-fake`) in its own process; each client is its own process, timed whole by /usr/bin/time (user + sys
// CPU, start-up and module loading included).
//
//   pnpm build
//   node --conditions=source --import tsx bench/cpu-vs-sdk.ts [--keys 200000] [--latency 0,20] [--runs 3]
//     [--concurrency N] [--list-concurrency N]   (default: the CLI's own defaults)
//
// The purge runs with `--write-budget 10000000`: the fake has no write quota, and the region's default budget (30,000
// keys/s) would cap the run, not the client. Prints markdown tables and the ratios (median over runs, range in
// brackets); the last stdout line is JSON.
import { execFileSync, spawn } from "node:child_process"
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import {
  engineLayer,
  fakeBucket,
  fakeCredentials,
  fakePurgeArgs,
  fakeRegion,
  flag,
  root,
  startFake,
  table
} from "./purge-harness.js"

const keys = Number(flag("keys", "200000"))
const latencies = flag("latency", "0,20").split(",").map(Number)
const runs = Number(flag("runs", "3"))
const concurrency = flag("concurrency", "")
const listConcurrency = flag("list-concurrency", "")
const prefix = "bench/"
const bin = Path.join(root, "packages/daemon/dist/bin.js")
const log = (s: string) => process.stderr.write(`[cpu-vs-sdk] ${s}\n`)

/** The command that runs the built binary: itself if executable, else node with the V8 flags of its shebang. */
const binCommand = (): { readonly file: string; readonly args: ReadonlyArray<string>; readonly flags: string } => {
  let first: string
  try {
    first = readFileSync(bin, "utf8").split("\n", 1)[0]!
  } catch {
    throw new Error(`${bin} is missing: run pnpm build first`)
  }
  const shebang = /^#!\/usr\/bin\/env\s+(?:-S\s+)?node(.*)$/.exec(first)
  const flags = (shebang?.[1] ?? "").trim()
  try {
    accessSync(bin, constants.X_OK)
    return { file: bin, args: [], flags }
  } catch {
    return { file: process.execPath, args: [...flags.split(" ").filter((f) => f !== ""), bin], flags }
  }
}

/** Warns when a package's sources are newer than its build: the figures would be those of older code. */
const warnIfStale = () => {
  const newest = (dir: string): number => {
    let t = 0
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = Path.join(dir, e.name)
      t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
    }
    return t
  }
  for (const pkg of ["core", "daemon"]) {
    const src = newest(Path.join(root, "packages", pkg, "src"))
    let dist = 0
    try {
      dist = newest(Path.join(root, "packages", pkg, "dist"))
    } catch {
      // no build
    }
    if (src > dist) log(`warning: packages/${pkg}/src is newer than its dist: run pnpm build`)
  }
}

interface Timed {
  readonly wallS: number
  readonly cpuS: number
  readonly userS: number
  readonly sysS: number
  readonly maxRssMb: number
  readonly last: any
}

/** Runs a command under /usr/bin/time; its user + sys CPU, wall time, peak RSS and its last stdout line as JSON. */
const timed = (file: string, args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<Timed>((resolve, reject) => {
    const dir = mkdtempSync(Path.join(Os.tmpdir(), "cpu-vs-sdk-"))
    const out = Path.join(dir, "time")
    const child = spawn("/usr/bin/time", ["-f", "%e %U %S %M", "-o", out, file, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let stdout = ""
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      try {
        const [wall, user, sys, rssKb] = readFileSync(out, "utf8").trim().split("\n").pop()!.split(" ").map(Number)
        if (code !== 0) throw new Error(`exit ${code}`)
        const lines = stdout.trim().split("\n")
        resolve({
          wallS: wall!,
          userS: user!,
          sysS: sys!,
          cpuS: user! + sys!,
          maxRssMb: rssKb! / 1024,
          last: JSON.parse(lines[lines.length - 1]!)
        })
      } catch (e) {
        reject(new Error(`${file} ${args.join(" ")} failed (${String(e)}): ${stdout.slice(-2000)}`))
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })

/** Keys left under the prefix (one list request with the library). */
const remaining = async (endpoint: string): Promise<number> => {
  const { CosClient } = await import("../packages/core/src/index.js")
  const { Effect } = await import("effect")
  const layer = await engineLayer(endpoint)
  const page = await Effect.runPromise(
    Effect.provide(Effect.flatMap(CosClient.CosClient, (c) => c.listObjects({ prefix, maxKeys: 1000 })), layer)
  )
  return page.contents.length
}

type Side = "sdk" | "engine"

interface Measured {
  readonly side: Side
  readonly latency: number
  readonly deleted: number
  readonly left: number
  /** Whole process. */
  readonly wallS: number
  readonly cpuS: number
  readonly userS: number
  readonly sysS: number
  readonly maxRssMb: number
  /** Deletion phase only (the SDK's own timer; the engine's summary durationMs). */
  readonly phaseMs: number
  readonly serverCpuS: number
}

const env = { COS_SECRET_ID: fakeCredentials.secretId, COS_SECRET_KEY: fakeCredentials.secretKey }

const measure = async (side: Side, latency: number): Promise<Measured> => {
  const server = await startFake(["--seed", String(keys), "--seed-prefix", prefix, "--latency-ms", String(latency)])
  try {
    const cpu0 = server.cpuMs()
    let t: Timed
    let deleted: number
    let phaseMs: number
    if (side === "sdk") {
      t = await timed(process.execPath, [
        Path.join(root, "bench/sdk-purge.mjs"),
        server.url,
        fakeBucket,
        fakeRegion,
        prefix
      ], env)
      deleted = t.last.deleted
      phaseMs = t.last.ms
    } else {
      const cmd = binCommand()
      t = await timed(cmd.file, [
        ...cmd.args,
        ...fakePurgeArgs(server.url),
        "--prefix",
        prefix,
        "--yes",
        "--json",
        "--write-budget",
        "10000000",
        ...(concurrency === "" ? [] : ["--concurrency", concurrency]),
        ...(listConcurrency === "" ? [] : ["--list-concurrency", listConcurrency])
      ], env)
      if (t.last.failed !== 0) throw new Error(`purge: ${t.last.failed} keys failed`)
      deleted = t.last.deleted
      phaseMs = t.last.durationMs
    }
    const serverCpuS = (server.cpuMs() - cpu0) / 1000
    const left = await remaining(server.url)
    if (deleted !== keys || left !== 0) throw new Error(`${side}: deleted ${deleted} of ${keys}, ${left} left`)
    const { last: _, ...whole } = t
    return { side, latency, deleted, left, ...whole, phaseMs, serverCpuS }
  } finally {
    await server.stop()
  }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const spread = (xs: ReadonlyArray<number>, digits: number, fmt = (x: number) => x.toFixed(digits)) =>
  xs.length === 1 ? fmt(xs[0]!) : `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`
const int = (x: number) => Math.round(x).toLocaleString("en-US")

const main = async () => {
  warnIfStale()
  const cmd = binCommand()
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root }).toString().trim()
  const all: Array<Measured> = []
  for (const latency of latencies) {
    for (let r = 0; r < runs; r++) {
      // Alternate which side goes first, so that a drift in the machine's load does not favour one.
      const order: ReadonlyArray<Side> = r % 2 === 0 ? ["sdk", "engine"] : ["engine", "sdk"]
      for (const side of order) {
        log(`${latency} ms, run ${r + 1}/${runs}: ${side}`)
        all.push(await measure(side, latency))
      }
    }
  }
  const cpuPerKey = (m: Measured) => m.cpuS * 1e6 / keys
  const phaseRate = (m: Measured) => keys / (m.phaseMs / 1000)
  const wallRate = (m: Measured) => keys / m.wallS
  const label = { sdk: "cos-nodejs-sdk-v5 (page → batch, 5 in flight)", engine: "cos-retention purge (dist/bin.js)" }
  console.log(
    `\n### Whole-process CPU per key and throughput vs cos-nodejs-sdk-v5: ${int(keys)} keys, commit ${commit}\n\n` +
      `The built binary run as \`${cmd.flags === "" ? "node" : `node ${cmd.flags}`} dist/bin.js purge\` ` +
      `(concurrency ${concurrency || "default"}, list concurrency ${listConcurrency || "default"}, ` +
      `--write-budget 10000000) and bench/sdk-purge.mjs (plain node), each on a freshly seeded fake COS in its ` +
      `own process, ${runs} run${runs === 1 ? "" : "s"} each (median, range in brackets). CPU = user + sys of the ` +
      `whole client process (/usr/bin/time), start-up included; "deletion keys/s" times the deletion only (the ` +
      `SDK script's timer, the summary's durationMs), "process keys/s" the whole process.\n`
  )
  const rows: Array<Array<string | number>> = []
  const ratios: Array<Record<string, unknown>> = []
  for (const latency of latencies) {
    const of = (side: Side) => all.filter((m) => m.latency === latency && m.side === side)
    for (const side of ["sdk", "engine"] as const) {
      const ms = of(side)
      rows.push([
        latency,
        label[side],
        spread(ms.map(cpuPerKey), 1),
        spread(ms.map((m) => m.userS), 2),
        spread(ms.map((m) => m.sysS), 2),
        spread(ms.map(phaseRate), 0, int),
        spread(ms.map(wallRate), 0, int),
        spread(ms.map((m) => m.wallS), 2),
        spread(ms.map((m) => m.serverCpuS), 2),
        spread(ms.map((m) => m.maxRssMb), 0)
      ])
    }
    // Ratios run by run (the two sides of one run saw the same machine), then their median.
    const sdk = of("sdk")
    const engine = of("engine")
    const cpuRatio = sdk.map((s, i) => cpuPerKey(s) / cpuPerKey(engine[i]!))
    const phaseRatio = sdk.map((s, i) => phaseRate(engine[i]!) / phaseRate(s))
    const wallRatio = sdk.map((s, i) => wallRate(engine[i]!) / wallRate(s))
    ratios.push({
      latency,
      sdkCpuUsPerKey: median(sdk.map(cpuPerKey)),
      engineCpuUsPerKey: median(engine.map(cpuPerKey)),
      cpuRatio: median(cpuRatio),
      cpuRatios: cpuRatio,
      sdkKeysPerS: median(sdk.map(phaseRate)),
      engineKeysPerS: median(engine.map(phaseRate)),
      throughputRatio: median(phaseRatio),
      throughputRatios: phaseRatio,
      processThroughputRatio: median(wallRatio)
    })
  }
  console.log(table(
    [
      "latency ms",
      "client",
      "CPU µs/key",
      "user s",
      "sys s",
      "deletion keys/s",
      "process keys/s",
      "process s",
      "server CPU s",
      "peak RSS MB"
    ],
    rows
  ))
  console.log("")
  console.log(table(
    [
      "latency ms",
      "CPU per key, SDK ÷ purge",
      "deletion keys/s, purge ÷ SDK",
      "process keys/s, purge ÷ SDK"
    ],
    ratios.map((r) => [
      r.latency as number,
      `**${(r.cpuRatio as number).toFixed(2)}×** (${
        (r.cpuRatios as Array<number>).map((x) => x.toFixed(2)).join(", ")
      })`,
      `**${(r.throughputRatio as number).toFixed(2)}×** (${
        (r.throughputRatios as Array<number>).map((x) => x.toFixed(2)).join(", ")
      })`,
      `${(r.processThroughputRatio as number).toFixed(2)}×`
    ])
  ))
  console.log(
    "\nTargets (issue #11): CPU per key at 0 ms at least 4× lower than the SDK's; deletion throughput at 20 ms at " +
      "least 3× the SDK's."
  )
  console.log(JSON.stringify({ keys, runs, commit, ratios, runsMeasured: all }))
}

await main()
