/**
 * The daemon's durable state (`@effect/sql`) in SQLite or Postgres (see StateStore): runs, checkpoints (the listing
 * position of an unfinished run) and the audit of every deleted key or version. The queries are shared; the few
 * dialect differences (column types, rows passed as JSON) are StateStore's helpers.
 *
 * Audit exactly-once: `recordIntent` writes one intent row holding a request's keys immediately before the request is
 * sent (after the write budget's wait and any backoff), `confirmDeleted` inserts the confirmed keys' `deleted` rows
 * and deletes the intent in one transaction per batch, and rows are unique per (run, key, version). Whatever a SIGKILL
 * leaves unresolved is expanded into per-key `pending` rows and reconciled by the next process that opens the state,
 * before any new run of that rule (see expandIntents, Runner.recover and docs/daemon.md, "Audit, exactly once").
 *
 * A state file is held by one process at a time (StateFile: a lock released by the kernel when the holder dies).
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import { Settings } from "./Config.js"
import * as StateFile from "./StateFile.js"
import { StateError } from "./StateFile.js"

export { StateError }
import * as StateStore from "./StateStore.js"

export type RunStatus = "running" | "succeeded" | "failed" | "interrupted"

/** Why a run was started. */
export type Trigger = "schedule" | "catch-up" | "once" | "resume"

export interface RunCounts {
  readonly listed: number
  readonly matched: number
  readonly deleted: number
  readonly bytes: number
  readonly failed: number
  readonly skipped: number
  readonly throttled: number
}

export const emptyCounts: RunCounts = {
  listed: 0,
  matched: 0,
  deleted: 0,
  bytes: 0,
  failed: 0,
  skipped: 0,
  throttled: 0
}

export interface RunRecord extends RunCounts {
  readonly id: number
  readonly rule: string
  readonly trigger: Trigger
  readonly dryRun: boolean
  readonly startedAt: number
  readonly endedAt: number | null
  readonly status: RunStatus
  /** The checkpoint the run started from, if it resumed an unfinished run. */
  readonly resumedFrom: string | null
  /** The fire time it ran for (epoch ms), when it ran on a schedule in cluster mode. */
  readonly scheduledAt: number | null
  /** The runner address (`HOST:PORT`) of the replica that ran it, in cluster mode. */
  readonly runner: string | null
  readonly error: string | null
}

export interface Checkpoint {
  readonly runId: number
  readonly afterKey: string
}

export interface AuditRow {
  readonly id: number
  readonly runId: number
  readonly rule: string
  readonly bucket: string
  readonly key: string
  /** `""` when the delete named no version. */
  readonly versionId: string
  readonly size: number | null
  readonly deleteMarker: boolean
  readonly state: "pending" | "deleted"
  readonly deletedAt: number | null
  /** The incomplete multipart upload aborted (`target: incomplete-uploads`); `null` for object deletions. */
  readonly uploadId: string | null
}

export interface Confirmed {
  readonly key: string
  readonly versionId?: string | undefined
  /** An aborted incomplete upload. */
  readonly uploadId?: string | undefined
  readonly size?: number | undefined
  readonly deleteMarkerCreated: boolean
}

