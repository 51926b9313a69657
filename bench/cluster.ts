// Cluster mode: one split rule (parallelism: 6) of 300,000 old keys behind a fake COS answering in 20 ms, run by 1,
// 2 and 3 replicas (`cos-retention run`, each its own process, on a throwaway Postgres), with the bucket's shared write
// budget set high (1,000,000 keys/s) and set to 10,000 keys/s (the fake then enforces a 12,000 keys/s write quota:
// a cluster spending more than its budget would be answered 503 SlowDown). Then the takeover: three replicas, the
// one running the first chunk SIGKILLed mid-run; how long until its chunks run again elsewhere, and until the run
// ends.
//
//   node --conditions=source --import tsx bench/cluster.ts [--keys 300000] [--runners 1,2,3] [--parallelism 6]
//     [--engine-defaults]   (the takeover with the engine's default lock expiry instead of the tests' short one)
//
// keys/s is the run's deleted keys over the time from the fire time being sent to the run's end (the plan's listing
// included). CPU is user + system of the replicas' processes over the same time, per key.
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import * as Cluster from "../packages/daemon/src/Cluster.js"
import * as ClusterSplit from "../packages/daemon/src/ClusterSplit.js"
import { layerSql } from "../packages/daemon/src/State.js"
import * as StateStore from "../packages/daemon/src/StateStore.js"
import { credentialsEnv } from "../packages/daemon/test/support/child.js"
import { fast, fastEnv } from "../packages/daemon/test/support/cluster.js"
import { freePort, PgServer } from "../packages/daemon/test/support/postgres.js"
import { fakeBucket, fakeRegion, flag, processCpuMs, root, startFake, table } from "./purge-harness.js"

const keys = Number(flag("keys", "300000"))
const runnerCounts = flag("runners", "1,2,3").split(",").map(Number)
const parallelism = Number(flag("parallelism", "6"))
const engineDefaults = process.argv.includes("--engine-defaults")
const day = 86_400_000

interface Replica {
  readonly address: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
}

const startReplica = (config: string, env: Record<string, string>) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const address = `127.0.0.1:${port}`
    const child = spawn(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        "packages/daemon/src/bin.ts",
        "run",
        "--config",
        config,
        "--runner-address",
        address,
        "--log-format",
        "json"
      ],
      { cwd: root, env: { ...process.env, ...credentialsEnv, ...env }, stdio: ["ignore", "ignore", "ignore"] }
    )
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    return { address, child, exited } satisfies Replica
  })

const stopAll = (replicas: ReadonlyArray<Replica>) =>
  Effect.promise(() =>
    Promise.all(replicas.map((r) => {
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGTERM")
      return r.exited
    }))
  )

const cpuOf = (replicas: ReadonlyArray<Replica>) =>
  replicas.reduce((n, r) => n + (r.child.pid === undefined ? 0 : processCpuMs(r.child.pid) || 0), 0)

interface Scenario {
  readonly runners: number
  readonly budget: number
  /** The fake's write quota (keys/s), or none. */
  readonly quota?: number | undefined
  readonly kill?: boolean | undefined
}

