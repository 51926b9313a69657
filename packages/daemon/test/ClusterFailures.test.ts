/**
 * Cluster mode under failures: three replicas, a replica killed while fire times keep coming (the engine's SQL
 * storage must keep delivering after a runner transition, Effect-TS/effect#6248), every replica stopped over several
 * fire times, and Postgres restarted under a running cluster. Each fire time is checked against the engine's message
 * table: every one stored is decided once (a run that completed, or a skip as an overlap, as one daemon does).
 */
import { CosFake } from "@effect-cos/testkit"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import * as StateStore from "../src/StateStore.js"
import { cosRetention } from "./support/child.js"
import {
  clusterSettings,
  credentials,
  day,
  keyCount,
  postgresStore,
  queryOn,
  seedKeys,
  setUp,
  startChildReplica,
  startRunner,
  stateSql,
  waitForSpread,
  waitUntil,
  writeClusterConfig
} from "./support/cluster.js"
import { readConfig } from "./support/config.js"
import { freePort, PgServer } from "./support/postgres.js"

const period = 2000

interface Run {
  readonly id: number
  readonly rule: string
  readonly at: number
  readonly status: string
  readonly trigger: string
  readonly runner: string
}

const settingsOf = (url: string, endpoint: string, rules: ReadonlyArray<Record<string, unknown>>) =>
  clusterSettings(url, endpoint, rules.map((r) => ({ prefix: `${r.name}/`, schedule: "*/2 * * * * *", ...r })))

/** Fire times skipped as overlaps, as `rule ISO-time`, from the log of the replicas in this process. */
const skipLogger = () => {
  const skips: Array<string> = []
  const logger = Logger.make(({ annotations, message }) => {
    if (String(message).includes("skipped a scheduled run")) {
      skips.push(`${HashMap.unsafeGet(annotations, "rule")} ${HashMap.unsafeGet(annotations, "scheduledAt")}`)
    }
  })
  return { skips, layer: Logger.add(logger) }
}

/** The sessions holding the state's writer lock (StateStore.writerLock), as one count. */
const writerLocks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted " +
  "AND classid = hashtext('cos-retention state')::oid AND objid = 1 AND objsubid = 2"

/** Takes the writer lock exclusively, as `once` does, and lets it go: fails with the StateError a `once` would see. */
const exclusiveLock = (url: string) =>
  Effect.scoped(StateStore.writerLock("exclusive", "test")).pipe(
    Effect.provide(Layer.orDie(StateStore.layerPostgres(postgresStore(url))))
  )

const helpers = (database: string) =>
  Effect.gen(function*() {
    const pg = yield* PgServer
    const query = queryOn(database)
    const runs = Effect.map(
      query("SELECT id, rule, coalesce(scheduled_at, 0), status, trigger, coalesce(runner, '') FROM runs ORDER BY id"),
      (rows) =>
        rows.map((r): Run => ({
          id: Number(r[0]),
          rule: r[1]!,
          at: Number(r[2]),
          status: r[3]!,
          trigger: r[4]!,
          runner: r[5]!
        }))
    )
    /** {@link runs} while the first replica may still be creating the tables */
    const runsSoFar = runs.pipe(Effect.catchAllDefect(() => Effect.succeed([] as Array<Run>)))
    /** The fire times stored for a rule (the engine's messages), whatever became of them. */
    const stored = (rule: string) =>
      Effect.map(
        query(
          `SELECT DISTINCT deliver_at FROM cluster_messages WHERE entity_type = 'cos-retention/rule' AND tag = 'fire' ` +
            `AND entity_id = '${rule}' ORDER BY deliver_at`
        ),
        (rows) => rows.map((r) => Number(r[0]))
      )
    /** Waits until every fire message due by `cutoff` is answered (a loaded machine delivers late, never never). */
    const settled = (cutoff: number) =>
      waitUntil(
        query(
          `SELECT count(*) FROM cluster_messages WHERE entity_type = 'cos-retention/rule' AND tag = 'fire' ` +
            `AND deliver_at <= ${cutoff} AND NOT processed`
        ),
        (rows) => rows[0]![0] === "0",
        { every: "200 millis", within: "60 seconds", message: () => `fire times due by ${cutoff} left unanswered` }
      )
    /** The engine's stored answer to each fire time of a rule (for a failure's message: what became of it). */
    const answers = (rule: string) =>
      Effect.map(
        query(
          `SELECT m.deliver_at, coalesce(string_agg(r.payload, ' / '), 'no reply') FROM cluster_messages m ` +
            `LEFT JOIN cluster_replies r ON r.request_id = m.id WHERE m.entity_type = 'cos-retention/rule' ` +
            `AND m.tag = 'fire' AND m.entity_id = '${rule}' GROUP BY m.deliver_at`
        ),
        (rows) => new Map(rows.map((r) => [Number(r[0]), r.slice(1).join("|")]))
      )
    return { pg, query, runs, runsSoFar, stored, settled, answers }
  })