const migrations = Migrator.fromRecord({
  "0001_init": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { bigint, id } = StateStore.types(sql)
    yield* sql`CREATE TABLE runs (
      id ${id},
      rule TEXT NOT NULL,
      trigger TEXT NOT NULL,
      dry_run INTEGER NOT NULL DEFAULT 0,
      started_at ${bigint} NOT NULL,
      ended_at ${bigint},
      status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
      resumed_from TEXT,
      listed ${bigint} NOT NULL DEFAULT 0,
      matched ${bigint} NOT NULL DEFAULT 0,
      deleted ${bigint} NOT NULL DEFAULT 0,
      bytes ${bigint} NOT NULL DEFAULT 0,
      failed ${bigint} NOT NULL DEFAULT 0,
      skipped ${bigint} NOT NULL DEFAULT 0,
      throttled ${bigint} NOT NULL DEFAULT 0,
      error TEXT
    )`
    yield* sql`CREATE INDEX runs_by_rule ON runs (rule, started_at)`
    yield* sql`CREATE TABLE checkpoints (
      rule TEXT PRIMARY KEY,
      run_id ${bigint} NOT NULL REFERENCES runs (id),
      after_key TEXT NOT NULL,
      updated_at ${bigint} NOT NULL
    )`
    yield* sql`CREATE TABLE audit (
      id ${id},
      run_id ${bigint} NOT NULL REFERENCES runs (id),
      rule TEXT NOT NULL,
      bucket TEXT NOT NULL,
      key TEXT NOT NULL,
      version_id TEXT NOT NULL DEFAULT '',
      size ${bigint},
      delete_marker INTEGER NOT NULL DEFAULT 0,
      state TEXT NOT NULL CHECK (state IN ('pending', 'deleted')),
      deleted_at ${bigint},
      UNIQUE (run_id, key, version_id)
    )`
    yield* sql`CREATE INDEX audit_pending ON audit (run_id) WHERE state = 'pending'`
    yield* sql`CREATE INDEX audit_by_time ON audit (deleted_at)`
  }),
  // Aborted incomplete uploads (target: incomplete-uploads). Their rows also carry the upload id in version_id, so
  // that UNIQUE (run_id, key, version_id) tells two uploads of one key apart; toAudit reports versionId "" for them.
  "0002_audit_upload_id": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE audit ADD COLUMN upload_id TEXT`
  }),
  "0003_scheduled_at": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { bigint } = StateStore.types(sql)
    yield* sql`ALTER TABLE runs ADD COLUMN scheduled_at ${bigint}`
  }),
  // cluster mode: which replica ran (or is running) the run
  "0004_runs_runner": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE runs ADD COLUMN runner TEXT`
  }),
  // The time index holds confirmed rows only: an intent row (deleted_at NULL) no longer enters it to leave it again
  // at its confirmation. Every query on deleted_at compares it (prune, audit --since/--until), which implies IS NOT
  // NULL, so both SQLite and Postgres still use the partial index for them.
  "0005_audit_by_time_partial": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DROP INDEX audit_by_time`
    yield* sql`CREATE INDEX audit_by_time ON audit (deleted_at) WHERE deleted_at IS NOT NULL`
  }),
  // Intent per request instead of per key: one row per delete request, written before it is sent, with its keys as
  // JSON ([[key, version], ...]); the confirmed keys then get their final audit rows, and the intent row goes in the
  // same transaction. `after_id` is the highest audit row id when the intent was written: an audit row of another run
  // with a higher id was written after this intent (what "a later run listed the key" means for the reconcile).
  // Pending per-key rows already in the audit (written by an older version) stay as they are: the reconcile settles
  // them as before, and unresolved intents are expanded into such rows when they are reconciled.
  "0006_audit_intents": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { bigint, id } = StateStore.types(sql)
    yield* sql`CREATE TABLE audit_intents (
      id ${id},
      run_id ${bigint} NOT NULL REFERENCES runs (id),
      rule TEXT NOT NULL,
      bucket TEXT NOT NULL,
      after_id ${bigint} NOT NULL,
      keys TEXT NOT NULL
    )`
    yield* sql`CREATE INDEX audit_intents_by_run ON audit_intents (run_id)`
  }),
  // The time index goes: every confirmed row paid for it, and its one hot user, the retention prune, finds the old
  // rows through their runs instead (a row is confirmed after its run started, so a row older than the cutoff belongs
  // to a run started before it: the unique index's run_id prefix). `audit --since/--until` filter the row-id order
  // they page in, as `--key` does.
  "0007_audit_no_time_index": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DROP INDEX audit_by_time`
  })
})

// integer columns are numbers from SQLite, text from Postgres (64-bit): the mappers take them through StateStore.int
type Int = number | string

interface RunRow {
  readonly id: Int
  readonly rule: string
  readonly trigger: string
  readonly dry_run: Int
  readonly started_at: Int
  readonly ended_at: Int | null
  readonly status: string
  readonly resumed_from: string | null
  readonly scheduled_at: Int | null
  readonly runner?: string | null
  readonly listed: Int
  readonly matched: Int
  readonly deleted: Int
  readonly bytes: Int
  readonly failed: Int
  readonly skipped: Int
  readonly throttled: Int
  readonly error: string | null
}

const { int, intOrNull } = StateStore

const toRun = (r: RunRow): RunRecord => ({
  id: int(r.id),
  rule: r.rule,
  trigger: r.trigger as Trigger,
  dryRun: int(r.dry_run) === 1,
  startedAt: int(r.started_at),
  endedAt: intOrNull(r.ended_at),
  status: r.status as RunStatus,
  resumedFrom: r.resumed_from,
  scheduledAt: intOrNull(r.scheduled_at ?? null),
  runner: r.runner ?? null,
  listed: int(r.listed),
  matched: int(r.matched),
  deleted: int(r.deleted),
  bytes: int(r.bytes),
  failed: int(r.failed),
  skipped: int(r.skipped),
  throttled: int(r.throttled),
  error: r.error
})

interface AuditDbRow {
  readonly id: Int
  readonly run_id: Int
  readonly rule: string
  readonly bucket: string
  readonly key: string
  readonly version_id: string
  readonly size: Int | null
  readonly delete_marker: Int
  readonly state: string
  readonly deleted_at: Int | null
  readonly upload_id: string | null
}

const toAudit = (r: AuditDbRow): AuditRow => ({
  id: int(r.id),
  runId: int(r.run_id),
  rule: r.rule,
  bucket: r.bucket,
  key: r.key,
  versionId: r.upload_id === null ? r.version_id : "",
  size: intOrNull(r.size),
  deleteMarker: int(r.delete_marker) === 1,
  state: r.state as AuditRow["state"],
  deletedAt: intOrNull(r.deleted_at),
  uploadId: r.upload_id
})

interface IntentRow {
  readonly id: Int
  readonly run_id: Int
  readonly rule: string
  readonly bucket: string
  readonly after_id: Int
  /** JSON: [[key, version], ...] */
  readonly keys: string
}

const deleteIntentText = "DELETE FROM audit_intents WHERE id = ?"

