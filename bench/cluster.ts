// Cluster mode: one split rule (parallelism: 6) of 300,000 old keys behind a fake COS answering in 20 ms, run by 1,
// 2 and 3 replicas (`cos-retention run`, each its own process, all started at the same moment on a new Postgres
// database, as the deployment guide allows), with the bucket's shared write budget set high (1,000,000 keys/s) and set
// to 10,000 keys/s (the fake then enforces a 12,000 keys/s write quota: a cluster spending more than its budget would
// be answered 503 SlowDown). Then the takeover: three replicas, the one doing the work SIGKILLed once a quarter of the
// keys are deleted: for a split rule the one running the first running chunk, for a plain rule (no parallelism) the
// one running the rule. Measured: from the SIGKILL to the first delete by another replica of the dead one's work (the
// audit's deleted_at), and to the run's end; the audit must hold every key once.
//
//   node --conditions=source --import tsx bench/cluster.ts [--keys 300000] [--runners 1,2,3] [--parallelism 6]
//     [--engine-defaults]   (the takeover with the settings a user gets with nothing set: the engine's lock expiry
//                            35 s and refresh 10 s, our 1 s message poll; else the tests' short intervals, expiry 5 s)
//     [--takeover split,plain] [--repeat N]   (only the takeover, of these kinds, N times each)
//     [--logs DIR]   (each replica's output, its JSON log, to DIR/DATABASE-PORT.jsonl)
//     [--launch dist|tsx]   (dist, the default: the built binary users run, `pnpm build` first: node <shipped V8
//                            flags> packages/daemon/dist/bin.js; tsx: the sources through tsx)
//
// keys/s is the run's deleted keys over the time from the fire time being sent to the run's end (the plan's listing
// included). CPU is user + system of the replicas' processes over the same time, per key.
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import * as Path from "node:path"
import * as Cluster from "../packages/daemon/src/Cluster.js"
import * as ClusterSplit from "../packages/daemon/src/ClusterSplit.js"
import { layerSql } from "../packages/daemon/src/State.js"
import * as StateStore from "../packages/daemon/src/StateStore.js"
import { credentialsEnv } from "../packages/daemon/test/support/child.js"
import { fast, fastEnv } from "../packages/daemon/test/support/cluster.js"
import { freePort, PgServer } from "../packages/daemon/test/support/postgres.js"
import {
  fakeBucket,
  fakeRegion,
  flag,
  processCpuMs,
  root,
  shippedNodeFlags,
  startFake,
  table
} from "./purge-harness.js"

const keys = Number(flag("keys", "300000"))
const runnerCounts = flag("runners", "1,2,3").split(",").map(Number)
const parallelism = Number(flag("parallelism", "6"))
const engineDefaults = process.argv.includes("--engine-defaults")
const takeoverKinds = flag("takeover", "").split(",").filter((k) => k !== "") as Array<"split" | "plain">
const repeat = Number(flag("repeat", "1"))
const logDir = flag("logs", "")
const launch = flag("launch", "dist")
const entry = launch === "dist"
  ? [...shippedNodeFlags, Path.join(root, "packages/daemon/dist/bin.js")]
  : launch === "tsx"
  ? ["--conditions=source", "--import", "tsx", Path.join(root, "packages/daemon/src/bin.ts")]
  : undefined
if (entry === undefined) throw new Error(`--launch takes dist or tsx, not ${JSON.stringify(launch)}`)
if (launch === "dist" && !existsSync(entry[entry.length - 1]!)) {
  throw new Error("packages/daemon/dist/bin.js is missing: run `pnpm build` first (or pass --launch tsx)")
}
if (logDir !== "") mkdirSync(logDir, { recursive: true })
const day = 86_400_000
const loadAverage = () => loadavg().map((l) => l.toFixed(1)).join(" ")

interface Replica {
  readonly address: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
}

const startReplica = (config: string, env: Record<string, string>, port: number, label: string) =>
  Effect.sync(() => {
    const address = `127.0.0.1:${port}`
    const log = logDir === "" ? "ignore" : openSync(Path.join(logDir, `${label}-${port}.jsonl`), "a")
    const child = spawn(
      process.execPath,
      [
        ...entry,
        "run",
        "--config",
        config,
        "--runner-address",
        address,
        "--log-format",
        "json"
      ],
      {
        cwd: root,
        env: { ...process.env, ...credentialsEnv, ...env },
        stdio: ["ignore", log, log]
      }
    )
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    return { address, child, exited } satisfies Replica
  })