const scenario = (s: Scenario) =>
  Effect.gen(function*() {
    const pg = yield* PgServer
    const db = `bench_${s.runners}_${s.budget}_${s.kill ? "kill" : "run"}`
    const url = yield* pg.createDatabase(db)
    const fake = yield* Effect.promise(() =>
      startFake([
        "--seed",
        String(keys),
        "--seed-prefix",
        "logs/",
        "--seed-age-ms",
        String(40 * day),
        "--seed-size",
        "10",
        "--latency-ms",
        "20",
        "--stats",
        ...(s.quota === undefined ? [] : ["--write-qps", String(s.quota)])
      ])
    )
    const dir = mkdtempSync(Path.join(tmpdir(), "cos-retention-bench-cluster-"))
    const config = Path.join(dir, "retention.yaml")
    writeFileSync(
      config,
      `cos: { region: ${fakeRegion}, endpoint: "${fake.url}" }
state: ${url}
http: { enabled: false }
gracePeriod: 5s
rules:
  - name: logs
    bucket: ${fakeBucket}
    prefix: logs/
    olderThan: 30d
    schedule: "0 0 1 1 *"
    parallelism: ${parallelism}
    writeBudget: ${s.budget}
`
    )
    const env = s.kill && engineDefaults ? {} : fastEnv
    const replicas: Array<Replica> = []
    for (let i = 0; i < s.runners; i++) replicas.push(yield* startReplica(config, env))
    const store = Either.getOrThrow(StateStore.fromSetting(url, "/"))
    // a client of the cluster (no runner of its own): sends the fire time, asks where entities are
    const client = NodeClusterSocket.layer({
      clientOnly: true,
      storage: "sql",
      shardingConfig: s.kill && engineDefaults ? {} : fast
    }).pipe(Layer.provide(layerSql(store)))
    const result = yield* Effect.gen(function*() {
      // wait until the engine has spread the shards over every replica: probe entity ids until each one answers
      const chunkClient = yield* ClusterSplit.ChunkEntity.client
      const spreadStarted = Date.now()
      while (true) {
        const holders = new Set<string>()
        for (let i = 0; i < 24; i++) {
          const where = yield* chunkClient(`probe/${i}`).where(undefined).pipe(
            Effect.timeout("2 seconds"),
            Effect.option
          )
          if (where._tag === "Some") holders.add(where.value)
        }
        if (holders.size === s.runners) break
        if (Date.now() - spreadStarted > 180_000) return yield* Effect.dieMessage("the replicas did not share out")
        yield* Effect.sleep("500 millis")
      }
      // let assignments settle
      yield* Effect.sleep("2 seconds")
      const cpuBefore = cpuOf(replicas)
      const fireAt = Date.now()
      const rule = yield* Cluster.RuleEntity.client
      yield* rule("logs").fire(new Cluster.Fire({ scheduledAt: fireAt, trigger: "schedule" }), { discard: true })
      const psql = (q: string) => pg.psql(q, db).pipe(Effect.map((o) => o.trim()))
      let killed: { address: string; at: number; chunks: Array<string> } | undefined
      let takeoverMs: number | undefined
      while (true) {
        const status = yield* psql("SELECT status FROM runs ORDER BY id LIMIT 1").pipe(
          Effect.catchAllDefect(() => Effect.succeed(""))
        )
        if (status === "succeeded" || status === "failed") break
        if (Date.now() - fireAt > 900_000) return yield* Effect.dieMessage("the run did not end within 15 minutes")
        if (s.kill && killed === undefined) {
          const deleted = Number(
            (yield* psql("SELECT count(*) FROM audit WHERE state = 'deleted'").pipe(
              Effect.catchAllDefect(() => Effect.succeed("0"))
            )) || 0
          )
          if (deleted >= keys * 0.25) {
            const running = (yield* psql(
              "SELECT chunk, runner FROM cos_retention_split_chunks WHERE status = 'running' ORDER BY chunk"
            )).split("\n").filter((l) => l !== "").map((l) => l.split("|"))
            const victim = replicas.find((r) => r.address === running[0]?.[1])
            if (victim !== undefined) {
              victim.child.kill("SIGKILL")
              killed = {
                address: victim.address,
                at: Date.now(),
                chunks: running.filter((r) => r[1] === victim.address).map((r) => r[0]!)
              }
            }
          }
        }
        if (killed !== undefined && takeoverMs === undefined) {
          const rows = yield* psql(
            `SELECT count(*) FROM cos_retention_split_chunks WHERE chunk IN (${killed.chunks.join(",")})
              AND runner <> '${killed.address}'`
          )
          if (Number(rows) === killed.chunks.length) takeoverMs = Date.now() - killed.at
        }
        yield* Effect.sleep("50 millis")
      }
      const endedAt = Date.now()
      const cpuMs = cpuOf(replicas) - cpuBefore
      const [status, deleted, runMs, owner, error] = (yield* psql(
        "SELECT status, deleted, ended_at - started_at, runner, coalesce(error, '') FROM runs ORDER BY id LIMIT 1"
      )).split("|")
      const chunkRunners = yield* psql("SELECT count(DISTINCT runner) FROM cos_retention_split_chunks")
      const stats = yield* Effect.promise(() => fetch(`${fake.url}/_fake/stats`).then((r) => r.json() as Promise<any>))
      const audit = yield* psql("SELECT count(*), count(DISTINCT key) FROM audit WHERE state = 'deleted'")
      return {
        ...s,
        status: status!,
        ...(error === undefined || error === "" ? {} : { error }),
        deleted: Number(deleted),
        audit,
        seconds: (endedAt - fireAt) / 1000,
        runSeconds: Number(runMs) / 1000,
        keysPerSecond: Number(deleted) / ((endedAt - fireAt) / 1000),
        cpuUsPerKey: cpuMs * 1000 / Number(deleted),
        slowDowns: Number(stats.byOperationStatus?.["DeleteObjects 503"] ?? 0),
        // the plan's listing plus the chunks' own
        listRequests: Number(stats.byOperation?.["ListObjects"] ?? 0),
        chunkRunners: Number(chunkRunners),
        killed: killed === undefined ? undefined : { ...killed, wasOwner: killed.address === owner },
        takeoverMs,
        afterKillSeconds: killed === undefined ? undefined : (endedAt - killed.at) / 1000
      }
    }).pipe(Effect.provide(client), Effect.scoped)
    yield* stopAll(replicas)
    yield* Effect.promise(() => fake.stop())
    rmSync(dir, { recursive: true, force: true })
    return result
  })