/**
 * Every fire time of `rule` in [from, to] is decided exactly once (completed or skipped as an overlap), and no fire
 * time of the rule ever completed twice. Returns the fire times checked.
 */
const assertOnce = (
  rule: string,
  runs: ReadonlyArray<Run>,
  skips: ReadonlyArray<string>,
  from: number,
  to: number,
  answers: ReadonlyMap<number, string> = new Map()
) => {
  const mine = runs.filter((r) => r.rule === rule)
  // a run cut short (its runner lost the rule, or stopped) is interrupted and resumed by the next one: not completed
  const completed = mine.filter((r) => r.status !== "interrupted").map((r) => r.at)
  assert.strictEqual(new Set(completed).size, completed.length, `${rule} ran a fire time twice: ${completed}`)
  assert.isTrue(mine.every((r) => r.status !== "failed"), JSON.stringify(mine))
  const expected: Array<number> = []
  for (let t = Math.ceil(from / period) * period; t <= to; t += period) expected.push(t)
  for (const t of expected) {
    const ran = completed.filter((x) => x === t).length
    const skipped = skips.filter((s) => s === `${rule} ${new Date(t).toISOString()}`).length
    assert.strictEqual(
      ran + skipped,
      1,
      `${rule} at ${new Date(t).toISOString()}: ran ${ran}, skipped ${skipped}; runs ${
        JSON.stringify(mine.filter((r) => r.at === t))
      }; the engine's answer: ${answers.get(t) ?? "no message"}`
    )
  }
  return expected
}

/**
 * Ends the sessions `victims` (a WHERE clause on pg_stat_activity) selects while `holder` takes a lock with `lockCall`
 * (a blocking pg_advisory_lock...): the request is queued on `holder` first, so Postgres grants it as the victims'
 * lock is released, before the process they belong to can ask again on a new session. (Ending first and then trying
 * would race that process, which takes its lock again as soon as it notices.) Returns what pg_terminate_backend said
 * for each victim.
 */
const endAndTake = (
  sql: SqlClient.SqlClient,
  holder: SqlConnection.Connection,
  lockCall: string,
  victims: string
) =>
  Effect.gen(function*() {
    const other = yield* sql.reserve
    const waitingBefore = yield* other.execute(
      "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
      [],
      undefined
    )
    const queued = Number(waitingBefore[0]?.n ?? 0)
    const taking = yield* Effect.fork(holder.execute(`SELECT ${lockCall}`, [], undefined))
    yield* other.execute(
      "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
      [],
      undefined
    ).pipe(
      Effect.repeat({ until: (rows) => Number(rows[0]?.n ?? 0) > queued, schedule: Schedule.spaced("10 millis") }),
      Effect.timeout("10 seconds")
    )
    const ended = yield* other.execute(
      `SELECT pg_terminate_backend(pid, 5000) AS ended FROM pg_stat_activity WHERE ${victims}`,
      [],
      undefined
    )
    yield* Fiber.join(taking).pipe(Effect.timeout("10 seconds"))
    return ended.map((r) => r.ended)
  })

