// Shared plumbing of the purge benchmarks: the fake COS as a separate process, clients as child processes, tables.
import type * as Layer from "effect/Layer"
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import type { CosClient, CosError } from "../packages/core/src/index.js"

export const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

/** The V8 memory flags the root package.json's `cos-retention` script runs with: the CLI as shipped. */
export const shippedNodeFlags: ReadonlyArray<string> = (() => {
  const pkg = JSON.parse(readFileSync(Path.join(root, "package.json"), "utf8")) as {
    readonly scripts: Record<string, string>
  }
  return (pkg.scripts["cos-retention"] ?? "").split(" ").filter((f) => f.startsWith("--max-"))
})()

/** The testkit's credentials (CosFake.testCredentials): the fake accepts nothing else by default. */
export const fakeCredentials = {
  secretId: "AKIDfakeTestkit0000000000000000000000",
  secretKey: "fakeTestkitSecretKey0000000000000"
}
export const fakeBucket = "examplebucket-1250000000"
export const fakeRegion = "ap-guangzhou"

/** `cos-retention purge` aimed at the fake's bucket at `endpoint`: the arguments every bench's purge starts with. */
export const fakePurgeArgs = (endpoint: string): ReadonlyArray<string> => [
  "purge",
  "--bucket",
  fakeBucket,
  "--region",
  fakeRegion,
  "--endpoint",
  endpoint
]

const tsx = ["--conditions=source", "--import", "tsx"]

export interface FakeServer {
  readonly url: string
  readonly hostPort: string
  /** CPU time (user + system) the server process has used so far, ms (Linux /proc). */
  readonly cpuMs: () => number
  readonly stop: () => Promise<void>
}

/** CPU time of a process from /proc/<pid>/stat (utime + stime, in clock ticks of 10 ms). */
export const processCpuMs = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return Number.NaN
  }
}

/** Starts `cos-fake` in its own process and waits until it listens (and has seeded). */
export const startFake = (args: ReadonlyArray<string>): Promise<FakeServer> =>
  startFakeScript(
    "packages/testkit/src/bin.ts",
    ["--port", "0", ...args],
    args.includes("--seed") ? /seeded \d+/ : /listening on/
  )

/**
 * Starts a script that serves a fake COS and prints `listening on http://127.0.0.1:PORT`; resolves once its output
 * also matched `ready`.
 */
export const startFakeScript = (
  script: string,
  args: ReadonlyArray<string>,
  ready: RegExp = /seeded \d+/
): Promise<FakeServer> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...tsx, script, ...args], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    let url: string | undefined
    let done = false
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString()
      url ??= /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
      if (!done && url !== undefined && ready.test(out)) {
        done = true
        const u = url
        resolve({
          url: u,
          hostPort: u.slice("http://".length),
          cpuMs: () => processCpuMs(child.pid!),
          stop: () => stopChild(child)
        })
      }
    })
    child.on("error", reject)
    child.on("exit", (code) => {
      if (!done) reject(new Error(`${script} exited with ${code}: ${out}`))
    })
  })

const stopChild = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

/** Runs `node [nodeFlags] <tsx> <script> ...args` and parses the last stdout line as JSON. */
export const runChild = <A>(
  script: string,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  nodeFlags: ReadonlyArray<string> = []
) =>
  new Promise<A>((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, ...tsx, script, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      const lines = out.trim().split("\n")
      try {
        if (code !== 0) throw new Error(`exit ${code}`)
        resolve(JSON.parse(lines[lines.length - 1]!) as A)
      } catch (e) {
        reject(new Error(`${script} ${args.join(" ")} failed (${String(e)}): ${out}`))
      }
    })
  })

/** What a client child reports. */
export interface ClientResult {
  readonly side: string
  readonly keys: number
  readonly deleted: number
  readonly remaining: number
  readonly ms: number
  /** User + system CPU of the client process during the deletion, ms. */
  readonly cpuMs: number
  /** Peak RSS of the client process, MB (`process.resourceUsage().maxRSS`). */
  readonly maxRssMb: number
  /** RSS growth during the run, MB. */
  readonly rssGrowthMb: number
}

/** Samples RSS while a run goes on; returns the peak (MB). */
export const rssSampler = () => {
  let peak = process.memoryUsage.rss()
  const timer = setInterval(() => {
    const r = process.memoryUsage.rss()
    if (r > peak) peak = r
  }, 20)
  timer.unref()
  return {
    stop: () => {
      clearInterval(timer)
      return Math.max(peak, process.resourceUsage().maxRSS * 1024) / 2 ** 20
    }
  }
}

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>) => {
  const line = (cells: ReadonlyArray<string | number>) => `| ${cells.map(String).join(" | ")} |`
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n")
}

export const flag = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback
}

/**
 * A CosClient layer for the fake COS at `endpoint` over `CosHttpClient.layer()`, the HTTP client the `cos-retention`
 * binary uses (so the library benchmarks measure the client users run, not undici); imported lazily so that the
 * SDK's side of a benchmark never loads Effect.
 */
export const engineLayer = async (
  endpoint: string
): Promise<Layer.Layer<CosClient.CosClient, CosError.CosInvalidRequest>> => {
  const { CosClient, CosHttpClient, Credentials } = await import("../packages/core/src/index.js")
  const { Layer, Redacted } = await import("effect")
  return CosClient.layer({
    region: fakeRegion,
    bucket: fakeBucket,
    endpoint,
    credentials: Credentials.fromStatic({
      secretId: fakeCredentials.secretId,
      secretKey: Redacted.make(fakeCredentials.secretKey)
    })
  }).pipe(Layer.provide(CosHttpClient.layer()))
}