const main = Effect.gen(function*() {
  const results = []
  for (const budget of [1_000_000, 10_000]) {
    for (const runners of runnerCounts) {
      const r = yield* scenario({ runners, budget, quota: budget === 10_000 ? 12_000 : undefined })
      console.log(JSON.stringify(r))
      results.push(r)
    }
  }
  const takeover = yield* scenario({ runners: 3, budget: 1_000_000, kill: true })
  console.log(JSON.stringify(takeover))
  console.log(`\n${keys} keys, parallelism ${parallelism}, fake COS at 20 ms per request\n`)
  console.log(table(
    [
      "runners",
      "budget keys/s",
      "fake quota",
      "status",
      "deleted (audit rows|distinct)",
      "s",
      "keys/s",
      "CPU µs/key",
      "503s",
      "list requests",
      "runners used"
    ],
    results.map((r) => [
      r.runners,
      r.budget,
      r.quota ?? "-",
      r.status,
      `${r.deleted} (${r.audit})`,
      r.seconds.toFixed(1),
      Math.round(r.keysPerSecond),
      r.cpuUsPerKey.toFixed(1),
      r.slowDowns,
      r.listRequests,
      r.chunkRunners
    ])
  ))
  console.log(
    `\ntakeover (${engineDefaults ? "engine defaults" : "short test intervals: lock expiry 5 s"}), 3 replicas:\n`
  )
  console.log(table(
    [
      "killed runner owned the rule",
      "its chunks",
      "takeover ms",
      "run end after kill s",
      "status",
      "deleted (audit rows|distinct)"
    ],
    [[
      String(takeover.killed?.wasOwner ?? "-"),
      takeover.killed?.chunks.join(",") ?? "-",
      takeover.takeoverMs ?? "-",
      takeover.afterKillSeconds?.toFixed(1) ?? "-",
      takeover.status,
      `${takeover.deleted} (${takeover.audit})`
    ]]
  ))
})

Effect.runPromise(main.pipe(Effect.provide(PgServer.Default), Effect.scoped)).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
