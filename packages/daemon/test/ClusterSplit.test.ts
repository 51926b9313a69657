import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { vi } from "vitest"
import * as ClusterSplit from "../src/ClusterSplit.js"
import * as Config from "../src/Config.js"
import { State } from "../src/State.js"
import * as StateStore from "../src/StateStore.js"
import {
  clusterSettings,
  credentials,
  day,
  fire,
  keyCount,
  rows,
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
import { PgServer } from "./support/postgres.js"

// every test here waits on several conditions with bounds of 30-60 s each (runners starting, shards spread, runs):
// more than vitest's 30 s default on a loaded machine
vi.setConfig({ testTimeout: 240_000 })

/** One split rule over `logs/`, scheduled once a year: the tests send its fire time themselves. */
const settingsFor = (url: string, endpoint: string, rule: Record<string, unknown>) =>
  clusterSettings(url, endpoint, [{ name: "logs", prefix: "logs/", schedule: "0 0 1 1 *", batchSize: 100, ...rule }])

// keys that sort in awkward places: astral characters, combining marks, XML-special characters, spaces, line breaks
const oddNames = ["  lead", "trail  ", "𝄞clef", "e\u0301", "<&\">'", "line\nbreak", "z\u{10FFFF}"]

const seedOld = (server: CosFakeServer.CosFakeServer, count: number) =>
  Effect.gen(function*() {
    yield* seedKeys(server, "logs/old/", count, 40 * day)
    yield* Store.seed(server.fake.store, {
      bucket: CosFake.testBucket,
      count: oddNames.length,
      keyFn: (i) => `logs/${oddNames[i]}`,
      ageMs: 40 * day,
      size: 10
    })
  })

/** Waits until the run `where` selects (the only one, without it) has ended, succeeded or failed. */
const runEnded = (database: string, where = "", message?: () => string) =>
  Effect.flatMap(PgServer, (pg) =>
    waitUntil(
      pg.psql(`SELECT status FROM runs${where}`, database),
      (s) => s.trim() === "succeeded" || s.trim() === "failed",
      { every: "100 millis", within: "60 seconds", message }
    ))

layer(PgServer.Default, { timeout: 120_000, excludeTestServices: true })("split runs", (it) => {
  it.effect("a split rule spread over three runners: every key deleted once, young keys kept, one history row", () =>
    Effect.gen(function*() {
      const { pg, server, url } = yield* setUp("split_spread", {
        faults: { operations: { DeleteObjects: { latencyMs: 20 } } }
      })
      const old = 4000
      yield* seedOld(server, old)
      yield* seedKeys(server, "logs/new/", 300, day)
      const settings = settingsFor(url, server.url, { parallelism: 6 })
      const runners = yield* Effect.all([startRunner(settings), startRunner(settings), startRunner(settings)])
      yield* Effect.addFinalizer(() => Effect.all(runners.map((r) => r.stop), { concurrency: 3 }))
      yield* waitForSpread(runners)
      const fireAt = Date.now()
      yield* fire(runners[0]!, fireAt)
      yield* runEnded("split_spread")
      const runs = rows(yield* pg.psql("SELECT id, status, scheduled_at, deleted, error FROM runs", "split_spread"))
      const expected = old + oddNames.length
      assert.deepStrictEqual(runs.map((r) => r.slice(1, 4)), [["succeeded", String(fireAt), String(expected)]])
      const chunks = rows(
        yield* pg.psql(
          "SELECT chunk, run_id, status, runner, attempts FROM cos_retention_split_chunks ORDER BY chunk",
          "split_spread"
        )
      )
      assert.strictEqual(chunks.length, 6)
      assert.isTrue(
        chunks.every((c) => c[1] === runs[0]![0] && c[2] === "succeeded" && c[4] === "1"),
        JSON.stringify(chunks)
      )
      // placement: two chunks on each runner
      const perRunner = new Map<string, number>()
      for (const c of chunks) perRunner.set(c[3]!, (perRunner.get(c[3]!) ?? 0) + 1)
      assert.deepStrictEqual([...perRunner.values()], [2, 2, 2], JSON.stringify(chunks))
      assert.sameMembers([...perRunner.keys()], runners.map((r) => r.address))
      // every old key deleted once, under the run's id; the young ones kept
      const audit = rows(
        yield* pg.psql(
          "SELECT count(*), count(DISTINCT key), count(DISTINCT run_id), count(*) FILTER (WHERE key LIKE 'logs/new/%') " +
            "FROM audit WHERE state = 'deleted'",
          "split_spread"
        )
      )
      assert.deepStrictEqual(audit, [[String(expected), String(expected), "1", "0"]])
      assert.strictEqual(yield* keyCount(server, "logs/"), 300)
      assert.strictEqual(
        yield* pg.psql(
          "SELECT (SELECT count(*) FROM audit WHERE state = 'pending') + (SELECT count(*) FROM audit_intents)",
          "split_spread"
        ),
        "0\n"
      )
    }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped))

  it.effect("a chunk whose owner stops waiting for it runs on to its end, and answers its outcome when asked again", () =>
    Effect.gen(function*() {
      const { pg, server, url } = yield* setUp("split_chunk_wait_interrupted", {
        faults: { operations: { DeleteObjects: { latencyMs: 150 } } }
      })
      const keys = 2000
      yield* seedKeys(server, "logs/old/", keys, 40 * day)
      const runner = yield* startRunner(settingsFor(url, server.url, { parallelism: 2, concurrency: 1 }))
      yield* Effect.addFinalizer(() => runner.stop)
      // a run's plan of one chunk over every key, as the rule's owner records it
      const scheduledAt = Date.now()
      const run = yield* Effect.flatMap(
        State,
        (state) =>
          state.startRun({ rule: "logs", trigger: "schedule", dryRun: false, scheduledAt, runner: "127.0.0.1:1" })
      ).pipe(
        Effect.provide(State.layerStore(Either.getOrThrow(StateStore.fromSetting(url, "/"))))
      )
      const entityId = `logs/${scheduledAt}/0`
      const sql = yield* stateSql(url)
      yield* sql`INSERT INTO cos_retention_split_chunks ${
        sql.insert({
          rule: "logs",
          scheduled_at: scheduledAt,
          chunk: 0,
          chunks: 1,
          run_id: run.id,
          entity_id: entityId,
          after_key: "",
          through_key: null,
          status: "planned"
        })
      }`
      const chunk = new ClusterSplit.Chunk({ rule: "logs", scheduledAt, chunk: 0 })
      const ask = Effect.flatMap(ClusterSplit.ChunkEntity.client, (client) => client(entityId).run(chunk)).pipe(
        Effect.provide(runner.context)
      )
      const status = pg.psql("SELECT status FROM cos_retention_split_chunks", "split_chunk_wait_interrupted").pipe(
        Effect.map((s) => s.trim())
      )
      // the owner's wait is interrupted while the chunk deletes (its rule lock lost, a sibling's wait failing)
      const waiting = yield* Effect.fork(ask)
      yield* waitUntil(keyCount(server, "logs/old/"), (n) => n < keys, { every: "20 millis", within: "60 seconds" })
      yield* Fiber.interrupt(waiting)
      // the chunk goes on to its end on its runner
      yield* waitUntil(status, (s) => s === "succeeded" || s === "failed" || s === "interrupted", {
        every: "100 millis",
        within: "60 seconds",
        message: () => "the chunk did not end within 60 s"
      })
      assert.strictEqual(yield* status, "succeeded")
      assert.strictEqual(yield* keyCount(server, "logs/old/"), 0)
      // asked again (the owner's next attempt at the run), it answers its outcome, not an interruption
      const again = yield* ask.pipe(Effect.timeout("30 seconds"))
      assert.deepStrictEqual(again, { status: "succeeded", runner: runner.address, error: null })
      assert.deepStrictEqual(
        rows(
          yield* pg.psql(
            "SELECT count(*), count(DISTINCT key) FROM audit WHERE state = 'deleted'",
            "split_chunk_wait_interrupted"
          )
        ),
        [[String(keys), String(keys)]]
      )
    }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped))

  it.effect("the bucket's write budget is shared: chunks on two runners stay within it together", () =>
    Effect.gen(function*() {
      // COS's quota here is 600 keys/s: four chunks each spending a 400 keys/s budget would be throttled
      const { pg, server, url } = yield* setUp("split_budget", {
        faults: { operations: { DeleteObjects: { latencyMs: 5 } }, quotas: { writeKeysPerSecond: 600 } }
      })
      const keys = 4000
      yield* seedKeys(server, "logs/", keys, 40 * day)
      const budget = 400
      const settings = settingsFor(url, server.url, { parallelism: 4, writeBudget: budget, concurrency: 8 })
      const runners = yield* Effect.all([startRunner(settings), startRunner(settings)])
      yield* Effect.addFinalizer(() => Effect.all(runners.map((r) => r.stop), { concurrency: 2 }))
      yield* waitForSpread(runners)
      yield* fire(runners[0]!, Date.now())
      yield* runEnded("split_budget")
      const stats = yield* server.fake.stats
      // the deletes as COS saw them: keys per second over the span from the first to the last
      const deletes = stats.log.filter((e) => e.operation === "DeleteObjects")
      const slowDowns = stats.byOperationStatus["DeleteObjects 503"] ?? 0
      const run = rows(yield* pg.psql("SELECT status, deleted, throttled FROM runs", "split_budget"))
      assert.deepStrictEqual(run, [["succeeded", String(keys), "0"]])
      assert.strictEqual(slowDowns, 0, JSON.stringify(stats.byOperationStatus))
      const chunks = rows(yield* pg.psql("SELECT DISTINCT runner FROM cos_retention_split_chunks", "split_budget"))
      assert.strictEqual(chunks.length, 2)
      // the deletes as COS received them: at most one second's burst above the budget over the whole run, so at
      // least 9 s from the first to the last (four chunks each spending the budget would send 1,600 keys/s and be
      // answered SlowDown: the check above). The fake stamps a request when its event loop, shared with both runners
      // here, gets to it: on a loaded machine the first ones are stamped late (seen: 8.41 s), hence a second of slack
      const times = deletes.map((e) => e.time)
      const seconds = (Math.max(...times) - Math.min(...times)) / 1000
      assert.isAtLeast(seconds, (keys - budget) / budget - 1, `${keys} keys in ${seconds} s`)
      assert.isAbove(deletes.length, 0)
    }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped))

  it.effect(
    "the runner doing a split run SIGKILLed mid-run: its chunks resume from their checkpoints on another runner",
    () =>
      Effect.gen(function*() {
        const { pg, server, url } = yield* setUp("split_failover", {
          faults: { operations: { DeleteObjects: { latencyMs: 100 } } }
        })
        const keys = 4000
        const young = 200
        yield* seedOld(server, keys)
        yield* seedKeys(server, "logs/new/", young, day)
        const expected = keys + oddNames.length
        const count = (p: string) => keyCount(server, p)
        const config = yield* writeClusterConfig("split", {
          endpoint: server.url,
          state: url,
          rules: `  - name: logs
    bucket: ${CosFake.testBucket}
    prefix: logs/
    olderThan: 30d
    schedule: "*/3 * * * * *"
    batchSize: 100
    concurrency: 1
    parallelism: 3
`
        })
        // replica A, alone, plans the run and holds every chunk; SIGKILLed once a part is deleted and checkpointed
        const { child: a } = yield* startChildReplica(config.path)
        yield* waitUntil(
          pg.psql("SELECT count(*) FROM cos_retention_split_chunks WHERE checkpoint IS NOT NULL", "split_failover")
            .pipe(Effect.catchAllDefect(() => Effect.succeed("0"))),
          (n) => Number(n.trim()) >= 2,
          { every: "20 millis", within: "60 seconds" }
        ).pipe(
          Effect.catchTag("TimeoutException", () =>
            Effect.flatMap(
              pg.psql(
                "SELECT * FROM runs; SELECT * FROM cos_retention_split_chunks; " +
                  "SELECT id, entity_type, entity_id, tag, processed, deliver_at FROM cluster_messages",
                "split_failover"
              ),
              (db) => Effect.dieMessage(`${db}\n${JSON.stringify(a.lines.slice(-20), null, 1)}`)
            ))
        )
        a.kill("SIGKILL")
        yield* Effect.promise(() => a.exit)
        const leftAtKill = yield* count("logs/old/")
        assert.isAbove(leftAtKill, 0, "the run finished before the kill")
        // fire times due while the run goes are skipped as overlaps: one run so far
        const before = rows(yield* pg.psql("SELECT id, scheduled_at FROM runs", "split_failover"))
        assert.strictEqual(before.length, 1)

        // replica B joins; once A's locks expire it holds the rule and the chunks, whose messages come to it again
        const b = yield* startRunner(readConfig(config))
        yield* Effect.addFinalizer(() => b.stop)
        yield* runEnded("split_failover", ` WHERE id = ${before[0]![0]}`).pipe(
          Effect.catchTag("TimeoutException", () =>
            Effect.flatMap(
              pg.psql(
                "SELECT id, rule, status, trigger, scheduled_at, runner, deleted, error FROM runs; " +
                  "SELECT chunk, status, runner, attempts, checkpoint FROM cos_retention_split_chunks; " +
                  "SELECT id, entity_type, entity_id, tag, processed, deliver_at FROM cluster_messages",
                "split_failover"
              ),
              (db) => Effect.dieMessage(`the split run was not resumed within 60 s\n${db}`)
            ))
        )
        // (the rule fires every 3 s: later fire times run too, over nothing left to delete; stopped now, so that
        // the rows read below stay as they are)
        yield* b.stop
        assert.strictEqual(yield* count("logs/new/"), young)
        assert.strictEqual(yield* count("logs/old/"), 0)
        // no later fire time ran beside the cut one over the keys it had left (each run's deletions from the audit)
        assert.deepStrictEqual(
          rows(
            yield* pg.psql(
              `SELECT count(*) FROM audit WHERE state = 'deleted' AND run_id <> ${before[0]![0]}`,
              "split_failover"
            )
          ),
          [["0"]]
        )
        const run = rows(
          yield* pg.psql(`SELECT status, deleted, runner FROM runs WHERE id = ${before[0]![0]}`, "split_failover")
        )
        assert.deepStrictEqual(run, [["succeeded", String(expected), b.address]])
        const chunks = rows(
          yield* pg.psql(
            "SELECT chunk, status, runner, attempts, checkpoint IS NOT NULL FROM cos_retention_split_chunks " +
              `WHERE run_id = ${before[0]![0]} ORDER BY chunk`,
            "split_failover"
          )
        )
        assert.isTrue(
          chunks.every((c) => c[1] === "succeeded" && c[2] === b.address),
          JSON.stringify(chunks)
        )
        // the chunks A had started were taken up again (a second attempt)
        assert.isAtLeast(chunks.filter((c) => Number(c[3]) >= 2).length, 2, JSON.stringify(chunks))
        const audit = rows(
          yield* pg.psql(
            "SELECT count(*), count(DISTINCT key), count(*) FILTER (WHERE key LIKE 'logs/new/%') FROM audit " +
              "WHERE state = 'deleted'",
            "split_failover"
          )
        )
        assert.deepStrictEqual(audit, [[String(expected), String(expected), "0"]])
        assert.strictEqual(
          yield* pg.psql(
            "SELECT (SELECT count(*) FROM audit WHERE state = 'pending') + (SELECT count(*) FROM audit_intents)",
            "split_failover"
          ),
          "0\n"
        )
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )
})

describe("parallelism in the configuration", () => {
  const decode = (state: string, rule: Record<string, unknown>) =>
    Config.decode({
      cos: { region: CosFake.testRegion },
      state,
      rules: [{ name: "r", bucket: CosFake.testBucket, prefix: "p/", olderThan: "1d", schedule: "0 0 * * *", ...rule }]
    }, { source: "test", baseDir: "/" })
  const errors = (result: ReturnType<typeof decode>) => Either.isLeft(result) ? result.left.message : ""

  it("accepts 1 to 64 on a Postgres state", () => {
    assert.strictEqual(Either.getOrThrow(decode("postgres://u@h/db", { parallelism: 64 })).rules[0]!.parallelism, 64)
    assert.strictEqual(Either.getOrThrow(decode("state.db", {})).rules[0]!.parallelism, 1)
    assert.strictEqual(Either.getOrThrow(decode("state.db", { parallelism: 1 })).rules[0]!.parallelism, 1)
  })

  it("refuses bad values and what a split cannot do, with a sentence naming the field", () => {
    assert.include(errors(decode("postgres://u@h/db", { parallelism: 0 })), "rules[0].parallelism")
    assert.include(errors(decode("postgres://u@h/db", { parallelism: 65 })), "65 is over 64")
    assert.include(errors(decode("postgres://u@h/db", { parallelism: 2.5 })), "not a positive whole number")
    assert.include(errors(decode("state.db", { parallelism: 2 })), "needs cluster mode (state: postgres://...)")
    const unsplittable = errors(decode("postgres://u@h/db", { parallelism: 2, keepLatest: 3, maxDeletes: 10 }))
    assert.include(unsplittable, "rules[0].parallelism: a split rule deletes current objects by key range")
    assert.include(unsplittable, "keepLatest")
    assert.include(unsplittable, "maxDeletes")
  })
})
