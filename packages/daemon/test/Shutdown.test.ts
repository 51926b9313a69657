import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as NodePath from "node:path"
import * as Config from "../src/Config.js"
import * as Daemon from "../src/Daemon.js"
import { Purger } from "../src/Purger.js"
import { Runner } from "../src/Runner.js"
import { layerSqlite } from "../src/State.js"
import { cosRetention, credentialsEnv } from "./support/child.js"
import { writeConfig } from "./support/config.js"
import { seedKeys } from "./support/seed.js"

const keys = 4000

describe("graceful shutdown", () => {
  it.live(
    "a daemon sent SIGTERM mid-run lets in-flight batches finish, records the run interrupted with its checkpoint and exits 0; the next run resumes",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({
          faults: { operations: { DeleteObjects: { latencyMs: 50 } } }
        })
        yield* seedKeys(server, "logs/", keys, 40 * 86_400_000, 100)
        const { dir, path: config } = yield* writeConfig("shutdown", () =>
          `cos:
  region: ${CosFake.testRegion}
  endpoint: ${server.url}
state: state.db
http: { port: 0 }
gracePeriod: 5s
rules:
  - name: expire-logs
    bucket: ${CosFake.testBucket}
    prefix: logs/
    olderThan: 30d
    schedule: "* * * * * *"   # every second
    batchSize: 100
    concurrency: 2
`)

        const daemon = cosRetention(["run", "--config", config])
        yield* Effect.promise(() => daemon.waitFor((l) => l.message === "run started"))
        // stop once more than a listing page (1000 keys, the engine's checkpoint granularity) is done
        yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/").pipe(
          Effect.repeat({ until: (left) => left.length <= keys - 1200, schedule: Schedule.spaced("20 millis") })
        )
        daemon.kill("SIGTERM")
        const code = yield* Effect.promise(() => daemon.exit)
        assert.strictEqual(code, 0, JSON.stringify(daemon.lines.slice(-5)))

        const remaining = (yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length
        assert.isAbove(remaining, 0, "the run should have been stopped before the end")
        assert.isBelow(remaining, keys, "some batches should have been deleted")
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const runs = yield* sql<any>`SELECT id, status, deleted, error FROM runs ORDER BY id`
          assert.deepStrictEqual(runs.map((r) => r.status), ["interrupted"])
          // the in-flight batches were allowed to finish: what left COS is exactly what the run recorded
          assert.strictEqual(runs[0].deleted, keys - remaining, JSON.stringify(daemon.lines.slice(-8), null, 1))
          const audit = yield* sql<any>`SELECT state, count(*) AS n FROM audit GROUP BY state`
          assert.deepStrictEqual(audit, [{ state: "deleted", n: keys - remaining }])
          const checkpoint = yield* sql<any>`SELECT after_key FROM checkpoints WHERE rule = 'expire-logs'`
          assert.strictEqual(checkpoint.length, 1)
        }).pipe(Effect.provide(layerSqlite(NodePath.join(dir, "state.db"))))

        // the next invocation resumes after the checkpoint and finishes the job
        // the next run (here in process, on the same database) resumes after the checkpoint and finishes the job
        const settings = yield* Config.load(config).pipe(Effect.provide(NodeFileSystem.layer))
        const outcome = yield* Effect.flatMap(Runner, (runner) => runner.run(settings.rules[0]!, { trigger: "once" }))
          .pipe(
            Effect.provide(Daemon.servicesWith(Purger.Default).pipe(Layer.provide(Config.Settings.layer(settings)))),
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(credentialsEnv))))
          )
        assert.strictEqual(outcome.run.status, "succeeded")
        assert.isNotNull(outcome.run.resumedFrom)
        assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length, 0)
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const runs = yield* sql<any>`SELECT status FROM runs ORDER BY id`
          assert.deepStrictEqual(runs.map((r) => r.status), ["interrupted", "succeeded"])
          const audited = yield* sql<
            any
          >`SELECT count(*) AS n, count(DISTINCT key) AS k FROM audit WHERE state = 'deleted'`
          assert.deepStrictEqual(audited, [{ n: keys, k: keys }])
        }).pipe(Effect.provide(layerSqlite(NodePath.join(dir, "state.db"))))
      }).pipe(Effect.scoped),
    30_000
  )
})
