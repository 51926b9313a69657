/**
 * One fire time of a rule in cluster mode whose run cannot start: it is answered only with a run of its own (a row
 * in `runs` with its scheduled time), never with an earlier run's. A run refused before it deletes anything (pending
 * audit rows that cannot be reconciled) is recorded failed, as one daemon records it; a fire time whose run row
 * cannot be written at all is delivered again until it can.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import * as Cluster from "../src/Cluster.js"
import * as Config from "../src/Config.js"
import { State } from "../src/State.js"
import * as StateStore from "../src/StateStore.js"
import { credentials, type InProcessRunner, startRunner } from "./support/cluster.js"
import { PgServer } from "./support/postgres.js"

const day = 86_400_000

/** One rule over `logs/`, scheduled once a year: the tests send its fire times themselves. */
const settingsFor = (url: string, endpoint: string, parallelism = 1) =>
  Either.getOrThrow(Config.decode({
    cos: { region: CosFake.testRegion, endpoint },
    state: url,
    http: { enabled: false },
    gracePeriod: "2s",
    rules: [{
      name: "logs",
      bucket: CosFake.testBucket,
      prefix: "logs/",
      olderThan: "30d",
      schedule: "0 0 1 1 *",
      parallelism
    }]
  }, { source: "test", baseDir: "/" }))

const rows = (out: string) => out.trim().split("\n").filter((l) => l !== "").map((l) => l.split("|"))

const fire = (runner: InProcessRunner, scheduledAt: number) =>
  Effect.gen(function*() {
    const client = yield* Cluster.RuleEntity.client
    yield* client("logs").fire(new Cluster.Fire({ scheduledAt, trigger: "schedule" }), { discard: true })
  }).pipe(Effect.provide(runner.context))

layer(PgServer.Default, { timeout: 120_000, excludeTestServices: true })(
  "cluster mode: a fire time's own run",
  (it) => {
    for (const parallelism of [1, 2]) {
      it.effect(
        "a fire time whose run cannot reconcile the audit first is recorded failed with its own fire time, not answered " +
          `with the previous run (parallelism ${parallelism})`,
        () =>
          Effect.gen(function*() {
            const pg = yield* PgServer
            const database = `fire_refused_${parallelism}`
            const url = yield* pg.createDatabase(database)
            const server = yield* CosFakeServer.start({})
            yield* Store.seed(server.fake.store, {
              bucket: CosFake.testBucket,
              count: 10,
              prefix: "logs/old/",
              ageMs: 40 * day,
              size: 10
            })
            yield* Store.seed(server.fake.store, {
              bucket: CosFake.testBucket,
              count: 1,
              prefix: "logs/new/",
              ageMs: day,
              size: 10
            })
            const runner = yield* startRunner(settingsFor(url, server.url, parallelism))
            yield* Effect.addFinalizer(() => runner.stop)
            const query = (sql: string) => Effect.map(pg.psql(sql, database), rows)
            /** Waits until the engine has stored an answer to the fire time (its message processed). */
            const answered = (scheduledAt: number) =>
              query(
                `SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND processed AND deliver_at = ${scheduledAt}`
              ).pipe(
                Effect.repeat({ until: (r) => r[0]![0] === "1", schedule: Schedule.spaced("200 millis") }),
                Effect.timeout("60 seconds"),
                Effect.catchTag("TimeoutException", () => Effect.dieMessage(`fire time ${scheduledAt} never answered`))
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
            assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length, 1)
          }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Error), Effect.scoped),
        120_000
      )
    }

    it.effect(
      "a fire time whose run row cannot be written is tried again, and runs once when it can",
      () =>
        Effect.gen(function*() {
          const pg = yield* PgServer
          const database = "fire_unrecorded"
          const url = yield* pg.createDatabase(database)
          const server = yield* CosFakeServer.start({})
          yield* Store.seed(server.fake.store, {
            bucket: CosFake.testBucket,
            count: 10,
            prefix: "logs/",
            ageMs: 40 * day,
            size: 10
          })
          const runner = yield* startRunner(settingsFor(url, server.url))
          yield* Effect.addFinalizer(() => runner.stop)
          const query = (sql: string) => Effect.map(pg.psql(sql, database), rows)
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
          yield* query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM refusals").pipe(
            Effect.repeat({ until: (r) => Number(r[0]![0]) >= 2, schedule: Schedule.spaced("200 millis") }),
            Effect.timeout("60 seconds"),
            Effect.catchTag("TimeoutException", () => Effect.dieMessage("the fire time was not tried again"))
          )
          // meanwhile the fire time is not answered: nothing was recorded for it
          assert.deepStrictEqual(
            yield* query(`SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND processed`),
            [["0"]]
          )
          yield* pg.psql("DROP TRIGGER refuse_runs ON runs", database)
          yield* query(`SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND processed`).pipe(
            Effect.repeat({ until: (r) => r[0]![0] === "1", schedule: Schedule.spaced("200 millis") }),
            Effect.timeout("60 seconds"),
            Effect.catchTag("TimeoutException", () => Effect.dieMessage("the fire time was not delivered again"))
          )
          assert.deepStrictEqual(yield* query("SELECT scheduled_at, status, deleted FROM runs"), [[
            String(scheduledAt),
            "succeeded",
            "10"
          ]])
          assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length, 0)
          assert.deepStrictEqual(yield* query("SELECT count(*), count(DISTINCT key) FROM audit"), [["10", "10"]])
        }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.None), Effect.scoped),
      120_000
    )

    it.effect(
      `a fire time whose attempts all fail before recording a run is recorded failed after ${Cluster.maxFireAttempts} ` +
        "attempts, saying why, and not tried again",
      () =>
        Effect.gen(function*() {
          const pg = yield* PgServer
          const database = "fire_gave_up"
          const url = yield* pg.createDatabase(database)
          const server = yield* CosFakeServer.start({})
          yield* Store.seed(server.fake.store, {
            bucket: CosFake.testBucket,
            count: 10,
            prefix: "logs/",
            ageMs: 40 * day,
            size: 10
          })
          const runner = yield* startRunner(settingsFor(url, server.url))
          yield* Effect.addFinalizer(() => runner.stop)
          const query = (sql: string) => Effect.map(pg.psql(sql, database), rows)
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
            query(`SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND processed AND deliver_at = ${at}`).pipe(
              Effect.repeat({ until: (r) => r[0]![0] === "1", schedule: Schedule.spaced("200 millis") }),
              Effect.timeout("60 seconds"),
              Effect.catchTag("TimeoutException", () => Effect.dieMessage(`fire time ${at} never answered`))
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
          assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length, 10)
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
          assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length, 0)
        }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.None), Effect.scoped),
      120_000
    )
  }
)