/**
 * The audit's writes on SQLite: one prepared `INSERT ... SELECT ... FROM (VALUES (?, ?), ...)` per row count, the
 * constants of the run bound once per statement, each row's fields bound as plain parameters (no JSON to build or to
 * parse, no SQL built per key). Row counts are taken from a few fixed sizes (1000, then powers of two), so a handful
 * of statement texts are ever prepared (and stay in the client's prepared-statement cache) whatever the batch sizes.
 */
const valuesSizes = [1000, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1]

/** `total` split into the fixed sizes, largest first. */
const valuesChunks = (total: number): Array<number> => {
  const out: Array<number> = []
  let left = total
  for (const size of valuesSizes) {
    while (left >= size) {
      out.push(size)
      left -= size
    }
  }
  return out
}

const memo = (make: (rows: number) => string) => {
  const texts = new Map<number, string>()
  return (rows: number): string => {
    let text = texts.get(rows)
    if (text === undefined) {
      text = make(rows)
      texts.set(rows, text)
    }
    return text
  }
}

const valuesList = (rows: number, width: number) => {
  const row = `(${Array(width).fill("?").join(", ")})`
  return Array(rows).fill(row).join(", ")
}

const confirmUpsert = `ON CONFLICT (run_id, key, version_id) DO UPDATE SET state = 'deleted',
  size = coalesce(excluded.size, audit.size), delete_marker = excluded.delete_marker,
  deleted_at = coalesce(audit.deleted_at, excluded.deleted_at)`

// WHERE true: SQLite needs it to parse ON CONFLICT after INSERT ... SELECT
const confirmText = memo((rows) =>
  `INSERT INTO audit (run_id, rule, bucket, key, version_id, size, delete_marker, state, deleted_at, upload_id)
  SELECT ?, ?, ?, column1, column2, column3, column4, 'deleted', ?, column5 FROM (VALUES ${valuesList(rows, 5)})
  WHERE true ${confirmUpsert}`
)

// SQLite caps bound parameters per statement; 100 rows x 8 columns stays far below it.
const chunks = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** The file behind the SqlClient, when it is a locked state file (absent for `:memory:` and read-only opens). */
export class OpenedFile extends Context.Tag("@effect-cos/daemon/State/OpenedFile")<OpenedFile, StateFile.Held>() {}

