/**
 * The documented ways to start `cos-retention` through pnpm (`pnpm cos-retention run ...`, `pnpm cos-retention purge
 * ...`) stop cleanly when SIGTERM or SIGINT is sent to the process that was started, i.e. to pnpm: the signal reaches
 * the CLI, which finishes (summary printed, exit code kept), and nothing is left running behind pnpm. The installed
 * binary and the systemd unit's command are checked the same way by scripts/pack-smoke.mjs (from the tarballs).
 */
import { CosFake, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { repo } from "./support/child.js"
import { fakeTarget, sharedFake } from "./support/fakeServer.js"

const bucket = CosFake.testBucket
const env = {
  COS_SECRET_ID: CosFake.testCredentials.secretId,
  COS_SECRET_KEY: Redacted.value(CosFake.testCredentials.secretKey)
}
const day = 86_400_000

// slow batch deletes, so that a signal always arrives while one is in flight
const fake = sharedFake(
  "launchers",
  { faults: { operations: { DeleteObjects: { latencyMs: 400 } } } },
  (store) =>
    ["purge-term/", "purge-int/", "purge-group/", "run-term/", "run-int/"].map((prefix) =>
      Store.seed(store, { bucket, count: 8000, prefix, ageMs: 40 * day })
    )
)

/** The pids of a process's descendants (Linux /proc). */
const descendants = (pid: number): Array<number> => {
  let children: Array<number> = []
  try {
    children = NodeFs.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter((s) =>
      s !== ""
    ).map(Number)
  } catch {
    return []
  }
  return children.flatMap((c) => [c, ...descendants(c)])
}

const alive = (pid: number) => {
  try {
    // a zombie has exited; only a process still running counts
    return !/^\d+ \([^)]*\) Z/.test(NodeFs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

interface Outcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** Processes started under pnpm that were still running when pnpm exited. */
  readonly leftBehind: Array<number>
}

/**
 * Runs `pnpm cos-retention <args>` from the repository root, as the README says; sends `signal` to the pnpm process
 * once `ready(stdout, stderr)` holds.
 */
const viaPnpm = (
  args: ReadonlyArray<string>,
  signal: NodeJS.Signals,
  ready: (stdout: string, stderr: string) => boolean | Promise<boolean>,
  options: { readonly toGroup?: boolean } = {}
) =>
  new Promise<Outcome>((resolve, reject) => {
    const child = spawn("pnpm", ["cos-retention", ...args], {
      cwd: repo,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // its own process group, as a terminal's foreground job: Ctrl-C signals every process in it
      detached: options.toGroup === true
    })
    let stdout = ""
    let stderr = ""
    let under: Array<number> = []
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    let sent = false
    const timer = setInterval(() => {
      if (sent) return
      void Promise.resolve(ready(stdout, stderr)).then((ok) => {
        if (ok && !sent) {
          sent = true
          under = descendants(child.pid!)
          if (options.toGroup === true) process.kill(-child.pid!, signal)
          else child.kill(signal)
        }
      })
    }, 100)
    // When pnpm exits (the shell would return), nothing it started may still be running.
    let leftBehind: Array<number> = []
    child.on("exit", () => (leftBehind = under.filter(alive)))
    child.on("close", (code) => {
      clearInterval(timer)
      resolve({ code, stdout, stderr, leftBehind })
    })
  })

const jsonLines = (text: string) =>
  text.split("\n").flatMap((l) => {
    try {
      const v = JSON.parse(l)
      return typeof v === "object" && v !== null ? [v as Record<string, unknown>] : []
    } catch {
      return []
    }
  })

const left = (prefix: string) =>
  Effect.runPromise(Store.keys(fake.server.fake.store, bucket, prefix)).then((k) => k.length)

describe("pnpm cos-retention ... stops on a signal sent to pnpm", () => {
  it.each(
    [
      ["SIGTERM to pnpm", "SIGTERM", 143, "purge-term/"],
      ["SIGINT to pnpm", "SIGINT", 130, "purge-int/"],
      ["Ctrl-C (SIGINT to the process group)", "SIGINT", 130, "purge-group/"]
    ] as const
  )(
    "purge, %s (%s): stops early, prints the summary, exits %i (pnpm returns after it), nothing left running",
    async (_, signal, code, prefix) => {
      const r = await viaPnpm(
        [
          "purge",
          ...fakeTarget(fake.server.url),
          "--prefix",
          prefix,
          "--concurrency",
          "1",
          "--yes",
          "--json"
        ],
        signal,
        async () => (await left(prefix)) < 8000,
        { toGroup: prefix === "purge-group/" }
      )
      assert.strictEqual(r.code, code, r.stderr)
      const summary = jsonLines(r.stdout).at(-1)
      assert.isDefined(summary, r.stdout)
      assert.strictEqual(summary!["stoppedBy"], "interrupted")
      assert.strictEqual(summary!["failed"], 0)
      const remaining = await left(prefix)
      assert.isAbove(remaining, 0, "the purge should have stopped before the end")
      assert.strictEqual(summary!["deleted"], 8000 - remaining, "the summary counts exactly what is gone")
      assert.deepStrictEqual(r.leftBehind, [], "a process kept running after pnpm exited")
    },
    60_000
  )

  it.each([["SIGTERM", "run-term/"], ["SIGINT", "run-int/"]] as const)(
    "run (the daemon), %s: stops cleanly, exit 0, nothing left running",
    async (signal, prefix) => {
      const config = NodePath.join(fake.dir, `${prefix.slice(0, -1)}.yaml`)
      NodeFs.writeFileSync(
        config,
        `cos: { region: ${CosFake.testRegion}, endpoint: "${fake.server.url}" }
state: ${NodePath.join(fake.dir, `${prefix.slice(0, -1)}.db`)}
http: { port: 0 }
gracePeriod: 10s
rules:
  - name: expire
    bucket: ${bucket}
    prefix: ${prefix}
    olderThan: 30d
    schedule: "* * * * * *"
    concurrency: 1
`
      )
      const r = await viaPnpm(
        ["run", "--config", config, "--log-format", "json"],
        signal,
        async (_, stderr) => stderr.includes("\"run started\"") && (await left(prefix)) < 8000
      )
      assert.strictEqual(r.code, 0, r.stderr.slice(-2000))
      assert.isAbove(await left(prefix), 0, "the run should have been stopped before the end")
      assert.deepStrictEqual(r.leftBehind, [], "a process kept running after pnpm exited")
    },
    60_000
  )

  it("cos-retention --version prints the package's version", async () => {
    const pkg = JSON.parse(NodeFs.readFileSync(NodePath.join(repo, "packages/daemon/package.json"), "utf8"))
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ["--conditions=source", "--import", "tsx", "packages/daemon/src/bin.ts", "--version"],
        { cwd: repo, stdio: ["ignore", "pipe", "inherit"] }
      )
      let stdout = ""
      child.stdout.on("data", (d) => (stdout += d))
      child.on("error", reject)
      child.on("close", () => resolve(stdout))
    })
    assert.strictEqual(out.trim(), pkg.version)
  })
})
