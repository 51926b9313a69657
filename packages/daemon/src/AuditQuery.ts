/**
 * Questions to the audit ("who deleted this key, and when?"): the audit rows of the state database as records, one
 * per deleted key or version, filtered in SQL and read page by page (keyset pagination on the row id), so an export of
 * millions of rows holds one page in memory.
 *
 * Matching is exact: `key` is compared with `=` and `prefix` with `substr`, both on SQLite's binary collation (never
 * `LIKE`, which ignores ASCII case and treats `%` and `_` as wildcards).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Display from "./Display.js"
import * as StateStore from "./StateStore.js"

export interface Filters {
  /** Exactly this key. */
  readonly key?: string | undefined
  /** Keys starting with this (a plain string prefix). */
  readonly prefix?: string | undefined
  readonly rule?: string | undefined
  readonly runId?: number | undefined
  /** Deleted at or after this instant (ms since the epoch). Rows not yet confirmed (pending) have no time. */
  readonly since?: number | undefined
  /** Deleted at or before this instant. */
  readonly until?: number | undefined
  /** At most this many records. */
  readonly limit?: number | undefined
}

/**
 * - `deleted`: COS confirmed the delete.
 * - `delete-marker-created`: confirmed, and on a versioned bucket it only added a delete marker (the data is kept).
 * - `pending`: the run recorded its intent and has not confirmed it yet (a run still going, or one killed and not yet
 *   reconciled: the daemon settles these at its next start by asking COS).
 */
export type Outcome = "deleted" | "delete-marker-created" | "pending"

export interface AuditRecord {
  readonly key: string
  readonly versionId: string | null
  /** The multipart upload aborted, for audits of incomplete uploads; null for objects. */
  readonly uploadId: string | null
  readonly size: number | null
  readonly bucket: string
  readonly rule: string
  readonly run: number
  /** ISO 8601 UTC; null while pending. */
  readonly time: string | null
  readonly outcome: Outcome
}

interface Row {
  readonly id: number
  readonly run_id: number
  readonly rule: string
  readonly bucket: string
  readonly key: string
  readonly version_id: string
  readonly size: number | null
  readonly delete_marker: number
  readonly state: string
  readonly deleted_at: number | null
  readonly upload_id?: string | null | undefined
}

export const toRecord = (r: Row): AuditRecord => ({
  key: r.key,
  versionId: r.version_id === "" ? null : r.version_id,
  uploadId: r.upload_id === undefined || r.upload_id === "" ? null : r.upload_id,
  size: r.size,
  bucket: r.bucket,
  rule: r.rule,
  run: r.run_id,
  time: r.deleted_at === null ? null : new Date(r.deleted_at).toISOString(),
  outcome: r.state === "pending" ? "pending" : r.delete_marker === 1 ? "delete-marker-created" : "deleted"
})

/** The records the filters select, oldest row first, `pageSize` rows per query. */
export const query = (
  filters: Filters,
  pageSize = 1000
): Stream.Stream<AuditRecord, SqlError, SqlClient.SqlClient> =>
  Stream.unwrap(Effect.map(SqlClient.SqlClient, (sql) => {
    const conditions = [
      filters.key === undefined ? undefined : sql`key = ${filters.key}`,
      filters.prefix === undefined || filters.prefix === ""
        ? undefined
        : sql`substr(key, 1, length(${filters.prefix})) = ${filters.prefix}`,
      filters.rule === undefined ? undefined : sql`rule = ${filters.rule}`,
      filters.runId === undefined ? undefined : sql`run_id = ${filters.runId}`,
      filters.since === undefined ? undefined : sql`deleted_at >= ${filters.since}`,
      filters.until === undefined ? undefined : sql`deleted_at <= ${filters.until}`
    ].filter((c) => c !== undefined)
    const limit = filters.limit
    const page = (afterId: number, remaining: number) =>
      sql<Row>`SELECT * FROM audit WHERE ${sql.and([sql`id > ${afterId}`, ...conditions])}
        ORDER BY id LIMIT ${Math.min(pageSize, remaining)}`
    // then the keys of unresolved intents (one row per delete request in flight, or left by a killed run), as
    // pending records after the confirmed ones; a state from an older version opened read-only has no such table
    const pending = Stream.unwrap(Effect.map(StateStore.hasTable(sql, "audit_intents"), (exists) =>
      exists
        ? Stream.fromIterableEffect(
          sql<Row>`SELECT * FROM (${StateStore.pendingIntentKeys(sql)}) p WHERE ${sql.and(conditions)}
            ORDER BY intent_id, pos`.pipe(Effect.map((rows) => rows.map(toRecord)))
        )
        : Stream.empty))
    const confirmed = Stream.paginateChunkEffect(
      { afterId: 0, remaining: limit ?? Number.MAX_SAFE_INTEGER },
      ({ afterId, remaining }) =>
        remaining <= 0
          ? Effect.succeed([Chunk.empty<AuditRecord>(), Option.none()] as const)
          : Effect.map(page(afterId, remaining), (rows) => {
            const records = Chunk.unsafeFromArray(rows.map(toRecord))
            const next = rows.length < Math.min(pageSize, remaining)
              ? Option.none()
              : Option.some({ afterId: rows[rows.length - 1]!.id, remaining: remaining - rows.length })
            return [records, next] as const
          })
    )
    const all = Stream.concat(confirmed, pending)
    return limit === undefined ? all : Stream.take(all, limit)
  }))

// ---------------------------------------------------------------------------------------------------------------
// output
// ---------------------------------------------------------------------------------------------------------------

export const csvHeader = ["key", "versionId", "uploadId", "size", "rule", "run", "time", "outcome", "bucket"] as const

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, a quote, CR or LF, or starts or ends with whitespace (which
 * some readers trim), quotes doubled inside; null is an empty field.
 */
export const csvField = (value: string | number | null): string => {
  if (value === null) return ""
  const text = String(value)
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, "\"\"")}"` : text
}

export const csvLine = (r: AuditRecord): string =>
  [r.key, r.versionId, r.uploadId, r.size, r.rule, r.run, r.time, r.outcome, r.bucket].map(csvField).join(",")

export const jsonLine = (r: AuditRecord): string => JSON.stringify(r)

/** A key as human-readable output shows it (see `Display.displayKey`). */
export const displayKey = Display.displayKey