/** When provided, the State service does not migrate at construction: the daemon migrates after the port is bound. */
export class DeferMigrations extends Context.Tag("@effect-cos/daemon/State/DeferMigrations")<DeferMigrations, true>() {
  static readonly layer = Layer.succeed(DeferMigrations, true)
}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const file = yield* Effect.serviceOption(OpenedFile)
  const writerLock = yield* Effect.serviceOption(StateStore.WriterLock)
  const defer = Option.isSome(yield* Effect.serviceOption(DeferMigrations))
  // WAL (set by the client) with synchronous=NORMAL. What SQLite guarantees (sqlite.org/pragma.html#pragma_synchronous
  // and sqlite.org/wal.html): a committed transaction is durable across an application crash whatever `synchronous`
  // says (its frames are in the WAL file, written before COMMIT returns), so an intent committed before its request
  // leaves survives SIGKILL, an OOM kill or a crash of this process; NORMAL skips only the fsync at each commit (the
  // WAL is synced at checkpoints), so a power loss or an OS crash may roll back the last transactions, and with them
  // the audit rows of the last batches (docs/daemon.md says so). FULL would fsync at every commit: two per batch,
  // blocking the event loop (the driver is synchronous), several ms each on ordinary disks.
  yield* Effect.orDie(
    sql.onDialectOrElse({ sqlite: () => sql`PRAGMA synchronous = NORMAL`, orElse: () => Effect.void })
  )
  const migrator = Migrator.make({})({ loader: migrations, table: "cos_retention_migrations" }).pipe(
    Effect.provideService(SqlClient.SqlClient, sql)
  )
  // replicas starting together on Postgres: one migrates while the others wait for it
  const migrate = Effect.orDie(sql.onDialectOrElse({
    pg: () => StateStore.withSessionLock(sql, "cos-retention migrations", migrator),
    orElse: () => migrator
  }))
  if (!defer) yield* migrate
  const orDie = <A>(effect: Effect.Effect<A, SqlError>) => Effect.orDie(effect)

  /**
   * Fails when the state file was deleted or replaced since it was opened, or when the Postgres writer lock was lost
   * and another process took it (StateStore.writerLock).
   */
  const check: Effect.Effect<void, StateError> = Effect.zipRight(
    Option.match(file, { onNone: () => Effect.void, onSome: (f) => f.check }),
    Option.match(writerLock, { onNone: () => Effect.void, onSome: (held) => held.check })
  )

  const startRun = (input: {
    readonly rule: string
    readonly trigger: Trigger
    readonly dryRun: boolean
    readonly resumedFrom?: string | undefined
    readonly scheduledAt?: number | undefined
    readonly runner?: string | undefined
  }) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const rows = yield* sql<RunRow>`INSERT INTO runs ${
        sql.insert({
          rule: input.rule,
          trigger: input.trigger,
          dry_run: input.dryRun ? 1 : 0,
          started_at: now,
          status: "running",
          resumed_from: input.resumedFrom ?? null,
          scheduled_at: input.scheduledAt ?? null,
          runner: input.runner ?? null
        })
      } RETURNING *`
      return toRun(rows[0]!)
    }).pipe(orDie)

  const finishRun = (
    id: number,
    status: Exclude<RunStatus, "running">,
    counts: RunCounts,
    error?: string | undefined
  ) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* sql`UPDATE runs SET ${
        sql.update({
          status,
          ended_at: now,
          listed: counts.listed,
          matched: counts.matched,
          deleted: counts.deleted,
          bytes: counts.bytes,
          failed: counts.failed,
          skipped: counts.skipped,
          throttled: counts.throttled,
          error: error ?? null
        })
      } WHERE id = ${id}`
    }).pipe(orDie)

  /**
   * Runs left `running` by a process that died: recorded as interrupted, with what the audit confirms they deleted.
   * Returns their ids.
   */
  const abandon = (rule?: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const rows = yield* sql<{ id: Int }>`UPDATE runs SET status = 'interrupted', ended_at = ${now},
      error = 'the daemon stopped before recording the end of this run',
      deleted = (SELECT count(*) FROM audit a WHERE a.run_id = runs.id AND a.state = 'deleted'),
      bytes = (SELECT coalesce(sum(a.size), 0) FROM audit a WHERE a.run_id = runs.id AND a.state = 'deleted')
      WHERE status = 'running' AND ${rule === undefined ? sql`1 = 1` : sql`rule = ${rule}`} RETURNING id`
      return rows.map((r) => int(r.id))
    }).pipe(orDie)
  const markAbandoned = abandon()
  /**
   * In cluster mode, where other replicas' runs are alive: the runs of one rule left `running`, marked by the replica
   * that now owns the rule (the one that ran them is gone or has lost the rule).
   */
  const markAbandonedOf = (rule: string) => abandon(rule)

  const getRun = (id: number) =>
    sql<RunRow>`SELECT * FROM runs WHERE id = ${id}`.pipe(
      Effect.map((rows) => rows[0] === undefined ? undefined : toRun(rows[0])),
      orDie
    )

  const lastRun = (rule: string) =>
    sql<RunRow>`SELECT * FROM runs WHERE rule = ${rule} ORDER BY started_at DESC, id DESC LIMIT 1`.pipe(
      Effect.map((rows) => rows[0] === undefined ? undefined : toRun(rows[0])),
      orDie
    )

  const lastSuccess = (rule: string) =>
    sql<RunRow>`SELECT * FROM runs WHERE rule = ${rule} AND status = 'succeeded'
      ORDER BY started_at DESC, id DESC LIMIT 1`.pipe(
      Effect.map((rows) => rows[0] === undefined ? undefined : toRun(rows[0])),
      orDie
    )

  const recentRuns = (options: { readonly limit: number; readonly rule?: string | undefined }) =>
    (options.rule === undefined
      ? sql<RunRow>`SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT ${options.limit}`
      : sql<RunRow>`SELECT * FROM runs WHERE rule = ${options.rule}
          ORDER BY started_at DESC, id DESC LIMIT ${options.limit}`).pipe(
        Effect.map((rows) => rows.map(toRun)),
        orDie
      )

  const saveCheckpoint = (rule: string, runId: number, afterKey: string) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* sql`INSERT INTO checkpoints (rule, run_id, after_key, updated_at)
        VALUES (${rule}, ${runId}, ${afterKey}, ${now})
        ON CONFLICT (rule) DO UPDATE SET run_id = excluded.run_id, after_key = excluded.after_key,
          updated_at = excluded.updated_at`
    }).pipe(orDie)

  const getCheckpoint = (rule: string) =>
    sql<{ run_id: Int; after_key: string }>`SELECT run_id, after_key FROM checkpoints WHERE rule = ${rule}`.pipe(
      Effect.map((rows): Checkpoint | undefined =>
        rows[0] === undefined ? undefined : { runId: int(rows[0].run_id), afterKey: rows[0].after_key }
      ),
      orDie
    )

  const clearCheckpoint = (rule: string) => orDie(sql`DELETE FROM checkpoints WHERE rule = ${rule}`)

  const isSqlite = sql.onDialectOrElse({ sqlite: () => true, orElse: () => false })

  /**
   * Runs `statements` (each a text and its parameters) in one transaction when there are several: one commit per
   * batch, so the pages a batch touches are written to the WAL once.
   */
  const runAll = (statements: ReadonlyArray<readonly [string, ReadonlyArray<unknown>]>) => {
    const effects = statements.map(([text, params]) => sql.unsafe(text, params))
    return effects.length === 1 ? effects[0]! : sql.withTransaction(Effect.all(effects, { discard: true }))
  }

  /** The intent row written for each array of objects given to recordIntent (the engine's `onSend`). */
  const intentOf = new WeakMap<object, number>()

  // Intent, immediately before a request is sent: one `audit_intents` row holding the request's keys, one statement
  // (no per-key row to insert now and update later). The engine gives the same array to `onDeleted` with the
  // confirmation, which finds the row through `intentOf`.
  const recordIntent = (
    run: { readonly id: number; readonly rule: string; readonly bucket: string },
    objects: ReadonlyArray<{ readonly key: string; readonly versionId?: string | undefined }>
  ) => {
    if (objects.length === 0) return Effect.void
    const pairs: Array<readonly [string, string]> = new Array(objects.length)
    for (let i = 0; i < objects.length; i++) pairs[i] = [objects[i]!.key, objects[i]!.versionId ?? ""]
    const keys = JSON.stringify(pairs)
    return sql<{ id: Int }>`INSERT INTO audit_intents (run_id, rule, bucket, after_id, keys)
      VALUES (${run.id}, ${run.rule}, ${run.bucket}, (SELECT coalesce(max(id), 0) FROM audit), ${keys})
      RETURNING id`.pipe(
      Effect.map((rows) => {
        intentOf.set(objects, int(rows[0]!.id))
      }),
      orDie
    )
  }

  /** What the audit row of a confirmed deletion names as its version: see the comments. */
  const confirmedVersion = (d: Confirmed) =>
    // an aborted upload's id (UNIQUE (run_id, key, version_id) then tells two uploads of one key apart); a plain
    // delete on a versioned bucket names no version (it creates a marker): the intent's ''
    d.uploadId !== undefined ? d.uploadId : d.deleteMarkerCreated ? "" : d.versionId ?? ""

  // Confirmation, after the reply: the confirmed keys get their `deleted` rows, one multi-row insert per batch, and
  // when `sent` (the array given to recordIntent for this request) was confirmed whole, its intent row is deleted in
  // the same transaction. A request confirmed in part keeps its intent: its other keys stay pending (an intent's key
  // with an audit row of its run is not pending), until a retry confirms them or the run ends (dropPending). A key
  // with no intent (an aborted upload) is inserted as deleted; a key already pending (a per-key row of an older
  // version, or of a reconcile) becomes deleted.
  const confirmDeleted = (
    run: { readonly id: number; readonly rule: string; readonly bucket: string },
    deleted: ReadonlyArray<Confirmed>,
    sent?: ReadonlyArray<unknown> | undefined
  ) =>
    Effect.gen(function*() {
      if (deleted.length === 0) return
      const now = yield* Clock.currentTimeMillis
      const intent = sent !== undefined && sent.length === deleted.length ? intentOf.get(sent) : undefined
      if (isSqlite) {
        const statements: Array<readonly [string, ReadonlyArray<unknown>]> = []
        let i = 0
        for (const rows of valuesChunks(deleted.length)) {
          const params: Array<unknown> = [run.id, run.rule, run.bucket, now]
          for (const end = i + rows; i < end; i++) {
            const d = deleted[i]!
            params.push(d.key, confirmedVersion(d), d.size ?? null, d.deleteMarkerCreated ? 1 : 0, d.uploadId ?? null)
          }
          statements.push([confirmText(rows), params])
        }
        if (intent !== undefined) statements.push([deleteIntentText, [intent]])
        return yield* runAll(statements)
      }
      const rows = StateStore.jsonRows(
        sql,
        JSON.stringify(deleted.map((d) => [
          d.key,
          confirmedVersion(d),
          d.size ?? null,
          d.deleteMarkerCreated ? 1 : 0,
          d.uploadId ?? null
        ]))
      )
      const insert = sql`INSERT INTO audit
          (run_id, rule, bucket, key, version_id, size, delete_marker, state, deleted_at, upload_id)
        SELECT ${run.id}, ${run.rule}, ${run.bucket}, ${rows.column(0, "text")}, ${rows.column(1, "text")},
          ${rows.column(2, "bigint")}, ${rows.column(3, "int")}, 'deleted', ${now}, ${rows.column(4, "text")}
        FROM ${rows.source} WHERE true ${sql.unsafe(confirmUpsert)}`
      yield* intent === undefined
        ? insert
        : sql.withTransaction(Effect.zipRight(insert, sql`DELETE FROM audit_intents WHERE id = ${intent}`))
    }).pipe(orDie)

  /** Superseded intent keys found while expanding, per rule, until that rule's dropSuperseded reports them. */
  const supersededAtExpansion = new Map<string, number>()

  /**
   * Expands unresolved intents into per-key `pending` audit rows, the form the reconcile settles (each key checked):
   * by default the intents of every ended run (a run still going owns its own), in the order they were written, so
   * that the rows keep the intents' order; `scope` narrows the intents (a split run's chunk: its run and range).
   * A key is not expanded when a later unresolved intent of another run names it (same bucket, key and version), or
   * an audit row of another run written after the intent (id above its `after_id`): that later run listed the key
   * after this intent, so it owns it (counted as superseded, as dropSuperseded does for per-key rows). A key that has
   * an audit row of its own run is not pending (confirmed, or a retry's intent expanded already). The rows are
   * inserted and the intents deleted in one transaction. Returns how many keys were superseded, per rule.
   */
  const expandIntents = (scope?: Fragment) =>
    Effect.gen(function*() {
      const intents = yield* sql<IntentRow>`SELECT i.id, i.run_id, i.rule, i.bucket, i.after_id, i.keys
        FROM audit_intents i WHERE ${
        scope ?? sql`i.run_id IN (SELECT id FROM runs WHERE status <> 'running')`
      } ORDER BY i.id`
      const superseded = new Map<string, number>()
      if (intents.length === 0) return superseded
      const first = int(intents[0]!.id)
      // every unresolved intent written after the first one (its run ended or not): key -> [intent id, run id]
      const later = yield* sql<IntentRow>`SELECT id, run_id, rule, bucket, after_id, keys FROM audit_intents
        WHERE id > ${first}`
      const laterNames = new Map<string, Array<readonly [number, number]>>()
      for (const j of later) {
        for (const [key, version] of JSON.parse(j.keys) as Array<[string, string]>) {
          const name = JSON.stringify([j.bucket, key, version])
          const list = laterNames.get(name)
          const entry = [int(j.id), int(j.run_id)] as const
          if (list === undefined) laterNames.set(name, [entry])
          else list.push(entry)
        }
      }
      // candidates: [run, rule, bucket, key, version, after_id]
      const candidates: Array<[number, string, string, string, string, number]> = []
      const count = (rule: string) => superseded.set(rule, (superseded.get(rule) ?? 0) + 1)
      for (const i of intents) {
        const id = int(i.id)
        const runId = int(i.run_id)
        for (const [key, version] of JSON.parse(i.keys) as Array<[string, string]>) {
          const names = laterNames.get(JSON.stringify([i.bucket, key, version]))
          if (names !== undefined && names.some(([j, r]) => j > id && r !== runId)) count(i.rule)
          else candidates.push([runId, i.rule, i.bucket, key, version, int(i.after_id)])
        }
      }
      // candidates that an audit row of another run, written after the intent, names: one query for all of them
      const json = JSON.stringify(candidates.map((c, index) => [c[2], c[3], c[4], c[0], c[5], index]))
      const rows = StateStore.jsonRows(sql, json)
      const named = candidates.length === 0 ? [] : yield* sql<{ n: Int }>`SELECT c.n FROM (SELECT
          ${rows.column(0, "text")} AS bucket, ${rows.column(1, "text")} AS key, ${
        rows.column(2, "text")
      } AS version_id,
          ${rows.column(3, "bigint")} AS run_id, ${rows.column(4, "bigint")} AS after_id, ${
        rows.column(5, "bigint")
      } AS n
        FROM ${rows.source}) c
        WHERE EXISTS (SELECT 1 FROM audit b WHERE b.bucket = c.bucket AND b.key = c.key
          AND b.version_id = c.version_id AND b.run_id <> c.run_id AND b.id > c.after_id)`
      const dropped = new Set(named.map((r) => int(r.n)))
      const kept = candidates.filter((c, index) => {
        if (!dropped.has(index)) return true
        count(c[1])
        return false
      })
      yield* Effect.gen(function*() {
        for (const part of chunks(kept, 1000)) {
          const keptRows = StateStore.jsonRows(sql, JSON.stringify(part.map((c) => [c[0], c[1], c[2], c[3], c[4]])))
          yield* sql`INSERT INTO audit (run_id, rule, bucket, key, version_id, state)
            SELECT ${keptRows.column(0, "bigint")}, ${keptRows.column(1, "text")}, ${keptRows.column(2, "text")},
              ${keptRows.column(3, "text")}, ${keptRows.column(4, "text")}, 'pending'
            FROM ${keptRows.source} WHERE true ON CONFLICT (run_id, key, version_id) DO NOTHING`
        }
        for (const part of chunks(intents.map((i) => int(i.id)), 500)) {
          yield* sql`DELETE FROM audit_intents WHERE ${sql.in("id", part)}`
        }
      }).pipe(sql.withTransaction)
      return superseded
    }).pipe(orDie)

  /** Expands the intents of ended runs; the keys they lose to later runs are reported by dropSuperseded. */
  const expandEnded = Effect.map(expandIntents(), (found) => {
    for (const [rule, n] of found) supersededAtExpansion.set(rule, (supersededAtExpansion.get(rule) ?? 0) + n)
  })

  /**
   * Rules with pending rows of ended runs (their intents expanded first), and how many, counting the keys that were
   * found superseded while expanding (their rule's dropSuperseded reports them).
   */
  const pendingByRule = Effect.gen(function*() {
    yield* expandEnded
    const rows = yield* sql<{ rule: string; n: Int }>`SELECT a.rule, count(*) AS n FROM audit a
      JOIN runs r ON r.id = a.run_id WHERE a.state = 'pending' AND r.status <> 'running' GROUP BY a.rule`
    const byRule = new Map(rows.map((r) => [r.rule, int(r.n)]))
    for (const [rule, n] of supersededAtExpansion) byRule.set(rule, (byRule.get(rule) ?? 0) + n)
    return Array.from(byRule, ([rule, n]) => ({ rule, n }))
  }).pipe(orDie)

  /**
   * Pending rows of ended runs that a later audit row of another run names too (same bucket, key and version): the
   * later run listed the key after this intent was written, so it owns the key; the earlier intent is dropped without
   * asking COS. Unresolved intents of ended runs are expanded first (see expandIntents). Returns how many were
   * dropped, with the keys of this rule found superseded while expanding.
   */
  const dropSuperseded = (rule: string) =>
    Effect.gen(function*() {
      yield* expandEnded
      const rows = yield* sql<{ id: number }>`DELETE FROM audit WHERE id IN (
        SELECT a.id FROM audit a JOIN runs r ON r.id = a.run_id
        WHERE a.state = 'pending' AND r.status <> 'running' AND a.rule = ${rule}
          AND EXISTS (SELECT 1 FROM audit b WHERE b.bucket = a.bucket AND b.key = a.key
            AND b.version_id = a.version_id AND b.run_id <> a.run_id AND b.id > a.id))
      RETURNING id`
      const atExpansion = supersededAtExpansion.get(rule) ?? 0
      supersededAtExpansion.delete(rule)
      return rows.length + atExpansion
    }).pipe(orDie)

  /**
   * Whether this state has the intents table (a state written by an older version, opened read-only, may not; nor
   * does one whose migrations are deferred, before they run): once found, it stays.
   */
  let intentsFound = false
  const intentsTable = Effect.suspend(() =>
    intentsFound ? Effect.succeed(true) : Effect.orDie(StateStore.hasTable(sql, "audit_intents")).pipe(
      Effect.tap((found) => {
        intentsFound = found
      })
    )
  )

  /**
   * Audit rows whose outcome is not known yet, per rule (in-flight batches, or a killed run's, reconciled later):
   * per-key pending rows and the keys of unresolved intents not yet confirmed.
   */
  const pendingCounts = Effect.gen(function*() {
    const intents = yield* intentsTable
    const rows = yield* sql<{ readonly rule: string; readonly n: Int }>`SELECT rule, count(*) AS n FROM (
        SELECT rule FROM audit WHERE state = 'pending'
        ${intents ? sql`UNION ALL SELECT rule FROM (${StateStore.pendingIntentKeys(sql)}) p` : sql``}) x
      GROUP BY rule`
    return new Map(rows.map((r) => [r.rule, int(r.n)]))
  }).pipe(orDie)

  /** Pending rows of ended runs (their intents expanded first): what the reconcile settles. */
  const pendingAudit = (rule?: string | undefined) =>
    Effect.zipRight(
      expandEnded,
      rule === undefined
        ? sql<AuditDbRow>`SELECT a.* FROM audit a JOIN runs r ON r.id = a.run_id
          WHERE a.state = 'pending' AND r.status <> 'running' ORDER BY a.id`
        : sql<AuditDbRow>`SELECT a.* FROM audit a JOIN runs r ON r.id = a.run_id
          WHERE a.state = 'pending' AND r.status <> 'running' AND a.rule = ${rule} ORDER BY a.id`
    ).pipe(
      Effect.map((rows) => rows.map(toAudit)),
      orDie
    )

  /**
   * Settles pending rows: `gone` ones become deleted (at now), `present` ones are dropped; the runs they belong to
   * then count what the audit says they deleted (a killed run never recorded its counts).
   */
  const settlePending = (gone: ReadonlyArray<number>, present: ReadonlyArray<number>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const runIds = new Set<number>()
      for (const chunk of chunks([...gone, ...present], 500)) {
        const rows = yield* sql<{ run_id: Int }>`SELECT DISTINCT run_id FROM audit WHERE ${sql.in("id", chunk)}`
        for (const r of rows) runIds.add(int(r.run_id))
      }
      for (const chunk of chunks(gone, 500)) {
        yield* sql`UPDATE audit SET state = 'deleted', deleted_at = ${now} WHERE ${sql.in("id", chunk)}`
      }
      for (const chunk of chunks(present, 500)) {
        yield* sql`DELETE FROM audit WHERE state = 'pending' AND ${sql.in("id", chunk)}`
      }
      for (const chunk of chunks(Array.from(runIds), 500)) {
        yield* sql`UPDATE runs SET
          deleted = (SELECT count(*) FROM audit a WHERE a.run_id = runs.id AND a.state = 'deleted'),
          bytes = (SELECT coalesce(sum(a.size), 0) FROM audit a WHERE a.run_id = runs.id AND a.state = 'deleted')
          WHERE status <> 'running' AND ${sql.in("id", chunk)}`
      }
    }).pipe(sql.withTransaction, orDie)

  /** After a run whose every outcome is known, pending rows and unresolved intents are keys that were not deleted. */
  const dropPending = (runId: number) =>
    orDie(sql.withTransaction(Effect.zipRight(
      sql`DELETE FROM audit WHERE run_id = ${runId} AND state = 'pending'`,
      sql`DELETE FROM audit_intents WHERE run_id = ${runId}`
    )))

  /**
   * The audit rows, oldest first, then the keys of unresolved intents not confirmed yet (`pending`, `id` 0), in the
   * order they were sent.
   */
  const audit = (options: { readonly runId?: number | undefined; readonly rule?: string | undefined } = {}) =>
    Effect.gen(function*() {
      const where = sql.and([
        options.runId === undefined ? sql`1 = 1` : sql`run_id = ${options.runId}`,
        options.rule === undefined ? sql`1 = 1` : sql`rule = ${options.rule}`
      ])
      const rows = yield* sql<AuditDbRow>`SELECT * FROM audit WHERE ${where} ORDER BY id`
      const pending = (yield* intentsTable)
        ? yield* sql<AuditDbRow>`SELECT * FROM (${StateStore.pendingIntentKeys(sql)}) p WHERE ${where}
          ORDER BY intent_id, pos`
        : []
      return [...rows, ...pending].map(toAudit)
    }).pipe(orDie)

  /**
   * Deletes audit rows older than the retention period; returns how many. The rows of a run that still has
   * unresolved intents wait with them (an intent's key is pending until its run has a row for it: pruning that row
   * would make the key pending again).
   */
  const pruneAudit = (retentionMs: number) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const cutoff = now - retentionMs
      // through the runs started before the cutoff (the unique index's run_id prefix): no time index to maintain
      const rows = yield* sql<{ id: Int }>`DELETE FROM audit WHERE state = 'deleted' AND deleted_at < ${cutoff}
        AND run_id IN (SELECT id FROM runs WHERE started_at < ${cutoff})
        AND run_id NOT IN (SELECT run_id FROM audit_intents) RETURNING id`
      return rows.length
    }).pipe(orDie)

  return {
    migrate,
    check,
    pendingByRule,
    dropSuperseded,
    startRun,
    finishRun,
    markAbandoned,
    markAbandonedOf,
    getRun,
    lastRun,
    lastSuccess,
    recentRuns,
    saveCheckpoint,
    getCheckpoint,
    clearCheckpoint,
    recordIntent,
    confirmDeleted,
    expandIntents,
    pendingAudit,
    pendingCounts,
    settlePending,
    dropPending,
    audit,
    pruneAudit
  } as const
})

