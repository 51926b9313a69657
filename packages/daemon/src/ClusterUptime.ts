/**
 * When the cluster as a whole was up: the record that lets a restarted cluster apply one daemon's catch-up rules.
 *
 * Each replica keeps one row in `cos_retention_runner_uptime` for as long as it runs: inserted when it starts (before
 * it joins the engine's cluster), its `seen_at` written again at every shard lock refresh interval (10 s by default),
 * and marked `stopped` with the time it stopped when it stops cleanly (after its runs have stopped). A replica counts
 * as up from `started_at` to `seen_at`, or, when it did not say it stopped (SIGKILL, machine lost), until `seen_at`
 * plus the shard lock expiry (35 s by default): as long as the engine itself keeps its shards. Postgres being down
 * for a while does not cut a replica's row in two: its next heartbeat moves `seen_at` on from the same start.
 *
 * The cluster has been up since the start of the run of overlapping rows that reaches now ({@link upSince}): a fire
 * time before that came due while every replica was down, or its run was cut by that downtime; after it, at least
 * one replica was up. The times are the replicas' own clocks (as the fire times are): keep them in sync (NTP).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as StateStore from "./StateStore.js"

/** How long rows are kept: rows of replicas not seen for that long are pruned (with the engine's messages). */
export const retention = Duration.days(7)

export const migrate = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* StateStore.withSessionLock(
    sql,
    "cos-retention uptime migrations",
    sql`CREATE TABLE IF NOT EXISTS cos_retention_runner_uptime (
      runner TEXT NOT NULL,
      started_at BIGINT NOT NULL,
      seen_at BIGINT NOT NULL,
      stopped BOOLEAN NOT NULL DEFAULT false,
      PRIMARY KEY (runner, started_at)
    )`
  )
}).pipe(Effect.orDie)

export interface UptimeRow {
  readonly startedAt: number
  readonly seenAt: number
  readonly stopped: boolean
}

export interface Uptime {
  /** The start of the cluster's current up period. */
  readonly since: number
  /** When the period before it ended (the last replica stopped, or counted as gone), if there is one on record. */
  readonly downSince: number | undefined
}

/**
 * The cluster's current up period, from every replica's row and this replica's start (this replica is up now).
 * `slackMs`: how long a replica that did not say it stopped counts as up after its last heartbeat.
 */
export const upSince = (
  rows: ReadonlyArray<UptimeRow>,
  self: { readonly startedAt: number; readonly now: number },
  slackMs: number
): Uptime => {
  const spans = rows.map((r) => ({ from: r.startedAt, to: r.stopped ? r.seenAt : r.seenAt + slackMs }))
  spans.push({ from: self.startedAt, to: self.now })
  let since = self.startedAt
  let changed = true
  while (changed) {
    changed = false
    for (const s of spans) {
      if (s.from < since && s.to >= since) {
        since = s.from
        changed = true
      }
    }
  }
  const before = spans.filter((s) => s.to < since).map((s) => s.to)
  return { since, downSince: before.length === 0 ? undefined : Math.max(...before) }
}

export class ClusterUptime extends Context.Tag("@effect-cos/daemon/ClusterUptime")<ClusterUptime, {
  /** When this replica started (its row's key). */
  readonly startedAt: number
  /** The cluster's current up period, read from Postgres now. */
  readonly current: Effect.Effect<Uptime, SqlError>
}>() {}

/**
 * This replica's row: inserted at once, its heartbeat every `interval`, marked stopped when the layer's scope closes
 * (build it before the engine's layers, so that it closes after them). `slack`: see {@link upSince}.
 */
export const layer = (options: {
  readonly runner: string
  readonly interval: Duration.DurationInput
  readonly slack: Duration.DurationInput
}) =>
  Layer.scoped(
    ClusterUptime,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* migrate
      const startedAt = yield* Clock.currentTimeMillis
      const runner = options.runner
      yield* sql`INSERT INTO cos_retention_runner_uptime (runner, started_at, seen_at)
        VALUES (${runner}, ${startedAt}, ${startedAt}) ON CONFLICT DO NOTHING`.pipe(Effect.orDie)
      const beat = (stopped: boolean) =>
        Effect.flatMap(
          Clock.currentTimeMillis,
          (now) =>
            sql`UPDATE cos_retention_runner_uptime SET seen_at = GREATEST(seen_at, ${now}), stopped = ${stopped}
              WHERE runner = ${runner} AND started_at = ${startedAt}`
        )
      yield* Effect.forkScoped(
        beat(false).pipe(
          // (Postgres down: the next beat moves seen_at on from the same start)
          Effect.catchAllCause((cause) => Effect.logWarning("could not record this replica's heartbeat", cause)),
          Effect.repeat(Schedule.spaced(options.interval))
        )
      )
      yield* Effect.addFinalizer(() =>
        beat(true).pipe(
          Effect.catchAllCause((cause) =>
            Effect.logWarning("could not record that this replica stopped (it counts as up a little longer)", cause)
          )
        )
      )
      const slackMs = Duration.toMillis(options.slack)
      const current = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const rows = yield* sql<{ started_at: number | string; seen_at: number | string; stopped: boolean }>`
          SELECT started_at, seen_at, stopped FROM cos_retention_runner_uptime
          WHERE NOT (runner = ${runner} AND started_at = ${startedAt})`
        return upSince(
          rows.map((r) => ({ startedAt: Number(r.started_at), seenAt: Number(r.seen_at), stopped: r.stopped })),
          { startedAt, now },
          slackMs
        )
      })
      return { startedAt, current }
    })
  )

/** Deletes the rows of replicas last seen more than `olderThanMs` ago; returns how many went. */
export const prune = (olderThanMs: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cutoff = (yield* Clock.currentTimeMillis) - olderThanMs
    const rows = yield* sql`DELETE FROM cos_retention_runner_uptime WHERE seen_at < ${cutoff} RETURNING runner`
    return rows.length
  }).pipe(Effect.orDie)
