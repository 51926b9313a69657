/**
 * One fire time of a rule in cluster mode whose run cannot start: it is answered only with a run of its own (a row
 * in `runs` with its scheduled time), never with an earlier run's. A run refused before it deletes anything (pending
 * audit rows that cannot be reconciled) is recorded failed, as one daemon records it; a fire time whose run row
 * cannot be written at all is delivered again until it can.
 */
import { CosFake } from "@effect-cos/testkit"
import { assert, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Cluster from "../src/Cluster.js"
import { State } from "../src/State.js"
import * as StateStore from "../src/StateStore.js"
import {
  clusterSettings,
  credentials,
  day,
  fire,
  keyCount,
  queryOn,
  seedKeys,
  setUp,
  startRunner,
  stateSql,
  waitUntil
} from "./support/cluster.js"
import { PgServer } from "./support/postgres.js"

/** One rule over `logs/`, scheduled once a year: the tests send its fire times themselves. */
const settingsFor = (url: string, endpoint: string, parallelism = 1) =>
  clusterSettings(url, endpoint, [{ name: "logs", prefix: "logs/", schedule: "0 0 1 1 *", parallelism }])

/** A database, a fake holding 10 old keys under logs/, and one runner (stopped with the scope) for the rule. */
const oneRunner = (database: string) =>
  Effect.gen(function*() {
    const { pg, server, url } = yield* setUp(database)
    yield* seedKeys(server, "logs/", 10, 40 * day)
    const runner = yield* startRunner(settingsFor(url, server.url))
    yield* Effect.addFinalizer(() => runner.stop)
    return { pg, server, runner, query: queryOn(database) }
  })

layer(PgServer.Default, { timeout: 120_000, excludeTestServices: true })(
  "cluster mode: a fire time's own run",
  (it) => {
    for (const parallelism of [1, 2]) {
      it.effect(
        "a fire time whose run cannot reconcile the audit first is recorded failed with its own fire time, not answered " +
          `with the previous run (parallelism ${parallelism})`,
        () =>
          Effect.gen(function*() {
            const database = `fire_refused_${parallelism}`
            const { server, url } = yield* setUp(database)
            yield* seedKeys(server, "logs/old/", 10, 40 * day)
            yield* seedKeys(server, "logs/new/", 1, day)
            const runner = yield* startRunner(settingsFor(url, server.url, parallelism))
            yield* Effect.addFinalizer(() => runner.stop)
            const query = queryOn(database)
            /** Waits until the engine has stored an answer to the fire time (its message processed). */
            const answered = (scheduledAt: number) =>
              waitUntil(
                query(
                  `SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND processed AND deliver_at = ${scheduledAt}`
                ),
                (r) => r[0]![0] === "1",
                { every: "200 millis", within: "60 seconds", message: () => `fire time ${scheduledAt} never answered` }
              )
            // (a fire time after the runner joined: one from before the cluster's up period would be decided as
            // after a downtime of the whole cluster)
            const first = Date.now()
            yield* fire(runner, first)
            yield* answered(first)

            // a delete of that run whose outcome is unknown (its intent left pending, written as the run's onSend
            // hook writes it), and COS answering every HEAD with 500: the next run must settle it first, and cannot
            const firstRun = Number((yield* query("SELECT id FROM runs"))[0]![0])
            const pending = yield* Effect.gen(function*() {
              const state = yield* State
              yield* state.recordIntent({ id: firstRun, rule: "logs", bucket: CosFake.testBucket }, [{
                key: "logs/new/0"
              }])
              return yield* state.pendingAudit("logs")
            }).pipe(Effect.provide(State.layerStore(Either.getOrThrow(StateStore.fromSetting(url, "/")))))
            assert.strictEqual(pending.length, 1)
            yield* server.fake.setFaults({ operations: { HeadObject: { internalErrorRate: 1 } } })
            const refused = first + 1000
            yield* fire(runner, refused)
            yield* answered(refused)
            const afterRefused = yield* query(
              "SELECT scheduled_at, status, trigger, deleted, error FROM runs ORDER BY id"
            )
            assert.deepStrictEqual(afterRefused.map((r) => r.slice(0, 4)), [
              [String(first), "succeeded", "schedule", "10"],
              [String(refused), "failed", "schedule", "0"]
            ])
            assert.match(afterRefused[1]![4]!, /pending audit rows of an interrupted run could not be reconciled/)
            // the engine's answer names that run, not the one before
            const reply = yield* query(
              `SELECT r.payload FROM cluster_replies r JOIN cluster_messages m ON m.id = r.request_id ` +
                `WHERE m.deliver_at = ${refused}`
            )
            const refusedId = (yield* query(`SELECT id FROM runs WHERE scheduled_at = ${refused}`))[0]![0]
            assert.include(reply[0]![0]!, `"runId":${refusedId}`)

            // COS answers again: the next fire time settles the row (the key is still there: not deleted) and runs
            yield* server.fake.setFaults({})
            const next = refused + 1000
            yield* fire(runner, next)
            yield* answered(next)
            const all = yield* query("SELECT scheduled_at, status FROM runs ORDER BY id")
            assert.deepStrictEqual(all, [[String(first), "succeeded"], [String(refused), "failed"], [
              String(next),
              "succeeded"
            ]])
            assert.deepStrictEqual(yield* query("SELECT count(*) FROM audit WHERE state = 'pending'"), [["0"]])
            assert.strictEqual(yield* keyCount(server, "logs/"), 1)
          }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Error), Effect.scoped),
        120_000
      )
    }

    it.effect(
      "a fire time whose run row cannot be written is tried again, and runs once when it can",
      () =>
        Effect.gen(function*() {
          const database = "fire_unrecorded"
          const { pg, query, runner, server } = yield* oneRunner(database)
          // Postgres refuses every new run row for a while (a full disk, a revoked grant, a failover), counting the
          // attempts in a sequence (which a rollback does not undo)
          yield* pg.psql(
            `CREATE SEQUENCE refusals;
           CREATE FUNCTION refuse_runs() RETURNS trigger AS $$
           BEGIN PERFORM nextval('refusals'); RAISE EXCEPTION 'runs refused by the test'; END $$
           LANGUAGE plpgsql;
           CREATE TRIGGER refuse_runs BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION refuse_runs();`,
            database
          )
          const scheduledAt = Date.now()
          yield* fire(runner, scheduledAt)
          // the run was tried at least twice
          yield* waitUntil(
            query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM refusals"),
            (r) => Number(r[0]![0]) >= 2,
            { every: "200 millis", within: "60 seconds", message: () => "the fire time was not tried again" }
          )
          // meanwhile the fire time is not answered: nothing was recorded for it
          assert.deepStrictEqual(
            yield* query(`SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND processed`),
            [["0"]]
          )
          yield* pg.psql("DROP TRIGGER refuse_runs ON runs", database)
          yield* waitUntil(
            query(`SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND processed`),
            (r) => r[0]![0] === "1",
            { every: "200 millis", within: "60 seconds", message: () => "the fire time was not delivered again" }
          )
          assert.deepStrictEqual(yield* query("SELECT scheduled_at, status, deleted FROM runs"), [[
            String(scheduledAt),
            "succeeded",
            "10"
          ]])
          assert.strictEqual(yield* keyCount(server, "logs/"), 0)
          assert.deepStrictEqual(yield* query("SELECT count(*), count(DISTINCT key) FROM audit"), [["10", "10"]])
        }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.None), Effect.scoped),
      120_000
    )

    it.effect(
      `a fire time whose attempts all fail before recording a run is recorded failed after ${Cluster.maxFireAttempts} ` +
        "attempts, saying why, and not tried again",
      () =>
        Effect.gen(function*() {
          const database = "fire_gave_up"
          const { pg, query, runner, server } = yield* oneRunner(database)
          // Postgres refuses the first five new run rows (the attempts), then accepts rows again
          yield* pg.psql(
            `CREATE SEQUENCE refusals;
           CREATE FUNCTION refuse_runs() RETURNS trigger AS $$
           BEGIN IF nextval('refusals') <= ${Cluster.maxFireAttempts} THEN
             RAISE EXCEPTION 'runs refused by the test'; END IF; RETURN NEW; END $$
           LANGUAGE plpgsql;
           CREATE TRIGGER refuse_runs BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION refuse_runs();`,
            database
          )
          const scheduledAt = Date.now()
          yield* fire(runner, scheduledAt)
          const answered = (at: number) =>
            waitUntil(
              query(`SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND processed AND deliver_at = ${at}`),
              (r) => r[0]![0] === "1",
              { every: "200 millis", within: "60 seconds", message: () => `fire time ${at} never answered` }
            )
          yield* answered(scheduledAt)
          // five attempts, then one row: the fire time failed, with the reason
          assert.deepStrictEqual(yield* query("SELECT last_value FROM refusals"), [[
            String(Cluster.maxFireAttempts + 1)
          ]])
          const recorded = yield* query("SELECT scheduled_at, status, trigger, deleted, error FROM runs ORDER BY id")
          assert.deepStrictEqual(recorded.map((r) => r.slice(0, 4)), [[String(scheduledAt), "failed", "schedule", "0"]])
          assert.match(recorded[0]![4]!, /^gave up on this fire time after 5 attempts that could not record a run/)
          assert.include(recorded[0]![4]!, "runs refused by the test")
          // nothing was deleted for it; the engine's answer names that run
          assert.strictEqual(yield* keyCount(server, "logs/"), 10)
          assert.deepStrictEqual(yield* query("SELECT count(*) FROM audit"), [["0"]])
          const reply = yield* query(
            `SELECT r.payload FROM cluster_replies r JOIN cluster_messages m ON m.id = r.request_id ` +
              `WHERE m.deliver_at = ${scheduledAt}`
          )
          assert.include(reply[0]![0]!, `"status":"failed"`)
          // and it stays decided: sent again, it is not tried again; the next fire time runs as usual
          yield* fire(runner, scheduledAt)
          const next = scheduledAt + 1000
          yield* fire(runner, next)
          yield* answered(next)
          assert.deepStrictEqual(yield* query("SELECT scheduled_at, status FROM runs ORDER BY id"), [
            [String(scheduledAt), "failed"],
            [String(next), "succeeded"]
          ])
          assert.strictEqual(yield* keyCount(server, "logs/"), 0)
        }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.None), Effect.scoped),
      120_000
    )

    for (const parallelism of [1, 2]) {
      it.effect(
        "after a takeover, the fire time whose run was cut resumes it though a later fire time reached the rule " +
          `first, and the later one is skipped, not run beside it (parallelism ${parallelism})`,
        () =>
          Effect.gen(function*() {
            const database = `fire_resumes_first_${parallelism}`
            const { server, url } = yield* setUp(database)
            yield* seedKeys(server, "logs/", 10, 40 * day)
            const runner = yield* startRunner(settingsFor(url, server.url, parallelism))
            yield* Effect.addFinalizer(() => runner.stop)
            const query = queryOn(database)
            const message = (at: number, what: string) =>
              query(`SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND deliver_at = ${at} AND ${what}`)
                .pipe(Effect.map((r) => r[0]![0] === "1"))
            const until = (at: number, what: string) =>
              waitUntil(message(at, what), (ok) => ok, {
                every: "100 millis",
                within: "60 seconds",
                message: () => `fire time ${at}: never ${what}`
              })

            // what a replica SIGKILLed mid-run leaves: the run of fire time `cut`, running, with something to
            // resume from (the rule's checkpoint; for a split rule, its plan), its fire message unanswered
            const cut = Date.now()
            const provideState = Effect.provide(
              State.layerStore(Either.getOrThrow(StateStore.fromSetting(url, "/")))
            )
            const runId = yield* Effect.gen(function*() {
              const state = yield* State
              const run = yield* state.startRun({
                rule: "logs",
                trigger: "schedule",
                dryRun: false,
                scheduledAt: cut,
                runner: "127.0.0.1:1"
              })
              if (parallelism === 1) yield* state.saveCheckpoint("logs", run.id, "logs/")
              return run.id
            }).pipe(provideState)
            const sql = yield* stateSql(url)
            if (parallelism > 1) {
              yield* sql`INSERT INTO cos_retention_split_chunks ${
                sql.insert([
                  { chunk: 0, after_key: "", through_key: "logs/4" },
                  { chunk: 1, after_key: "logs/4", through_key: null }
                ].map((c) => ({
                  rule: "logs",
                  scheduled_at: cut,
                  chunks: 2,
                  run_id: runId,
                  entity_id: `logs/${cut}/${c.chunk}`,
                  status: "running",
                  ...c
                })))
              }`
            }
            // the dead replica's hold on the rule, not let go yet: the fire times delivered meanwhile wait for it
            const release = yield* Deferred.make<void>()
            const held = yield* Deferred.make<void>()
            yield* Effect.forkScoped(
              StateStore.withSessionLock(
                sql,
                "cos-retention rule logs",
                Effect.zipRight(Deferred.succeed(held, undefined), Deferred.await(release))
              )
            )
            yield* Deferred.await(held)
            // the later fire time reaches the rule first, then the cut one comes again (as the engine redelivers it)
            const later = cut + 1000
            yield* fire(runner, later)
            yield* until(later, "last_read IS NOT NULL")
            yield* Effect.sleep("500 millis")
            yield* fire(runner, cut)
            yield* until(cut, "last_read IS NOT NULL")
            yield* Effect.sleep("500 millis")
            // neither is answered while the rule is held
            assert.isFalse(yield* message(cut, "processed"))
            yield* Deferred.succeed(release, undefined)
            yield* until(later, "processed")
            yield* until(cut, "processed")

            // the later fire time was skipped (no run of its own), the cut one finished the work, each key once
            const runs = yield* query("SELECT id, scheduled_at, status, trigger, deleted FROM runs ORDER BY id")
            const reply = (at: number) =>
              query(
                "SELECT r.payload FROM cluster_replies r JOIN cluster_messages m ON m.id = r.request_id " +
                  `WHERE m.tag = 'fire' AND m.deliver_at = ${at}`
              ).pipe(Effect.map((r) => r[0]![0]!))
            assert.include(yield* reply(later), `"outcome":"skipped"`)
            assert.include(yield* reply(cut), `"outcome":"ran"`)
            if (parallelism === 1) {
              // one daemon's resume: the cut run marked interrupted, a resumed run of the same fire time finishing it
              assert.deepStrictEqual(runs.map((r) => r.slice(1)), [
                [String(cut), "interrupted", "schedule", "0"],
                [String(cut), "succeeded", "resume", "10"]
              ])
            } else {
              // the split run itself taken up and finished: one row for the fire time
              assert.deepStrictEqual(runs, [[String(runId), String(cut), "succeeded", "schedule", "10"]])
            }
            assert.strictEqual(yield* keyCount(server, "logs/"), 0)
            assert.deepStrictEqual(yield* query("SELECT count(*), count(DISTINCT key) FROM audit"), [["10", "10"]])
          }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Error), Effect.scoped),
        120_000
      )
    }
  }
)
