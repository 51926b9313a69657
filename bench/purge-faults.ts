// Correctness under faults: with 5% of all requests answered 503 SlowDown and 2% of the keys of every batch delete
// answered with a per-key InternalError, `cos-retention purge` (the CLI, as a user runs it) deletes every matching key,
// touches no other key, and exits 0. The fake COS runs in its own process.
//
//   node --conditions=source --import tsx bench/purge-faults.ts [--keys 100000] [--slowdown 0.05] [--key-errors 0.02]
import { spawn } from "node:child_process"
import {
  fakeBucket,
  fakeCredentials,
  fakePurgeArgs,
  fakeRegion,
  flag,
  root,
  startFakeScript,
  table
} from "./purge-harness.js"

const role = flag("role", "main")
const keys = Number(flag("keys", "100000"))
const slowdown = Number(flag("slowdown", "0.05"))
const keyErrors = Number(flag("key-errors", "0.02"))
const outside = Math.round(keys / 5)
const DAY = 86_400_000

/** Key i under faults/: `.log` when even, `.txt` when odd; 40 days old when i % 4 < 2, else 1 day. */
const faultsKey = (i: number) => `faults/${String(i).padStart(7, "0")}.${i % 2 === 0 ? "log" : "txt"}`
const matches = (i: number) => i % 4 === 0 // .log and old
const expectedMatches = Math.ceil(keys / 4)

// ---------------------------------------------------------------------------------------------------------------
// the server process
// ---------------------------------------------------------------------------------------------------------------

const server = async () => {
  const { CosFakeServer } = await import("../packages/testkit/src/index.js")
  const { Effect } = await import("effect")
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const s = yield* CosFakeServer.start({
      seed: [
        { bucket: fakeBucket, count: keys, keyFn: faultsKey, ageMs: (i) => (i % 4 < 2 ? 40 * DAY : DAY), size: 100 },
        { bucket: fakeBucket, count: outside, prefix: "other/", ageMs: 40 * DAY, size: 100 },
        // Same characters as the prefix, not under it.
        { bucket: fakeBucket, count: 10, keyFn: (i) => `faults${i}.log`, ageMs: 40 * DAY }
      ],
      faults: { all: { slowDownRate: slowdown }, batchKeyErrorRate: keyErrors, seed: 7 },
      statsEndpoint: true
    })
    console.log(`listening on ${s.url}`)
    console.log("seeded 1")
    yield* Effect.never
  })))
}

// ---------------------------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------------------------

const cli = (endpoint: string) =>
  new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [
      "--conditions=source",
      "--import",
      "tsx",
      "packages/daemon/src/bin.ts",
      ...fakePurgeArgs(endpoint),
      "--prefix",
      "faults/",
      "--include",
      "**/*.log",
      "--older-than",
      "30d",
      "--yes",
      "--json"
    ], {
      cwd: root,
      env: { ...process.env, COS_SECRET_ID: fakeCredentials.secretId, COS_SECRET_KEY: fakeCredentials.secretKey },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }))
  })

const remainingKeys = async (endpoint: string) => {
  const { CosClient, CosHttpClient, Credentials } = await import("../packages/core/src/index.js")
  const { Chunk, Effect, Layer, Redacted, Stream } = await import("effect")
  const layer = CosClient.layer({
    region: fakeRegion,
    bucket: fakeBucket,
    endpoint,
    credentials: Credentials.fromStatic({
      secretId: fakeCredentials.secretId,
      secretKey: Redacted.make(fakeCredentials.secretKey)
    }),
    retry: { attempts: 10 } // the faults are still on
  }).pipe(Layer.provide(CosHttpClient.layer()))
  return Effect.runPromise(Effect.provide(
    Effect.flatMap(
      CosClient.CosClient,
      (c) => Effect.map(Stream.runCollect(Stream.map(c.listObjectsStream({}), (o) => o.key)), Chunk.toReadonlyArray)
    ),
    layer
  ))
}

const main = async () => {
  const fake = await startFakeScript("bench/purge-faults.ts", ["--role", "server", ...process.argv.slice(2)])
  try {
    const cpu0 = fake.cpuMs()
    const run = await cli(fake.url)
    const serverCpu = fake.cpuMs() - cpu0
    const stats = await (await fetch(`${fake.url}/_fake/stats`)).json() as {
      byStatus: Record<string, number>
      deletedKeys: number
      batchKeyErrors: number
      requests: number
    }
    const left = new Set(await remainingKeys(fake.url))
    const lines = run.stdout.trim().split("\n")
    const summary = JSON.parse(lines[lines.length - 1]!) as Record<string, number>
    // Every matching key is gone, every other key is still there.
    let stillThere = 0
    let wronglyGone = 0
    for (let i = 0; i < keys; i++) {
      const present = left.has(faultsKey(i))
      if (matches(i) && present) stillThere++
      if (!matches(i) && !present) wronglyGone++
    }
    for (let i = 0; i < outside; i++) {
      if (!left.has(`other/${String(i).padStart(String(outside - 1).length, "0")}`)) wronglyGone++
    }
    for (let i = 0; i < 10; i++) if (!left.has(`faults${i}.log`)) wronglyGone++
    const ok = run.code === 0 && stillThere === 0 && wronglyGone === 0 && summary["deleted"] === expectedMatches &&
      summary["failed"] === 0 && stats.deletedKeys === expectedMatches
    console.log(
      `\n### purge under faults: ${(slowdown * 100).toFixed(0)}% of requests 503 SlowDown, ` +
        `${(keyErrors * 100).toFixed(0)}% of batch keys InternalError\n`
    )
    console.log(table(["measure", "value"], [
      ["keys under faults/ (+ others outside)", `${keys} (+ ${outside + 10})`],
      ["matching (.log older than 30 days)", expectedMatches],
      ["CLI exit status", String(run.code)],
      [
        "summary: listed / matched / deleted / failed",
        [
          summary["listed"],
          summary["matched"],
          summary["deleted"],
          summary["failed"]
        ].join(" / ")
      ],
      [
        "summary: requests / retries / throttled",
        [summary["requests"], summary["retries"], summary["throttled"]].join(" / ")
      ],
      [
        "fake: requests / 503 answers / per-key errors",
        [
          stats.requests,
          stats.byStatus["503"] ?? 0,
          stats.batchKeyErrors
        ].join(" / ")
      ],
      ["fake: keys reported deleted (each exactly once)", stats.deletedKeys],
      ["matching keys still present", stillThere],
      ["non-matching keys gone", wronglyGone],
      ["wall seconds (CLI process)", (run.ms / 1000).toFixed(1)],
      ["fake server CPU seconds", (serverCpu / 1000).toFixed(1)],
      ["result", ok ? "OK" : "FAILED"]
    ]))
    if (!ok) {
      console.log(run.stderr)
      process.exitCode = 1
    }
  } finally {
    await fake.stop()
  }
}

if (role === "server") {
  await server()
} else {
  await main()
}