const openCheck = (filename: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    // a read: fails on a file that is not a SQLite database, writes nothing
    sql`PRAGMA schema_version`.pipe(
      Effect.mapError((e) => new StateError({ path: filename, message: StateFile.describeSqlite(e) }))
    ))

const sqlite = (filename: string, readonly: boolean) =>
  SqliteClient.layer({ filename, readonly }).pipe(
    Layer.orDie,
    Layer.catchAllCause((cause) =>
      Layer.fail(new StateError({ path: filename, message: StateFile.describeSqlite(Cause.squash(cause)) }))
    )
  )

/**
 * SQLite at the configured path, held by this process (StateFile.acquire: its directory is created, the one-writer
 * lock taken, then the database opened). `readonly`: open an existing state without the lock, to read it while
 * another process holds it.
 */
export const layerSqlite = (
  filename: string,
  options: { readonly readonly?: boolean } = {}
): Layer.Layer<SqlClient.SqlClient | OpenedFile, StateError> => {
  if (filename === ":memory:") {
    return sqlite(filename, false) as Layer.Layer<SqlClient.SqlClient | OpenedFile, StateError>
  }
  if (options.readonly === true) {
    return Layer.unwrapEffect(Effect.gen(function*() {
      yield* Effect.try({ try: () => StateFile.inspect(filename), catch: (e) => e as StateError })
      if (!NodeFs.existsSync(filename)) {
        return yield* new StateError({ path: filename, message: "no such file" })
      }
      return Layer.effectDiscard(openCheck(filename)).pipe(Layer.provideMerge(sqlite(filename, true)))
    })) as any
  }
  return Layer.unwrapScoped(
    Effect.map(
      StateFile.acquire(filename),
      (held) =>
        Layer.effectDiscard(Effect.zipRight(openCheck(filename), held.opened)).pipe(
          Layer.provideMerge(sqlite(filename, false)),
          Layer.merge(Layer.succeed(OpenedFile, held))
        )
    )
  )
}

