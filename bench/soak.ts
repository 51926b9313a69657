// Soak: the daemon (`cos-retention run`, its own process) with a rule firing every 3 seconds against `cos-fake` (its
// own process), objects put back between runs so that every run deletes something, for a bounded time. Every second
// the daemon's RSS (/proc/PID/status VmRSS) and open file descriptors (/proc/PID/fd) are sampled; the report gives
// start, end, max and the least-squares slope after a warm-up. Flat (slopes under the limits) = pass.
//
//   node --conditions=source --import tsx bench/soak.ts [--seconds 60] [--keys-per-cycle 2000] [--json]
//
// With --json the last stdout line is the result as JSON (bench/run.ts reads it).
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fakeBucket, fakeCredentials, fakeRegion, flag, root, startFake, table } from "./purge-harness.js"

const seconds = Number(flag("seconds", "60"))
const keysPerCycle = Number(flag("keys-per-cycle", "2000"))
const json = process.argv.includes("--json")
/** The daemon's first seconds (tsx compiling the sources, the first runs) are not part of the trend. */
const warmupSeconds = Math.min(20, Math.floor(seconds / 3))
/** Pass limits: RSS may not grow faster than this after the warm-up, nor may descriptors accumulate. */
const rssSlopeLimitMbPerMin = 3
const fdGrowthLimit = 3

export interface SoakResult {
  readonly seconds: number
  readonly warmupSeconds: number
  readonly runs: number
  /** Runs that did not succeed. */
  readonly failedRuns: number
  readonly deleted: number
  readonly put: number
  readonly left: number
  readonly rss: { readonly start: number; readonly end: number; readonly max: number; readonly slopePerMin: number }
  readonly fds: { readonly start: number; readonly end: number; readonly max: number; readonly slopePerMin: number }
  readonly samples: ReadonlyArray<{ readonly t: number; readonly rssMb: number; readonly fds: number }>
  readonly pass: boolean
}

const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m ? Number(m[1]) / 1024 : Number.NaN
}
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length

/** Least-squares slope of y over x. */
const slope = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>) => {
  const n = xs.length
  if (n < 2) return 0
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my)
    den += (xs[i]! - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}

/** Puts `count` empty objects under soak/ (the fake runs with --no-auth, so plain unsigned PUTs). */
const putObjects = async (url: string, cycle: number, count: number) => {
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      const res = await fetch(`${url}/soak/${cycle}/${String(i).padStart(6, "0")}.log`, { method: "PUT", body: "x" })
      await res.arrayBuffer()
      if (!res.ok) throw new Error(`PUT answered ${res.status}`)
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
}

const countLeft = async (url: string) => {
  let n = 0
  let marker = ""
  for (;;) {
    const body = await (await fetch(`${url}/?prefix=soak/&max-keys=1000&marker=${encodeURIComponent(marker)}`)).text()
    const keys = [...body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!)
    n += keys.length
    if (!body.includes("<IsTruncated>true</IsTruncated>") || keys.length === 0) return n
    marker = keys[keys.length - 1]!
  }
}

const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode)
    child.once("exit", (code) => resolve(code))
    child.kill("SIGTERM")
  })