layer(PgServer.Default, { timeout: 120_000, excludeTestServices: true })("cluster mode under failures", (it) => {
  it.effect(
    "three replicas: every fire time of every rule runs on exactly one of them, none is missed",
    () =>
      Effect.gen(function*() {
        const { answers, runs, settled, stored } = yield* helpers("three")
        const { pg, server, url } = yield* setUp("three")
        const rules = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
        for (const name of rules) yield* seedKeys(server, `${name}/`, 6, (i) => (i < 3 ? 40 : 1) * day)
        const settings = settingsOf(url, server.url, rules.map((name) => ({ name })))
        const log = skipLogger()
        const replicas = yield* Effect.all([startRunner(settings), startRunner(settings), startRunner(settings)], {
          concurrency: 3
        }).pipe(Effect.provide(log.layer))
        yield* Effect.sleep("10 seconds")
        const cutoff = Date.now() - 500
        yield* settled(cutoff)
        yield* Effect.all(replicas.map((r) => r.stop), { concurrency: 3 })

        const all = yield* runs
        const addresses = new Set(replicas.map((r) => r.address))
        let checked = 0
        for (const rule of rules) {
          const times = yield* stored(rule)
          assert.isAbove(times.length, 2, `${rule}: ${times}`)
          // from the first fire time the cluster's scheduler stored, fire times every 2 s with none left out
          checked += assertOnce(rule, all, log.skips, times[0]!, cutoff, yield* answers(rule)).length
          for (let i = 1; i < times.length; i++) {
            assert.strictEqual(times[i]! - times[i - 1]!, period, `${rule}: ${times}`)
          }
          assert.strictEqual(yield* keyCount(server, `${rule}/`), 3)
        }
        assert.isAtLeast(checked, rules.length * 3)
        // each run names one of the three replicas; the rules were spread over more than one
        assert.isTrue(all.every((r) => addresses.has(r.runner)), JSON.stringify(all))
        assert.isAbove(new Set(all.map((r) => r.runner)).size, 1, JSON.stringify(all))
        const audit = (yield* pg.psql("SELECT count(*), count(DISTINCT key) FROM audit", "three")).trim()
        assert.strictEqual(audit, `${rules.length * 3}|${rules.length * 3}`)
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )

  it.effect(
    "a replica SIGKILLed while fire times keep coming: its rules move and every later fire time is delivered (#6248)",
    () =>
      Effect.gen(function*() {
        const { answers, runs, runsSoFar, settled } = yield* helpers("transition")
        const { server, url } = yield* setUp("transition")
        const rules = ["alpha", "beta", "gamma", "delta"]
        const httpPort = yield* freePort
        const config = yield* writeClusterConfig("transition", {
          endpoint: server.url,
          state: url,
          http: `{ host: 127.0.0.1, port: ${httpPort} }`,
          rules: rules.map((name) =>
            `  - { name: ${name}, bucket: ${CosFake.testBucket}, prefix: ${name}/, olderThan: 30d, ` +
            `schedule: "*/2 * * * * *" }\n`
          ).join("")
        })
        // replica A alone first (a child process, to be SIGKILLed): it holds every rule and the scheduler
        const { address: addressA, child: a } = yield* startChildReplica(config.path)
        yield* waitUntil(
          runsSoFar,
          (all) => rules.every((rule) => all.some((r) => r.rule === rule && r.runner === addressA)),
          {
            every: "200 millis",
            // (a child process compiling the daemon from source: slow on a loaded machine)
            within: "90 seconds",
            message: () => JSON.stringify(a.lines.slice(-20), null, 1)
          }
        )
        // A's metrics carry its runner address on every series, and it holds the scheduler (next fire times)
        const metrics = yield* Effect.promise(() => fetch(`http://127.0.0.1:${httpPort}/metrics`).then((r) => r.text()))
        const series = metrics.split("\n").filter((l) => l.startsWith("cos_retention_"))
        assert.isAbove(series.length, 0)
        for (const line of series) assert.include(line, `runner="${addressA}"`, line)
        for (const rule of rules) {
          assert.match(metrics, new RegExp(`cos_retention_next_run_timestamp_seconds\\{rule="${rule}",runner="`))
          assert.match(metrics, new RegExp(`cos_retention_runs_total\\{rule="${rule}",status="succeeded",runner="`))
        }
        // and its log lines name it, the scheduler's too
        const joined = a.lines.findIndex((l) => String(l.message).startsWith("joined the cluster"))
        assert.isAtLeast(joined, 0)
        const after = a.lines.slice(joined)
        assert.isTrue(after.some((l) => String(l.message).startsWith("cluster scheduler started")))
        for (const line of after) assert.strictEqual(line.annotations?.runner, addressA, JSON.stringify(line))
        // (the pg driver's queued-query notice is not printed)
        assert.isFalse(a.lines.some((l) => String(l.message).includes("DeprecationWarning")))
        const log = skipLogger()
        const settings = readConfig(config)
        const b = yield* startRunner({ ...settings, http: { ...settings.http, enabled: false } }).pipe(
          Effect.provide(log.layer)
        )
        yield* Effect.sleep("3 seconds")
        a.kill("SIGKILL")
        yield* Effect.promise(() => a.exit)
        const killedAt = Date.now()
        // B takes every rule over once A's locks expire, and runs them on and on
        yield* waitUntil(
          runs,
          (all) => rules.every((rule) => all.some((r) => r.rule === rule && r.runner === b.address && r.at > killedAt)),
          { every: "200 millis", within: "60 seconds", message: () => "the rules did not move to B within 60 s" }
        )
        const takeover = yield* runs
        const takeoverAt = Math.max(
          ...rules.map((rule) =>
            Math.min(
              ...takeover.filter((r) => r.rule === rule && r.runner === b.address && r.at > killedAt).map((r) => r.at)
            )
          )
        )
        yield* Effect.sleep("8 seconds")
        const cutoff = Date.now() - 500
        yield* settled(cutoff)
        yield* b.stop
        console.log(`transition: B ran every rule ${takeoverAt - killedAt} ms after A's SIGKILL`)

        const all = yield* runs
        for (const rule of rules) {
          // after the transition, every fire time ran on B: the engine did not stall
          const times = assertOnce(rule, all, log.skips, takeoverAt, cutoff, yield* answers(rule))
          assert.isAtLeast(times.length, 3, rule)
          assert.isTrue(
            all.filter((r) => r.rule === rule && r.at >= takeoverAt).every((r) => r.runner === b.address),
            JSON.stringify(all)
          )
        }
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )

  it.effect(
    "every replica stopped over several fire times, then started again: no fire time twice, catch-up per rule",
    () =>
      Effect.gen(function*() {
        const { answers, runs, settled, stored } = yield* helpers("restart_catchup")
        const { server, url } = yield* setUp("restart_catchup")
        const settings = settingsOf(url, server.url, [
          { name: "catcher", catchUp: true },
          { name: "sleeper", catchUp: false }
        ])
        const log = skipLogger()
        const first = yield* Effect.all([startRunner(settings), startRunner(settings)], { concurrency: 2 }).pipe(
          Effect.provide(log.layer)
        )
        yield* waitUntil(runs, (all) => ["catcher", "sleeper"].every((rule) => all.some((r) => r.rule === rule)), {
          every: "200 millis",
          within: "60 seconds"
        })
        yield* Effect.all(first.map((r) => r.stop), { concurrency: 2 })
        const stoppedAt = Date.now()
        const before = yield* runs
        // down over three fire times or more
        yield* Effect.sleep("7 seconds")
        const restartedAt = Date.now()
        const again = yield* Effect.all([startRunner(settings), startRunner(settings)], { concurrency: 2 }).pipe(
          Effect.provide(log.layer)
        )
        yield* Effect.sleep("5 seconds")
        const cutoff = Date.now() - 500
        yield* settled(cutoff)
        yield* Effect.all(again.map((r) => r.stop), { concurrency: 2 })
        const all = yield* runs
        console.log(
          `restart: ${
            JSON.stringify(all.filter((r) => r.id > before.length).map((r) => [r.rule, r.trigger, r.at - stoppedAt]))
          }`
        )

        // each rule's stored fire times jump over the downtime: the first after the gap is, for the rule asking for
        // it, the catch-up (the last fire time missed, sent when the new scheduler started), for the other the next
        // scheduled one, a period later
        const afterGap = (times: ReadonlyArray<number>) => {
          const i = times.findIndex((t, j) => j > 0 && t > restartedAt - period && t - times[j - 1]! > period)
          assert.isAbove(i, 0, JSON.stringify(times))
          return times[i]!
        }
        const catcherTimes = yield* stored("catcher")
        const caughtUp = afterGap(catcherTimes)
        assert.strictEqual(afterGap(yield* stored("sleeper")), caughtUp + period)
        assert.isAtMost(caughtUp, Date.now())
        for (const rule of ["catcher", "sleeper"]) {
          const mine = all.filter((r) => r.rule === rule)
          const completed = mine.filter((r) => r.status !== "interrupted").map((r) => r.at)
          assert.strictEqual(new Set(completed).size, completed.length, `${rule} ran a fire time twice: ${completed}`)
          // from the restart on, every fire time is decided once: the catch-up runs, then the schedule goes on
          assert.isAtLeast(
            assertOnce(rule, all, log.skips, caughtUp + (rule === "catcher" ? 0 : period), cutoff, yield* answers(rule))
              .length,
            2
          )
        }
        // the rule asking for it runs the last fire time missed once, as the catch-up (these rules have no keys: no
        // run the stop cut has a checkpoint to resume from, which would go first); the other none
        const catchUp = all.filter((r) => r.trigger === "catch-up")
        assert.deepStrictEqual(catchUp.map((r) => [r.rule, r.at, r.status]), [["catcher", caughtUp, "succeeded"]])
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )

  it.effect(
    "every replica down across a fire time: with catchUp false it does not run, with catchUp true it runs once " +
      "(as for one daemon)",
    () =>
      Effect.gen(function*() {
        const { answers, runs, runsSoFar, settled } = yield* helpers("down_across")
        const { server, url } = yield* setUp("down_across")
        // every 10 s: the stop, the downtime and the restart fit between two fire times
        const every = 10_000
        const settings = settingsOf(url, server.url, [
          { name: "catcher", catchUp: true, schedule: "*/10 * * * * *" },
          { name: "sleeper", catchUp: false, schedule: "*/10 * * * * *" }
        ])
        const first = yield* Effect.all([startRunner(settings), startRunner(settings)], { concurrency: 2 })
        // one fire time run by each rule, then every replica stops at once
        yield* waitUntil(
          runsSoFar,
          (all) => ["catcher", "sleeper"].every((rule) => all.some((r) => r.rule === rule && r.status === "succeeded")),
          { every: "200 millis", within: "60 seconds", message: () => "the rules did not run within 60 s" }
        )
        yield* Effect.all(first.map((r) => r.stop), { concurrency: 2 })
        const stoppedAt = Date.now()
        const before = yield* runs
        // down across the next fire time, and back 2.5 s after it
        const missed = Math.ceil((stoppedAt + 1) / every) * every
        yield* Effect.sleep(missed + 2_500 - Date.now())
        const restartedAt = Date.now()
        const again = yield* Effect.all([startRunner(settings), startRunner(settings)], { concurrency: 2 })
        // the restarted cluster runs the fire time after the downtime
        const following = missed + every
        yield* waitUntil(
          runs,
          (all) =>
            ["catcher", "sleeper"].every((rule) =>
              all.some((r) => r.rule === rule && r.at === following && r.status === "succeeded")
            ),
          { every: "200 millis", within: "60 seconds", message: () => "the fire time after the restart did not run" }
        )
        yield* settled(following)
        yield* Effect.all(again.map((r) => r.stop), { concurrency: 2 })
        const all = yield* runs
        const after = all.filter((r) => r.id > Math.max(0, ...before.map((b) => b.id)))
        console.log(`down across: ${JSON.stringify(after.map((r) => [r.rule, r.trigger, r.at - missed]))}`)
        assert.isBelow(restartedAt, following)
        // (nothing ran while every replica was down)
        assert.isTrue(before.every((r) => r.at < missed), JSON.stringify(before))
        // the missed fire time: the rule without catch-up never runs it; the other runs it once, as a catch-up
        assert.deepStrictEqual(
          after.filter((r) => r.rule === "sleeper").map((r) => [r.at, r.trigger, r.status]),
          [[following, "schedule", "succeeded"]]
        )
        assert.deepStrictEqual(
          after.filter((r) => r.rule === "catcher").map((r) => [r.at, r.trigger, r.status]),
          [[missed, "catch-up", "succeeded"], [following, "schedule", "succeeded"]],
          `the engine's answer to the missed fire time: ${(yield* answers("catcher")).get(missed) ?? "no message"}`
        )
        // and no fire time ever ran twice
        for (const rule of ["catcher", "sleeper"]) {
          const completed = all.filter((r) => r.rule === rule && r.status !== "interrupted").map((r) => r.at)
          assert.strictEqual(new Set(completed).size, completed.length, `${rule} ran a fire time twice: ${completed}`)
        }
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )

  it.effect(
    "one replica running ten rules at once: every one finishes (a connection per rule's lock, no starving)",
    () =>
      Effect.gen(function*() {
        const { runs, settled } = yield* helpers("many_rules")
        const { server, url } = yield* setUp("many_rules", {
          faults: { operations: { DeleteObjects: { latencyMs: 300 } } }
        })
        const rules = Array.from({ length: 10 }, (_, i) => `rule-${i}`)
        for (const name of rules) yield* seedKeys(server, `${name}/`, 300, 40 * day)
        // every rule at the same time, each run long enough (3 batches of 100 at 300 ms) for all to overlap
        const settings = settingsOf(url, server.url, rules.map((name) => ({ name, batchSize: 100, concurrency: 1 })))
        const replica = yield* startRunner(settings)
        yield* waitUntil(
          runs,
          (all) => rules.every((rule) => all.some((r) => r.rule === rule && r.status === "succeeded")),
          { every: "200 millis", within: "40 seconds", message: () => "not every rule finished a run within 40 s" }
        )
        yield* settled(Date.now() - 2000)
        yield* replica.stop
        for (const name of rules) {
          assert.strictEqual(yield* keyCount(server, `${name}/`), 0, name)
        }
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )

  it.effect(
    "Postgres restarted under a running cluster: runs fail cleanly, the replicas carry on, nothing deleted twice",
    () =>
      Effect.gen(function*() {
        const { query, runs } = yield* helpers("pg_restart")
        const { pg, server, url } = yield* setUp("pg_restart", {
          faults: { operations: { DeleteObjects: { latencyMs: 100 } } }
        })
        const keys = 3000
        yield* seedKeys(server, "logs/old/", keys, 40 * day)
        yield* seedKeys(server, "logs/new/", 100, day)
        const count = (p: string) => keyCount(server, p)
        const settings = settingsOf(url, server.url, [
          { name: "logs", prefix: "logs/", schedule: "*/3 * * * * *", batchSize: 100, concurrency: 1 }
        ])
        const replicas = yield* Effect.all([startRunner(settings), startRunner(settings)], { concurrency: 2 })
        yield* Effect.addFinalizer(() => Effect.all(replicas.map((r) => r.stop), { concurrency: 2 }))
        // mid-run: a good part deleted, not all
        yield* waitUntil(count("logs/old/"), (n) => n <= keys - 800, { every: "5 millis", within: "60 seconds" })
        yield* pg.restart
        const restartedAt = Date.now()
        assert.isAbove(yield* count("logs/old/"), 0, "the run finished before the restart")
        // the replicas carry on: the rest is deleted by runs after the restart, and one succeeds
        yield* waitUntil(
          Effect.gen(function*() {
            const left = yield* count("logs/old/")
            const all = yield* runs.pipe(Effect.orElseSucceed(() => [] as Array<Run>))
            return left === 0 && all.some((r) => r.status === "succeeded" && r.at > restartedAt)
          }).pipe(Effect.catchAllDefect(() => Effect.succeed(false))),
          (done) => done,
          { every: "250 millis", within: "60 seconds", message: () => "the cluster did not carry on within 60 s" }
        )
        // and keeps running its schedule: a later fire time succeeds too
        const done = yield* runs
        const lastDone = Math.max(...done.filter((r) => r.status === "succeeded").map((r) => r.at))
        yield* waitUntil(runs, (all) => all.some((r) => r.status === "succeeded" && r.at > lastDone), {
          every: "250 millis",
          within: "30 seconds"
        })
        // both replicas are still in the cluster
        const runners = yield* query("SELECT address FROM cluster_runners WHERE healthy ORDER BY address")
        assert.deepStrictEqual(runners.map((r) => r[0]), replicas.map((r) => r.address).sort())
        // and both hold the state's writer lock again (shared), so a `once` is still refused while the cluster runs
        yield* waitUntil(query(writerLocks), (rows) => rows[0]![0] === "2", {
          every: "200 millis",
          within: "20 seconds",
          message: () => "the replicas did not take the writer lock again"
        })
        for (const r of replicas) {
          yield* Effect.flatMap(StateStore.WriterLock, (held) => held.check).pipe(
            Effect.provide(r.context)
          )
        }
        const once = yield* Effect.flip(exclusiveLock(url))
        assert.include(once.message, "in use by another cos-retention process")
        yield* Effect.all(replicas.map((r) => r.stop), { concurrency: 2 })
        const all = yield* runs
        console.log(`postgres restart: ${JSON.stringify(all.map((r) => [r.id, r.status, r.trigger]))}`)
        assert.strictEqual(yield* count("logs/new/"), 100)
        // the run that lost Postgres ended recorded (failed or interrupted), none is left running
        assert.isTrue(all.every((r) => r.status !== "running"), JSON.stringify(all))
        const completed = all.filter((r) => r.status === "succeeded").map((r) => r.at)
        assert.strictEqual(new Set(completed).size, completed.length, `a fire time ran twice: ${completed}`)
        // each old key deleted once in the audit, no young key, nothing left pending
        const audit = yield* query(
          "SELECT count(*), count(DISTINCT key), count(*) FILTER (WHERE key LIKE 'logs/new/%') FROM audit " +
            "WHERE state = 'deleted'"
        )
        assert.deepStrictEqual(audit[0], [String(keys), String(keys), "0"])
        assert.deepStrictEqual(
          (yield* query(
            "SELECT (SELECT count(*) FROM audit WHERE state = 'pending') + (SELECT count(*) FROM audit_intents)"
          ))[0],
          ["0"]
        )
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )

  it.effect(
    "a replica whose writer lock a once took while its Postgres session was gone stops (exit 1) rather than write beside it",
    () =>
      Effect.gen(function*() {
        const { server, url } = yield* setUp("lock_taken")
        const config = yield* writeClusterConfig("lock-taken", {
          endpoint: server.url,
          state: url,
          rules:
            `  - { name: logs, bucket: ${CosFake.testBucket}, prefix: logs/, olderThan: 30d, schedule: "*/2 * * * * *" }
`
        })
        const { child: a } = yield* startChildReplica(config.path)
        yield* Effect.promise(() => a.waitFor((l) => String(l.message).startsWith("joined the cluster"))).pipe(
          Effect.timeout("60 seconds")
        )
        // the replica's writer-lock session ends (as in a restart of Postgres) and, before the replica takes the
        // lock again, another process takes it exclusively (as a `once` started at that moment would)
        const sql = yield* stateSql(url)
        const connection = yield* sql.reserve
        const ended = yield* endAndTake(
          sql,
          connection,
          "pg_advisory_lock(hashtext('cos-retention state'), 1)",
          "application_name LIKE 'cos-retention pid=%'"
        )
        assert.isTrue(ended.length > 0 && ended.every((e) => e === true), JSON.stringify(ended))
        // the replica finds its lock gone and taken: it stops rather than write beside the other process
        const code = yield* Effect.promise(() => a.exit).pipe(Effect.timeout("30 seconds"))
        assert.strictEqual(code, 1, JSON.stringify(a.lines.slice(-10), null, 1))
        // the line saying it stops (a fire time whose attempt failed meanwhile names the same cause in a warning
        // before it: "no run was recorded for this fire time (... this one stops); trying again")
        const line = a.lines.find((l) =>
          String(l.message).includes("another cos-retention process took it") &&
          String(l.message).includes("this one stops: the daemon stopped")
        )
        assert.isDefined(line, JSON.stringify(a.lines.slice(-10), null, 1))
        assert.include(String(line?.message), "this one stops: the daemon stopped")
        assert.strictEqual(line?.logLevel, "ERROR")
      }).pipe(Effect.orDie, Effect.scoped),
    150_000
  )

  it.effect(
    "a run whose rule lock another session took after the lock's session ended stops; later runs finish, once each",
    () =>
      Effect.gen(function*() {
        const { query, runs } = yield* helpers("rule_lock")
        const { server, url } = yield* setUp("rule_lock", {
          faults: { operations: { DeleteObjects: { latencyMs: 100 } } }
        })
        const keys = 3000
        yield* seedKeys(server, "logs/", keys, 40 * day)
        const count = keyCount(server, "logs/")
        const settings = settingsOf(url, server.url, [
          { name: "logs", schedule: "*/3 * * * * *", batchSize: 100, concurrency: 1 }
        ])
        const replica = yield* startRunner(settings)
        yield* Effect.addFinalizer(() => replica.stop)
        yield* waitUntil(count, (n) => n <= keys - 500, { every: "5 millis", within: "60 seconds" })
        // the session holding the run's lock ends, and another session takes the lock at once (as a replica that
        // was given the rule meanwhile would)
        const sql = yield* stateSql(url)
        const connection = yield* sql.reserve
        const lock = "(hashtext('cos-retention rule logs')::bigint & 4294967295)::oid"
        const ended = yield* endAndTake(
          sql,
          connection,
          "pg_advisory_lock(hashtext('cos-retention rule logs'))",
          `pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND objid = ${lock})`
        )
        assert.deepStrictEqual(ended, [true])
        // the run stops (its in-flight batch finishes within the grace period) and nothing more is deleted
        yield* waitUntil(runs, (all) => all.length > 0 && all.every((r) => r.status !== "running"), {
          every: "200 millis",
          within: "20 seconds",
          message: () => "the run went on without its lock"
        })
        const stopped = yield* count
        assert.isAbove(stopped, 0, "the run finished before it was stopped")
        yield* Effect.sleep("4 seconds")
        assert.strictEqual(yield* count, stopped, "keys were deleted while another session held the rule's lock")
        // the other session lets go: the rule's next runs delete the rest
        yield* connection.execute("SELECT pg_advisory_unlock(hashtext('cos-retention rule logs'))", [], undefined)
        yield* waitUntil(count, (n) => n === 0, {
          every: "250 millis",
          within: "60 seconds",
          message: () => "the rule did not run again"
        })
        const audit = yield* query(
          "SELECT count(*), count(DISTINCT key) FROM audit WHERE state = 'deleted'"
        )
        assert.deepStrictEqual(audit[0], [String(keys), String(keys)])
        assert.deepStrictEqual((yield* query("SELECT count(*) FROM audit WHERE state = 'pending'"))[0], ["0"])
        const first = (yield* runs)[0]!
        assert.strictEqual(first.status, "interrupted", JSON.stringify(yield* runs))
      }).pipe(
        Effect.orDie,
        Effect.withConfigProvider(credentials),
        Logger.withMinimumLogLevel(LogLevel.Warning),
        Effect.scoped
      ),
    150_000
  )

  it.effect(
    "a once whose writer lock a replica took while its Postgres session was gone stops (exit 2), deleting no more",
    () =>
      Effect.gen(function*() {
        const { server, url } = yield* setUp("once_lock", {
          faults: { operations: { DeleteObjects: { latencyMs: 200 } } }
        })
        const keys = 3000
        yield* seedKeys(server, "logs/", keys, 40 * day)
        const count = keyCount(server, "logs/")
        const config = yield* writeClusterConfig("once-lock", {
          endpoint: server.url,
          state: url,
          rules: `  - { name: logs, bucket: ${CosFake.testBucket}, prefix: logs/, olderThan: 30d, schedule: "0 0 1 1 *",
      batchSize: 100, concurrency: 1 }
`
        })
        const once = cosRetention(["once", "--config", config.path])
        yield* Effect.addFinalizer(() => Effect.sync(() => once.kill("SIGKILL")))
        yield* waitUntil(count, (n) => n <= keys - 300, { every: "5 millis", within: "60 seconds" })
        // the once's writer-lock session ends and a replica takes the lock (shared) before the once takes it again
        const sql = yield* stateSql(url)
        const connection = yield* sql.reserve
        const ended = yield* endAndTake(
          sql,
          connection,
          "pg_advisory_lock_shared(hashtext('cos-retention state'), 1)",
          "application_name LIKE 'cos-retention pid=%'"
        )
        assert.deepStrictEqual(ended, [true])
        const code = yield* Effect.promise(() => once.exit).pipe(Effect.timeout("30 seconds"))
        assert.strictEqual(code, 2, JSON.stringify(once.lines.slice(-10), null, 1))
        assert.isTrue(
          once.lines.some((l) =>
            String(l.message).includes("another cos-retention process took it before this one could take it again")
          ),
          JSON.stringify(once.lines.slice(-10), null, 1)
        )
        const left = yield* count
        assert.isAbove(left, 0, "the once finished before it was stopped")
        yield* Effect.sleep("2 seconds")
        assert.strictEqual(yield* count, left)
      }).pipe(Effect.orDie, Effect.scoped),
    150_000
  )
  it.effect(
    "a scheduler that cannot read its rule's last run when it starts retries every second, then runs every fire time",
    () =>
      Effect.gen(function*() {
        const database = "last_run"
        const { server, url } = yield* setUp(database)
        const { query, runs } = yield* helpers(database)
        yield* seedKeys(server, "logs/", 6, (i) => (i < 3 ? 40 : 1) * day)
        const every = 10_000
        const settings = settingsOf(url, server.url, [{ name: "logs", schedule: "*/10 * * * * *" }])
        const lines: Array<{ message: string; runner: string | undefined }> = []
        const collect = Logger.replace(
          Logger.defaultLogger,
          Logger.make(({ annotations, message }) => {
            const runner = HashMap.get(annotations, "runner")
            lines.push({ message: String(message), runner: runner._tag === "Some" ? String(runner.value) : undefined })
          })
        )
        const logged = (text: string) => lines.filter((l) => l.message.includes(text))
        const replicas = yield* Effect.all([startRunner(settings), startRunner(settings)], { concurrency: 2 }).pipe(
          Effect.provide(collect)
        )
        yield* Effect.addFinalizer(() => Effect.all(replicas.map((r) => r.stop), { concurrency: 2 }))
        yield* waitForSpread(replicas)
        const succeeded = (after: number) =>
          runs.pipe(
            Effect.repeat({
              until: (all) => all.some((r) => r.status === "succeeded" && r.at > after),
              schedule: Schedule.spaced("200 millis")
            }),
            Effect.timeout("40 seconds"),
            Effect.catchTag("TimeoutException", () => Effect.dieMessage(`no run of a fire time after ${after}`))
          )
        yield* succeeded(0)
        // the replica holding the scheduler now (the last to have started it)
        const holder = logged("cluster scheduler started").at(-1)!.runner
        const stopping = replicas.find((r) => r.address === holder)!
        const other = replicas.find((r) => r !== stopping)!
        // between two fire times, with no run going: the runs table goes away (every read of it fails, as while
        // Postgres is down) and the holder stops; the other replica starts the scheduler and cannot read the rule's
        // last run
        yield* Effect.sleep(every - (Date.now() % every) + 2000)
        assert.deepStrictEqual(yield* query("SELECT count(*) FROM runs WHERE status = 'running'"), [["0"]])
        yield* query("ALTER TABLE runs RENAME TO runs_hidden")
        const hiddenAt = Date.now()
        yield* stopping.stop
        yield* Effect.sync(() => logged("could not read the rule's last run yet, retrying").length).pipe(
          Effect.repeat({ until: (n) => n >= 2, schedule: Schedule.spaced("200 millis") }),
          Effect.timeout("30 seconds"),
          Effect.catchTag("TimeoutException", () =>
            Effect.dieMessage(`the scheduler did not retry: ${JSON.stringify(lines.slice(-5))}`))
        )
        assert.isTrue(
          logged("could not read the rule's last run yet").every((l) =>
            l.runner === other.address
          )
        )
        assert.deepStrictEqual(logged("the cluster scheduler stopped"), [])
        yield* query("ALTER TABLE runs_hidden RENAME TO runs")
        const shownAt = Date.now()
        // the fire times due meanwhile (sent late) and the next one run
        const next = Math.ceil(shownAt / every) * every
        yield* succeeded(next - 1)
        const all = (yield* runs).filter((r) => r.status !== "interrupted")
        const times = all.map((r) => r.at)
        assert.strictEqual(new Set(times).size, times.length, `a fire time ran twice: ${JSON.stringify(all)}`)
        assert.isTrue(all.every((r) => r.status === "succeeded"), JSON.stringify(all))
        // none missed: every fire time from the first one run through the last, hidden table or not
        for (let t = times[0]!; t <= next; t += every) {
          assert.isTrue(times.includes(t), `${t} (hidden ${hiddenAt}-${shownAt}) did not run: ${JSON.stringify(all)}`)
        }
        assert.isTrue(all.filter((r) => r.at > hiddenAt).every((r) => r.runner === other.address))
        assert.deepStrictEqual(yield* query("SELECT count(*), count(DISTINCT key) FROM audit"), [["3", "3"]])
        assert.strictEqual(yield* keyCount(server, "logs/"), 3)
      }).pipe(Effect.withConfigProvider(credentials), Effect.scoped),
    150_000
  )
})