/** The state's SQL client: SQLite at its path, or Postgres. */
export const layerSql = (store: StateStore.StateStore): Layer.Layer<SqlClient.SqlClient, StateError> =>
  store._tag === "sqlite" ? layerSqlite(store.filename) : StateStore.layerPostgres(store).pipe(Layer.orDie)

// what the daemon and `once` write through: on Postgres, holding the one-writer lock (see StateStore)
const SqlFromSettings = Layer.unwrapEffect(Effect.map(Settings, (s) =>
  Layer.provideMerge(
    Layer.scoped(StateStore.WriterLock, StateStore.writerLock("exclusive", StateStore.display(s.store))),
    layerSql(s.store)
  )))

export class State extends Effect.Service<State>()("@effect-cos/daemon/State", {
  effect: make,
  dependencies: [SqlFromSettings]
}) {
  /** A fresh in-memory database. */
  static readonly Test: Layer.Layer<State> = State.DefaultWithoutDependencies.pipe(
    Layer.provide(layerSqlite(":memory:")),
    Layer.orDie
  )
  /** The state file, held by this process for the layer's lifetime. */
  static readonly layerFile = (filename: string): Layer.Layer<State, StateError> =>
    State.DefaultWithoutDependencies.pipe(Layer.provide(layerSqlite(filename)))
  /** An existing state file, read while another process may hold it (no lock, no migration, no writes). */
  static readonly layerReadonly = (filename: string): Layer.Layer<State, StateError> =>
    State.DefaultWithoutDependencies.pipe(
      Layer.provide(Layer.merge(layerSqlite(filename, { readonly: true }), DeferMigrations.layer))
    )
  /** The state in a store (SQLite or Postgres), without the writer lock: for readers (`history`). */
  static readonly layerStore = (store: StateStore.StateStore): Layer.Layer<State, StateError> =>
    State.DefaultWithoutDependencies.pipe(Layer.provide(layerSql(store)))
}