export const soak = async (): Promise<SoakResult> => {
  const fake = await startFake(["--no-auth"])
  const dir = mkdtempSync(Path.join(tmpdir(), "cos-retention-soak-"))
  let daemon: ChildProcess | undefined
  try {
    const config = Path.join(dir, "retention.yaml")
    writeFileSync(
      config,
      `cos: { region: ${fakeRegion}, endpoint: "${fake.url}" }
state: ${Path.join(dir, "state.db")}
http: { enabled: false }
rules:
  - name: soak
    bucket: ${fakeBucket}
    prefix: soak/
    olderThan: 1s
    schedule: "*/3 * * * * *"
`
    )
    let put = 0
    await putObjects(fake.url, 0, keysPerCycle)
    put += keysPerCycle
    daemon = spawn(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        "packages/daemon/src/bin.ts",
        "run",
        "--config",
        config,
        "--log-format",
        "json"
      ],
      {
        cwd: root,
        env: { ...process.env, COS_SECRET_ID: fakeCredentials.secretId, COS_SECRET_KEY: fakeCredentials.secretKey },
        stdio: ["ignore", "ignore", "pipe"]
      }
    )
    const pid = daemon.pid!
    let runs = 0
    let deleted = 0
    let failedRuns = 0
    let seen = 0
    let buffer = ""
    daemon.stderr!.on("data", (d: Buffer) => {
      buffer += d.toString()
      let i
      while ((i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i)
        buffer = buffer.slice(i + 1)
        try {
          const entry = JSON.parse(line) as Record<string, any>
          const message = String(entry["message"] ?? "")
          if (/^run (succeeded|failed|interrupted)/.test(message)) {
            runs++
            if (!message.startsWith("run succeeded")) failedRuns++
            deleted += Number(entry["deleted"] ?? entry["annotations"]?.["deleted"] ?? 0)
          }
        } catch {
          // not a log line
        }
      }
    })
    const samples: Array<{ t: number; rssMb: number; fds: number }> = []
    const t0 = performance.now()
    let cycle = 1
    while (performance.now() - t0 < seconds * 1000) {
      if (daemon.exitCode !== null) throw new Error(`the daemon exited with ${daemon.exitCode}`)
      samples.push({ t: (performance.now() - t0) / 1000, rssMb: rssMb(pid), fds: fdCount(pid) })
      // after each completed run, put the next batch of objects back
      if (runs > seen) {
        seen = runs
        await putObjects(fake.url, cycle++, keysPerCycle)
        put += keysPerCycle
      }
      const wait = 1000 - ((performance.now() - t0) % 1000)
      await new Promise((r) => setTimeout(r, wait))
    }
    const code = await stop(daemon)
    if (code !== 0) throw new Error(`the daemon exited with ${code} on SIGTERM`)
    const left = await countLeft(fake.url)
    const after = samples.filter((s) => s.t >= warmupSeconds)
    // start = the first sample after the warm-up; max over the whole run
    const stats = (ys: ReadonlyArray<number>) => {
      const tail = ys.slice(ys.length - after.length)
      return {
        start: tail[0]!,
        end: tail[tail.length - 1]!,
        max: Math.max(...ys),
        slopePerMin: slope(after.map((s) => s.t), tail) * 60
      }
    }
    const rss = stats(samples.map((s) => s.rssMb))
    const fds = stats(samples.map((s) => s.fds))
    const fdAfterWarmup = after.map((s) => s.fds)
    const pass = failedRuns === 0 && runs > 0 && after.length >= 2 && rss.slopePerMin < rssSlopeLimitMbPerMin &&
      Math.max(...fdAfterWarmup) - fdAfterWarmup[0]! <= fdGrowthLimit
    return { seconds, warmupSeconds, runs, failedRuns, deleted, put, left, rss, fds, samples, pass }
  } finally {
    if (daemon !== undefined) await stop(daemon)
    await fake.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const r = await soak()
console.log(
  `\n### soak: cos-retention run, rule every 3 s, ${keysPerCycle} objects put back after each run, ${r.seconds} s\n`
)
console.log(
  table(["measure", `at ${r.warmupSeconds} s (after warm-up)`, "end", "max", "slope after warm-up (per min)"], [
    ["daemon RSS MB", r.rss.start.toFixed(1), r.rss.end.toFixed(1), r.rss.max.toFixed(1), r.rss.slopePerMin.toFixed(2)],
    ["open file descriptors", r.fds.start, r.fds.end, r.fds.max, r.fds.slopePerMin.toFixed(2)]
  ])
)
console.log(
  `\nruns ${r.runs} (${r.failedRuns} not succeeded), keys deleted ${r.deleted} of ${r.put} put (${r.left} left under soak/ at the end), ` +
    `limits: RSS slope < ${rssSlopeLimitMbPerMin} MB/min, descriptors +${fdGrowthLimit} at most: ` +
    (r.pass ? "FLAT (pass)" : "NOT FLAT (fail)")
)
if (!r.pass) process.exitCode = 1
if (json) console.log(JSON.stringify(r))
