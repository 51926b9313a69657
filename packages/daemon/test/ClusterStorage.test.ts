/**
 * The cluster engine's storage in Postgres. Replicas started at the same instant on a new, empty database: every one
 * comes up (the engine's tables are created once, under an advisory lock: ClusterStorage), and the cluster they form
 * runs each fire time once. Housekeeping: our answered messages leave the engine's tables after the retention.
 */
import { CosFake } from "@effect-cos/testkit"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import { assert, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Cluster from "../src/Cluster.js"
import * as ClusterSplit from "../src/ClusterSplit.js"
import * as ClusterStorage from "../src/ClusterStorage.js"
import * as StateStore from "../src/StateStore.js"
import type { Child } from "./support/child.js"
import { day, keyCount, queryOn, seedKeys, setUp, startChildReplica, writeClusterConfig } from "./support/cluster.js"
import { PgServer } from "./support/postgres.js"

const query = (database: string, sql: string) => queryOn(database)(sql)

layer(PgServer.Default, { timeout: 120_000, excludeTestServices: true })("the engine's storage", (it) => {
  it.effect(
    "three replicas as child processes started at once on a new database: all join, each fire time runs once",
    () =>
      Effect.gen(function*() {
        const database = "together"
        const { server, url } = yield* setUp(database)
        yield* seedKeys(server, "logs/", 30, (i) => (i < 20 ? 40 : 1) * day)
        const config = yield* writeClusterConfig("together", {
          endpoint: server.url,
          state: url,
          rules:
            `  - { name: logs, bucket: ${CosFake.testBucket}, prefix: logs/, olderThan: 30d, schedule: "*/2 * * * * *" }
`
        })
        const replicas = yield* Effect.all([1, 2, 3].map(() => startChildReplica(config.path)))
        const children: Array<Child> = replicas.map((r) => r.child)
        const joined = (c: Child) =>
          Effect.promise(() => c.waitFor((l) => String(l.message).startsWith("joined the cluster")))
        yield* Effect.all(children.map(joined), { concurrency: "unbounded" }).pipe(
          Effect.timeout("90 seconds"),
          Effect.catchAllCause((cause) =>
            Effect.dieMessage(
              `not every replica joined: ${cause}\n` +
                children.map((c, i) => `replica ${i}:\n${JSON.stringify(c.lines.slice(-8), null, 1)}`).join("\n")
            )
          )
        )
        // the engine's and our migrations each recorded once
        const migrations = yield* query(
          database,
          "SELECT (SELECT count(*) FROM cluster_migrations), (SELECT count(DISTINCT migration_id) FROM " +
            "cluster_migrations), (SELECT count(*) FROM cos_retention_migrations), (SELECT count(DISTINCT " +
            "migration_id) FROM cos_retention_migrations)"
        )
        assert.strictEqual(migrations[0]![0], migrations[0]![1])
        assert.strictEqual(migrations[0]![2], migrations[0]![3])
        // the three are in the cluster
        yield* query(database, "SELECT count(*) FROM cluster_runners WHERE healthy").pipe(
          Effect.repeat({ until: (rows) => rows[0]![0] === "3", schedule: Schedule.spaced("200 millis") }),
          Effect.timeout("30 seconds")
        )
        // a few fire times run, once each
        const completed = query(
          database,
          "SELECT scheduled_at FROM runs WHERE rule = 'logs' AND status = 'succeeded' ORDER BY scheduled_at"
        )
        yield* completed.pipe(
          Effect.repeat({ until: (rows) => rows.length >= 3, schedule: Schedule.spaced("200 millis") }),
          Effect.timeout("60 seconds")
        )
        children.forEach((c) => c.kill("SIGTERM"))
        const codes = yield* Effect.promise(() => Promise.all(children.map((c) => c.exit)))
        assert.deepStrictEqual(codes, [0, 0, 0])
        const times = (yield* completed).map((r) => r[0])
        assert.strictEqual(new Set(times).size, times.length, `a fire time ran twice: ${times}`)
        assert.isTrue(
          children.every((c) => !c.lines.some((l) => /duplicate key|pg_type/.test(JSON.stringify(l)))),
          "a replica logged the engine's migration race"
        )
        assert.strictEqual(yield* keyCount(server, "logs/"), 10)
        const audit = yield* query(database, "SELECT count(*), count(DISTINCT key) FROM audit WHERE state = 'deleted'")
        assert.deepStrictEqual(audit[0], ["20", "20"])
      }).pipe(Effect.scoped),
    150_000
  )

  it.effect(
    "the engine's storage built by six sessions at once on new databases: every build succeeds",
    () =>
      Effect.gen(function*() {
        const pg = yield* PgServer
        // the engine's own layers race here (Postgres: duplicate key ... pg_type_typname_nsp_index) in about a
        // quarter of the builds; each of these has its own pool, as separate processes would
        for (const database of ["fresh_1", "fresh_2", "fresh_3", "fresh_4", "fresh_5"]) {
          const url = yield* pg.createDatabase(database)
          const store = Either.getOrThrow(StateStore.fromSetting(url, "/"))
          assert.strictEqual(store._tag, "postgres")
          if (store._tag !== "postgres") return
          const build = ClusterStorage.layer.pipe(
            Layer.provide(ShardingConfig.layer({ shardsPerGroup: 12 })),
            Layer.provide(StateStore.layerPostgres(store))
          )
          const exits = yield* Effect.all(
            Array.from({ length: 6 }, () => Effect.exit(Effect.scoped(Layer.build(build)))),
            { concurrency: "unbounded" }
          )
          for (const exit of exits) assert.isTrue(Exit.isSuccess(exit), `${database}: ${exit}`)
          const tables = yield* query(
            database,
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('cluster_messages', 'cluster_replies', " +
              "'cluster_runners', 'cluster_migrations')"
          )
          assert.strictEqual(tables[0]![0], "4")
          // the lock is released once built: nobody holds it now
          const held = yield* query(
            database,
            `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND objid = ` +
              `(hashtext('${ClusterStorage.lockName}')::bigint & 4294967295)::oid`
          )
          assert.strictEqual(held[0]![0], "0")
        }
      }).pipe(Effect.orDie),
    150_000
  )

  it.effect(
    "answered fire times and chunks older than the retention leave the engine's tables, with their replies",
    () =>
      Effect.gen(function*() {
        const pg = yield* PgServer
        const database = "prune"
        const url = yield* pg.createDatabase(database)
        const store = Either.getOrThrow(StateStore.fromSetting(url, "/"))
        if (store._tag !== "postgres") return
        const sql = Layer.orDie(StateStore.layerPostgres(store))
        yield* Effect.scoped(Layer.build(ClusterStorage.layer.pipe(
          Layer.provide(ShardingConfig.layer({ shardsPerGroup: 12 })),
          Layer.provide(sql)
        )))
        const now = Date.now()
        // message ids are the engine's snowflakes: the time they were sent, then a machine id and a sequence
        const sent = (ms: number, n: number) => (BigInt(ms - Date.UTC(2025, 0, 1)) << BigInt(22)) + BigInt(n)
        const old = now - 10 * day
        const recent = now - day
        const messages: Array<[id: bigint, type: string, processed: boolean, deliverAt: number | null]> = [
          [sent(old, 1), Cluster.RuleEntity.type, true, old], // gone
          [sent(recent, 2), Cluster.RuleEntity.type, true, recent],
          [sent(old, 3), Cluster.RuleEntity.type, false, old], // not answered: kept
          [sent(old, 4), ClusterSplit.ChunkEntity.type, true, null], // gone
          [sent(recent, 5), ClusterSplit.ChunkEntity.type, true, null],
          [sent(old, 6), ClusterSplit.ChunkEntity.type, false, null], // not answered: kept
          [sent(old, 7), "someone-else/entity", true, old] // not ours: kept
        ]
        yield* pg.psql(
          "INSERT INTO cluster_messages (id, message_id, shard_id, entity_type, entity_id, kind, tag, payload, " +
            "processed, request_id, deliver_at) VALUES " +
            messages.map(([id, type, processed, at]) =>
              `(${id}, 'm${id}', 'default:1', '${type}', 'e', 0, 'fire', '{}', ${processed}, ${id}, ${at ?? "NULL"})`
            ).join(", ") + "; " +
            "INSERT INTO cluster_replies (id, kind, request_id, payload) VALUES " +
            messages.map(([id]) => `(${id + BigInt(1000)}, 0, ${id}, '{}')`).join(", "),
          database
        )
        const pruned = yield* Cluster.pruneMessages(Duration.toMillis(Cluster.messageRetention)).pipe(
          Effect.provide(sql)
        )
        assert.strictEqual(pruned, 2)
        const kept = [2, 3, 5, 6, 7].map((i) => messages[i - 1]![0]).sort((a, b) => (a < b ? -1 : 1)).map(String)
        const left = (table: string, column: string) =>
          Effect.map(query(database, `SELECT ${column} FROM ${table} ORDER BY ${column}`), (rows) =>
            rows.map((r) => r[0]))
        assert.deepStrictEqual(yield* left("cluster_messages", "id"), kept)
        assert.deepStrictEqual(yield* left("cluster_replies", "request_id"), kept)
        // nothing more to prune on a second pass
        assert.strictEqual(
          yield* Cluster.pruneMessages(Duration.toMillis(Cluster.messageRetention)).pipe(Effect.provide(sql)),
          0
        )
      }).pipe(Effect.orDie),
    60_000
  )
})
