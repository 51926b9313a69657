/**
 * The cluster engine's storage in Postgres: `@effect/cluster`'s SqlMessageStorage (messages, replies) and
 * SqlRunnerStorage (runners, shard locks), whose construction creates their tables. That creation is not safe to run
 * in several sessions at once: the engine checks for its migrations table and then creates it (`CREATE TABLE`, and
 * `CREATE TABLE IF NOT EXISTS` for the others), and Postgres answers a session that loses the race "duplicate key
 * value violates unique constraint pg_type_typname_nsp_index" (two sessions inserting the same type name), which the
 * engine raises as a defect: replicas started together on a new database would crash.
 *
 * So each replica builds the engine's storage holding a session-level advisory lock, on a connection of its own, for
 * the time of the construction only: the first one creates the tables, the others wait and then find them. The lock
 * is released as soon as the storage is built (the engine's own shard locks are other keys, taken later).
 */
import type * as MessageStorage from "@effect/cluster/MessageStorage"
import type * as RunnerStorage from "@effect/cluster/RunnerStorage"
import type * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as StateStore from "./StateStore.js"

/** The advisory lock's name (its key is `hashtext` of it, far from the engine's shard-lock keys, 1000001 and up). */
export const lockName = "cos-retention cluster storage"

const engineStorage = Layer.merge(SqlMessageStorage.layer, Layer.orDie(SqlRunnerStorage.layer))

/** The engine's message and runner storage, built by one replica at a time. */
export const layer: Layer.Layer<
  MessageStorage.MessageStorage | RunnerStorage.RunnerStorage,
  never,
  SqlClient.SqlClient | ShardingConfig.ShardingConfig
> = Layer.scopedContext(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    // the storage lives as long as this layer; the lock only while it is being built
    const scope = yield* Effect.scope
    return yield* StateStore.withSessionLock(sql, lockName, Layer.buildWithScope(engineStorage, scope))
  }).pipe(Effect.orDie)
)