/** Starts the replicas at the same moment (their ports found first), as operators start them. */
const startReplicas = (n: number, config: string, env: Record<string, string>, label: string) =>
  Effect.gen(function*() {
    const ports: Array<number> = []
    while (ports.length < n) {
      const port = yield* freePort
      if (!ports.includes(port)) ports.push(port)
    }
    return yield* Effect.forEach(ports, (port) => startReplica(config, env, port, label))
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
  /** SIGKILL the replica doing the work of a split rule, or of a plain one (no parallelism). */
  readonly kill?: "split" | "plain" | undefined
  readonly repetition?: number | undefined
}

const scenario = (s: Scenario) =>
  Effect.gen(function*() {
    const pg = yield* PgServer
    const db = `bench_${s.runners}_${s.budget}_${s.kill ?? "run"}_${s.repetition ?? 0}`
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
${s.kill === "plain" ? "" : `    parallelism: ${parallelism}\n`}    writeBudget: ${s.budget}
`
    )
    const env = s.kill && engineDefaults ? {} : fastEnv
    const replicas = yield* startReplicas(s.runners, config, env, db)
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
      const rows = (q: string) =>
        psql(q).pipe(Effect.map((o) => o.split("\n").filter((l) => l !== "").map((l) => l.split("|"))))
      let killed: { address: string; at: number; chunks: Array<string> } | undefined
      let chunksMovedMs: number | undefined
      while (true) {
        // a plain rule's killed run is marked interrupted and resumed by a new run: the run ends with a final status
        const ended = yield* psql("SELECT count(*) FROM runs WHERE status IN ('succeeded', 'failed')").pipe(
          Effect.catchAllDefect(() => Effect.succeed("0"))
        )
        if (Number(ended) > 0) break
        if (Date.now() - fireAt > 900_000) return yield* Effect.dieMessage("the run did not end within 15 minutes")
        if (s.kill !== undefined && killed === undefined) {
          const deleted = Number(
            (yield* psql("SELECT count(*) FROM audit WHERE state = 'deleted'").pipe(
              Effect.catchAllDefect(() => Effect.succeed("0"))
            )) || 0
          )
          if (deleted >= keys * 0.25) {
            const running = s.kill === "split"
              ? yield* rows(
                "SELECT chunk, runner FROM cos_retention_split_chunks WHERE status = 'running' ORDER BY chunk"
              )
              : (yield* rows("SELECT runner FROM runs WHERE status = 'running' ORDER BY id")).map((r) => ["-", r[0]])
            const victim = replicas.find((r) => r.address === running[0]?.[1])
            if (victim !== undefined) {
              victim.child.kill("SIGKILL")
              killed = {
                address: victim.address,
                at: Date.now(),
                chunks: running.filter((r) => r[1] === victim.address).map((r) => r[0]!)
              }
              // the intents of the batches in flight (the dead replica's among them): the new owner's reconcile
              // confirms those keys deleted (deleted_at then), which is not the dead one's work going on
              yield* Effect.promise(() => victim.exited)
              yield* psql("CREATE TABLE bench_intents_at_kill AS SELECT run_id, keys FROM audit_intents")
            }
          }
        }
        if (s.kill === "split" && killed !== undefined && chunksMovedMs === undefined) {
          const moved = yield* psql(
            `SELECT count(*) FROM cos_retention_split_chunks WHERE chunk IN (${killed.chunks.join(",")})
              AND runner <> '${killed.address}'`
          )
          if (Number(moved) === killed.chunks.length) chunksMovedMs = Date.now() - killed.at
        }
        yield* Effect.sleep(killed === undefined ? "50 millis" : "200 millis")
      }
      const endedAt = Date.now()
      const cpuMs = cpuOf(replicas) - cpuBefore
      const [status, runMs, error] = (yield* rows(
        "SELECT status, ended_at - started_at, coalesce(error, '') FROM runs ORDER BY id DESC LIMIT 1"
      ))[0]!
      const owner = yield* psql("SELECT runner FROM runs ORDER BY id LIMIT 1")
      // an interrupted run is credited with what the audit proves it deleted
      const deleted = yield* psql("SELECT sum(deleted) FROM runs")
      const chunkRunners = yield* psql("SELECT count(DISTINCT runner) FROM cos_retention_split_chunks")
      const stats = yield* Effect.promise(() => fetch(`${fake.url}/_fake/stats`).then((r) => r.json() as Promise<any>))
      const audit = yield* psql("SELECT count(*) || '|' || count(DISTINCT key) FROM audit WHERE state = 'deleted'")
      // when the dead replica's work was taken over: a plain rule's run marked interrupted by the new owner, a
      // split rule's chunks given to other replicas (above)
      let takenOverMs = chunksMovedMs
      // the first delete of the dead replica's work by another replica: the dead one deleted nothing after the kill
      // (its deleted_at comes before its write); not counting the keys of the batches it had in flight (confirmed
      // by the reconcile); for a split rule, a key in one of the dead replica's chunks
      let firstDeleteMs: number | undefined
      let resumedRunMs: number | undefined
      let inFlightAtKill: number | undefined
      if (killed !== undefined) {
        if (s.kill === "plain") {
          const ended = yield* psql("SELECT coalesce(ended_at, 0) FROM runs ORDER BY id LIMIT 1")
          takenOverMs = Number(ended) > 0 ? Number(ended) - killed.at : undefined
        }
        const inChunks = s.kill === "split"
          ? `AND EXISTS (SELECT 1 FROM cos_retention_split_chunks c WHERE c.chunk IN (${killed.chunks.join(",")})
              AND a.key COLLATE "C" > c.after_key COLLATE "C"
              AND (c.through_key IS NULL OR a.key COLLATE "C" <= c.through_key COLLATE "C"))`
          : ""
        yield* psql(`CREATE TABLE bench_in_flight AS SELECT DISTINCT jsonb_array_elements(keys::jsonb) ->> 0 AS key
          FROM bench_intents_at_kill`)
        inFlightAtKill = Number(
          yield* psql(`SELECT count(*) FROM audit a WHERE state = 'deleted' AND deleted_at > ${killed.at}
            AND key IN (SELECT key FROM bench_in_flight) ${inChunks}`)
        )
        const first = yield* psql(
          `SELECT coalesce(min(deleted_at), 0) FROM audit a WHERE state = 'deleted' AND deleted_at > ${killed.at}
            AND key NOT IN (SELECT key FROM bench_in_flight) ${inChunks}`
        )
        firstDeleteMs = Number(first) > 0 ? Number(first) - killed.at : undefined
        const resumed = yield* psql(`SELECT coalesce(min(started_at), 0) FROM runs WHERE started_at > ${killed.at}`)
        resumedRunMs = Number(resumed) > 0 ? Number(resumed) - killed.at : undefined
      }
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
        takenOverMs,
        inFlightAtKill,
        resumedRunMs,
        firstDeleteMs,
        afterKillSeconds: killed === undefined ? undefined : (endedAt - killed.at) / 1000,
        load: loadAverage()
      }
    }).pipe(Effect.provide(client), Effect.scoped)
    yield* stopAll(replicas)
    yield* Effect.promise(() => fake.stop())
    rmSync(dir, { recursive: true, force: true })
    return result
  })

const takeoverTable = (results: ReadonlyArray<Effect.Effect.Success<ReturnType<typeof scenario>>>) =>
  table(
    [
      "rule",
      "killed runner owned the run",
      "its chunks",
      "taken over after kill s",
      "in-flight keys reconciled",
      "first delete elsewhere after kill s",
      "resumed run started s",
      "run end after kill s",
      "status",
      "deleted (audit rows|distinct)",
      "load average at end"
    ],
    results.map((t) => [
      t.kill === "plain" ? "plain" : `split (${parallelism})`,
      String(t.killed?.wasOwner ?? "-"),
      t.killed?.chunks.join(",") ?? "-",
      t.takenOverMs === undefined ? "-" : (t.takenOverMs / 1000).toFixed(1),
      t.inFlightAtKill ?? "-",
      t.firstDeleteMs === undefined ? "-" : (t.firstDeleteMs / 1000).toFixed(1),
      t.resumedRunMs === undefined ? "-" : (t.resumedRunMs / 1000).toFixed(1),
      t.afterKillSeconds?.toFixed(1) ?? "-",
      t.status,
      `${t.deleted} (${t.audit})`,
      t.load
    ])
  )

const takeoverTitle = () =>
  `takeover (${
    engineDefaults
      ? "default settings: lock expiry 35 s, refresh 10 s, message poll 1 s"
      : "short test intervals: lock expiry 5 s"
  }), 3 replicas, ${keys} keys; load average before: ${loadAverage()}\n`

const main = Effect.gen(function*() {
  if (takeoverKinds.length > 0) {
    const title = takeoverTitle()
    const takeovers = []
    for (let i = 0; i < repeat; i++) {
      for (const kind of takeoverKinds) {
        const t = yield* scenario({ runners: 3, budget: 1_000_000, kill: kind, repetition: i })
        console.log(JSON.stringify(t))
        takeovers.push(t)
      }
    }
    console.log(`\n${title}`)
    console.log(takeoverTable(takeovers))
    return
  }
  const results = []
  for (const budget of [1_000_000, 10_000]) {
    for (const runners of runnerCounts) {
      const r = yield* scenario({ runners, budget, quota: budget === 10_000 ? 12_000 : undefined })
      console.log(JSON.stringify(r))
      results.push(r)
    }
  }
  const title = takeoverTitle()
  const takeover = yield* scenario({ runners: 3, budget: 1_000_000, kill: "split" })
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
  console.log(`\n${title}`)
  console.log(takeoverTable([takeover]))
})

Effect.runPromise(main.pipe(Effect.provide(PgServer.Default), Effect.scoped)).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
