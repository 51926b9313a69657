/**
 * Where the state lives: a SQLite file (the embedded default) or a Postgres database (`state: postgres://...`, what
 * replicas share). This module parses the `state` setting, opens Postgres, and holds the small differences between
 * the two SQL dialects that the state's queries need (everything else is shared SQL in State).
 *
 * Postgres secrets: the password comes from the URL or, when the URL has none, from `PGPASSWORD`. The URL is kept as
 * `Redacted` from the moment it is parsed; what is shown (logs, `validate`, errors) is `display`, the URL without its
 * password.
 *
 * One writer: a command that writes the state (`once`, and `run` outside cluster mode) holds a session-level advisory
 * lock on Postgres for its lifetime, the counterpart of SQLite's single-process file; a second writer is refused.
 * The lock lives on one reserved connection: Postgres releases it when that session ends (the process exits or is
 * killed, or the connection drops).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import type { Fragment } from "@effect/sql/Statement"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { StateError } from "./StateFile.js"

export type StateStore =
  | { readonly _tag: "sqlite"; readonly filename: string }
  | {
    readonly _tag: "postgres"
    /** The URL as written, password included if it had one. */
    readonly url: Redacted.Redacted<string>
    /** The URL without its password, safe to show. */
    readonly display: string
    /** The URL carried a password (worth a warning: a secret written in the config file). */
    readonly passwordInUrl: boolean
  }

/** A `state` value that names Postgres (`postgres://` or `postgresql://`). */
export const isPostgresUrl = (text: string): boolean => /^postgres(ql)?:\/\//i.test(text)

/**
 * Parses the `state` setting: a Postgres URL, `:memory:`, or a SQLite path (relative to `baseDir`). The error (a
 * sentence, never holding the URL: it may carry a password) says what is accepted.
 */
export const fromSetting = (text: string, baseDir: string): Either.Either<StateStore, string> => {
  if (!isPostgresUrl(text)) {
    return Either.right({ _tag: "sqlite", filename: text === ":memory:" ? text : NodePath.resolve(baseDir, text) })
  }
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return Either.left(
      "is not a valid Postgres URL (expected postgres://USER@HOST:PORT/DATABASE; the password comes from PGPASSWORD " +
        "or the URL)"
    )
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""))
  if (url.hostname === "" || database === "" || database.includes("/")) {
    return Either.left("a Postgres URL needs a host and a database: postgres://USER@HOST:PORT/DATABASE")
  }
  const passwordInUrl = url.password !== "" || url.searchParams.has("password")
  url.password = ""
  url.searchParams.delete("password")
  return Either.right({ _tag: "postgres", url: Redacted.make(text), display: url.toString(), passwordInUrl })
}

/** What to show for a store: the SQLite path, or the Postgres URL without its password. */
export const display = (store: StateStore): string => store._tag === "sqlite" ? store.filename : store.display

/** The start of pg's deprecation notice for a query sent to a client still busy with another one. */
const queuedQueryNotice = "Calling client.query() when the client is already executing a query is deprecated"

/**
 * Silences that one deprecation notice of the pg driver, nothing else. The cluster engine's runner storage
 * (`@effect/cluster` SqlRunnerStorage) sends its shard-lock statements from several fibers over one reserved
 * connection (advisory locks belong to a session); pg 8, which we pin, queues them one after the other as it always
 * has, and warns once per process that pg 9 will not. The warning is printed at every cluster start and tells an
 * operator nothing they can act on; every other warning still goes through.
 */
let pgQueueNoticeSilenced = false
const silencePgQueueNotice = () => {
  if (pgQueueNoticeSilenced) return
  pgQueueNoticeSilenced = true
  const emit = process.emitWarning.bind(process)
  process.emitWarning = ((warning: string | Error, ...rest: Array<any>) => {
    const text = typeof warning === "string" ? warning : warning.message
    if (text.startsWith(queuedQueryNotice)) return
    return (emit as any)(warning, ...rest)
  }) as typeof process.emitWarning
}

/**
 * A Postgres client for the state: at most `maxConnections` connections, the password from the URL or PGPASSWORD.
 * Fails with the driver's error when the server cannot be reached or refuses us (its message names no password).
 */
export const layerPostgres = (
  store: Extract<StateStore, { _tag: "postgres" }>,
  options: { readonly maxConnections?: number | undefined } = {}
) =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.zip(
        Config.option(Config.redacted("PGPASSWORD")).pipe(Effect.orElseSucceed(() => Option.none())),
        // loaded only when used: the SQLite path never pays for the Postgres driver
        Effect.promise(() => import("@effect/sql-pg/PgClient"))
      ),
      ([password, PgClient]) => {
        silencePgQueueNotice()
        return PgClient.layer({
          url: store.url,
          password: Option.getOrUndefined(password),
          applicationName: "cos-retention",
          maxConnections: options.maxConnections ?? 8,
          connectTimeout: "10 seconds"
        })
      }
    )
  )

/**
 * Runs `effect` holding a Postgres session advisory lock named `name` (waiting for it), on a connection reserved for
 * the lock alone: the statements of `effect` run on other connections and may fail without releasing it early.
 */
export const withSessionLock = <A, E, R>(sql: SqlClient.SqlClient, name: string, effect: Effect.Effect<A, E, R>) =>
  Effect.scoped(
    Effect.gen(function*() {
      const connection = yield* sql.reserve
      yield* connection.execute("SELECT pg_advisory_lock(hashtext($1))", [name], undefined)
      yield* Effect.addFinalizer(() =>
        connection.execute("SELECT pg_advisory_unlock(hashtext($1))", [name], undefined).pipe(Effect.ignore)
      )
      return yield* effect
    })
  )

/** A connection reserved for a session-level lock, and which backend serves it (to end it once it broke). */
interface Session {
  readonly connection: SqlConnection.Connection
  readonly backend: number
  /** When that backend started: with the pid, it names the session (pids are reused). */
  readonly started: string
  /** Holds the reserved connection. */
  readonly scope: Scope.CloseableScope
}

/**
 * Reserves a connection for a lock. `previous` is this process's own earlier session for it, whose connection broke:
 * if the server still has it (the break was on our side), it is ended first (waiting up to 5 s for it to go), so its
 * lock cannot keep us out.
 */
const reserveSession = (sql: SqlClient.SqlClient, previous?: Session) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    return yield* Effect.gen(function*() {
      const connection = yield* Scope.extend(sql.reserve, scope)
      if (previous !== undefined) {
        yield* connection.execute(
          `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2
           AND pid <> pg_backend_pid()`,
          [previous.backend, previous.started],
          undefined
        )
      }
      const rows = yield* connection.execute(
        "SELECT pid AS backend, backend_start::text AS started FROM pg_stat_activity WHERE pid = pg_backend_pid()",
        [],
        undefined
      )
      const session: Session = {
        connection,
        backend: Number(rows[0]?.backend),
        started: String(rows[0]?.started),
        scope
      }
      return session
    }).pipe(Effect.onError(() => Scope.close(scope, Exit.void)))
  })

/** How often a session holding a lock is checked (a Postgres restart ends it, and its locks with it). */
export const lockCheckInterval = Duration.seconds(1)

/**
 * Whether the session still answers (a check that does not answer in time proves nothing: the next one decides). The
 * check runs in a fiber of its own, never interrupted: interrupting a statement makes the driver cancel what the
 * backend runs (`pg_cancel_backend`), which could hit the next statement on that connection, the unlock.
 */
const answers = (session: Session) =>
  Effect.forkDaemon(
    session.connection.execute("SELECT 1", [], undefined).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
  ).pipe(
    Effect.flatMap(Fiber.join),
    Effect.timeoutTo({ duration: "10 seconds", onSuccess: (ok) => ok, onTimeout: () => true })
  )

/**
 * Like {@link withSessionLock} but waiting at most `wait` (trying every half second): `None` (and `effect` not run)
 * when another session still holds the lock then.
 *
 * While `effect` runs, the lock's session is checked every second: when it ended (Postgres restarted, the
 * connection dropped) the lock is taken again on a new connection as soon as Postgres answers. If another session
 * took it in between, `effect` is interrupted and this dies: what ran under the lock must not go on beside the new
 * holder.
 */
export const tryWithSessionLock = <A, E, R>(
  sql: SqlClient.SqlClient,
  name: string,
  wait: Duration.DurationInput,
  effect: Effect.Effect<A, E, R>
) =>
  Effect.scoped(
    Effect.gen(function*() {
      const tryLock = (session: Session) =>
        session.connection.execute("SELECT pg_try_advisory_lock(hashtext($1)) AS locked", [name], undefined).pipe(
          Effect.map((rows) => rows[0]?.locked === true)
        )
      let current = yield* reserveSession(sql)
      // (each attempt runs uninterrupted, and may have taken the lock when a timeout or an interruption comes: the
      // connection goes back to the pool only once it is let go)
      let mayHold = false
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          const session = current
          const unlock = mayHold
            ? session.connection.execute("SELECT pg_advisory_unlock(hashtext($1))", [name], undefined)
            : Effect.void
          return unlock.pipe(Effect.ignore, Effect.ensuring(Scope.close(session.scope, Exit.void)))
        })
      )
      const attempt = Effect.uninterruptible(
        Effect.suspend(() => {
          mayHold = true
          return Effect.tap(tryLock(current), (ok) => Effect.sync(() => (mayHold = ok)))
        })
      )
      const locked = yield* attempt.pipe(
        // (repeat gives the schedule's output: reaching the end means the lock was taken)
        Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("500 millis") }),
        Effect.timeoutTo({ duration: wait, onSuccess: () => true, onTimeout: () => false })
      )
      if (!locked) return Option.none<A>()
      const keep = Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(lockCheckInterval)
          const session = current
          if (yield* answers(session)) continue
          yield* Effect.logWarning(`the lock "${name}" ended with its Postgres session; taking it again`)
          mayHold = false
          yield* Scope.close(session.scope, Exit.void)
          const again = yield* Effect.uninterruptible(Effect.gen(function*() {
            const next = yield* reserveSession(sql, session)
            const ok = yield* tryLock(next).pipe(Effect.onError(() => Scope.close(next.scope, Exit.void)))
            if (!ok) {
              yield* Scope.close(next.scope, Exit.void)
              return false
            }
            current = next
            mayHold = true
            return true
          })).pipe(Effect.retry(Schedule.spaced("1 second")))
          if (!again) {
            return yield* Effect.dieMessage(
              `the lock "${name}" ended with its Postgres session and another session took it before this one ` +
                `could take it again: stopped what ran under it`
            )
          }
          yield* Effect.logWarning(`took the lock "${name}" again`)
        }
      })
      return Option.some(yield* Effect.raceFirst(effect, keep))
    })
  )

/**
 * {@link tryWithSessionLock} tried again until it takes the lock, however long another session holds it, logging
 * `waiting` (a warning) each time it could not: for work that must run under the lock and may not be skipped.
 */
export const waitForSessionLock = <A, E, R>(
  sql: SqlClient.SqlClient,
  name: string,
  wait: Duration.DurationInput,
  waiting: string,
  effect: Effect.Effect<A, E, R>
) =>
  tryWithSessionLock(sql, name, wait, effect).pipe(
    Effect.tap((r) => Option.isNone(r) ? Effect.logWarning(waiting) : Effect.void),
    Effect.repeat({ until: Option.isSome }),
    Effect.map(Option.getOrThrow)
  )

/** The key of the one-writer advisory lock (a class id and an object id, as Postgres' two-int form takes). */
const writerLockKey = "hashtext('cos-retention state'), 1"

/**
 * The writer lock's session names its process (`application_name`, which any session can read in
 * `pg_stat_activity`), so that a refused process can say who holds the state, as the SQLite lock file does.
 */
const holderName = () => `cos-retention pid=${process.pid} host=${NodeOs.hostname()}`.slice(0, 63)

/** The processes holding the writer lock now, as `pid N on HOST` (empty when they cannot be read). */
const holders = (connection: SqlConnection.Connection) =>
  connection.execute(
    `SELECT DISTINCT a.application_name AS name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = hashtext('cos-retention state')::oid
     AND l.objid = 1 AND l.objsubid = 2`,
    [],
    undefined
  ).pipe(
    Effect.map((rows) =>
      rows.flatMap((row) => {
        const m = /^cos-retention pid=(\d+) host=(.*)$/.exec(String(row.name ?? ""))
        return m === null ? [] : [{ pid: Number(m[1]), host: m[2]! }]
      })
    ),
    Effect.orElseSucceed(() => [])
  )

/** The writer lock held by this process: `check` fails once it was lost and could not be taken again. */
export interface WriterLockHeld {
  readonly check: Effect.Effect<void, StateError>
}

/** The writer lock this process holds (provided where the state is written). */
export class WriterLock extends Context.Tag("@effect-cos/daemon/StateStore/WriterLock")<WriterLock, WriterLockHeld>() {}

/**
 * Takes the writer lock on a connection reserved for it: the session, or who holds the lock (Left) when another
 * process does. `previous` is this process's own earlier session (see {@link reserveSession}).
 */
const take = (sql: SqlClient.SqlClient, mode: "exclusive" | "shared", previous?: Session) =>
  Effect.gen(function*() {
    const session = yield* reserveSession(sql, previous)
    return yield* Effect.gen(function*() {
      const fn = mode === "exclusive" ? "pg_try_advisory_lock" : "pg_try_advisory_lock_shared"
      const rows = yield* session.connection.execute(`SELECT ${fn}(${writerLockKey}) AS locked`, [], undefined)
      if (rows[0]?.locked !== true) {
        const found = yield* holders(session.connection)
        yield* Scope.close(session.scope, Exit.void)
        return Either.left(found)
      }
      yield* session.connection.execute("SELECT set_config('application_name', $1, false)", [holderName()], undefined)
        .pipe(Effect.ignore)
      return Either.right<Session>(session)
    }).pipe(Effect.onError(() => Scope.close(session.scope, Exit.void)))
  })

const holdersText = (found: ReadonlyArray<{ readonly pid: number; readonly host: string }>) =>
  found.length === 0 ? "pid unknown" : found.map((h) => `pid ${h.pid} on ${h.host}`).join(", ")

/**
 * Holds the one-writer lock for the scope: exclusive for a single writer, shared for the replicas of one cluster (so
 * a stray `once` is refused while a cluster runs, and a cluster runner while a `once` runs). On SQLite it does
 * nothing (a SQLite file has its own). Fails with a {@link StateError} naming the holder (its pid and host) when
 * another process holds it, as the SQLite lock does.
 *
 * The lock is a session's: when the session ends while this process runs (Postgres restarted, the connection
 * dropped), the lock goes with it. Its session is checked every second; once it is gone, the lock is taken again on
 * a new connection as soon as Postgres answers (in the same mode, so a replica and the other replicas hold it again
 * together). If another process took it in between (a `once` that started while nobody held it), this process may
 * not write any more: the handle's `check` fails from then on with a StateError saying so, and the daemon stops.
 */
export const writerLock = (mode: "exclusive" | "shared", shown: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const lost = yield* Ref.make(Option.none<StateError>())
    const held: WriterLockHeld = {
      check: Effect.flatMap(Ref.get(lost), Option.match({ onNone: () => Effect.void, onSome: Effect.fail }))
    }
    if (sql.onDialectOrElse({ pg: () => false, orElse: () => true })) return held
    const first = yield* take(sql, mode).pipe(Effect.orDie)
    if (Either.isLeft(first)) {
      return yield* new StateError({
        path: shown,
        message: `in use by another cos-retention process (${holdersText(first.left)}, ` +
          (mode === "exclusive" ? "a daemon, a cluster replica or a once run" : "a once run") +
          ` holding the writer lock in Postgres): only one process may use a state database at a time, ` +
          `or the replicas of one cluster`,
        holder: first.left[0]?.pid ?? 0
      })
    }
    let current: Session | undefined = first.right
    const unlock = mode === "exclusive" ? "pg_advisory_unlock" : "pg_advisory_unlock_shared"
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const taken = current
        if (taken === undefined) return Effect.void
        return taken.connection.execute(`SELECT ${unlock}(${writerLockKey})`, [], undefined).pipe(
          Effect.zipRight(taken.connection.execute("RESET application_name", [], undefined)),
          Effect.ignore,
          Effect.ensuring(Scope.close(taken.scope, Exit.void))
        )
      })
    )
    const watch = Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(lockCheckInterval)
        const taken = current!
        if (yield* answers(taken)) continue
        yield* Effect.logWarning(
          "the state's writer lock in Postgres ended with its session (Postgres restarted, or the connection " +
            "dropped); taking it again"
        )
        current = undefined
        yield* Scope.close(taken.scope, Exit.void)
        // (uninterrupted from taking it to recording it: a lock taken is always let go)
        const again = yield* Effect.uninterruptible(
          take(sql, mode, taken).pipe(
            Effect.tap((r) => Effect.sync(() => Either.isRight(r) && (current = r.right)))
          )
        ).pipe(
          Effect.tapError(() => Effect.logDebug("Postgres does not answer yet; trying again in a second")),
          Effect.retry(Schedule.spaced("1 second"))
        )
        if (Either.isRight(again)) {
          yield* Effect.logWarning("took the state's writer lock again")
          continue
        }
        const error = new StateError({
          path: shown,
          message: `the writer lock in Postgres ended with its session and another cos-retention process took it ` +
            `before this one could take it again (${holdersText(again.left)}): two processes may not write the ` +
            `state at once, so this one stops`,
          holder: again.left[0]?.pid ?? 0
        })
        // (whoever watches the lock reports it: the daemon and `once` stop with it)
        return yield* Ref.set(lost, Option.some(error))
      }
    })
    yield* Effect.forkScoped(Effect.interruptible(watch))
    return held
  })

/**
 * Checks the writer lock every second ({@link WriterLockHeld.check}); fails when it was lost for good. Never
 * succeeds.
 */
export const watchWriterLock = Effect.flatMap(WriterLock, (held) =>
  held.check.pipe(
    Effect.repeat(Schedule.spaced(lockCheckInterval)),
    Effect.zipRight(Effect.never)
  ))

// ---------------------------------------------------------------------------------------------------------------
// dialect helpers: the few places where SQLite and Postgres need different SQL
// ---------------------------------------------------------------------------------------------------------------

/** SQL types of the schema: a generated 64-bit row id, and 64-bit integers (milliseconds, byte counts). */
export const types = (sql: SqlClient.SqlClient) =>
  sql.onDialectOrElse({
    pg: () => ({ id: sql.unsafe("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"), bigint: sql.unsafe("BIGINT") }),
    orElse: () => ({ id: sql.unsafe("INTEGER PRIMARY KEY AUTOINCREMENT"), bigint: sql.unsafe("INTEGER") })
  })

/**
 * Rows passed as one JSON array of arrays (`[[a, b], ...]`) and read as a table in one statement: `source` is the
 * FROM clause, `column(i, type)` the i-th field of a row.
 */
export const jsonRows = (sql: SqlClient.SqlClient, json: string): {
  readonly source: Fragment
  readonly column: (index: number, type: "text" | "bigint" | "int") => Fragment
} =>
  sql.onDialectOrElse({
    pg: () => ({
      source: sql`jsonb_array_elements(${json}::jsonb) AS value`,
      column: (index, type) => sql.unsafe(`(value->>${index})::${type}`)
    }),
    orElse: () => ({
      source: sql`json_each(${json})`,
      column: (index) => sql.unsafe(`json_extract(value, '$[${index}]')`)
    })
  })

/** Postgres returns 64-bit integers as text: row mappers take every integer column through this. */
export const int = (value: number | string): number => typeof value === "number" ? value : Number(value)

export const intOrNull = (value: number | string | null): number | null => value === null ? null : int(value)

/**
 * The keys of unresolved audit intents (`audit_intents`: one row per delete request, its keys as JSON `[[key,
 * version], ...]`) that have no audit row of their run yet: the keys a run may have deleted and has not confirmed. A
 * derived table with the audit table's columns (`state` 'pending', no size, no time), one row per run, key and
 * version (a retried request's keys are in two intents), plus `intent_id` and `pos` (its position), to order by.
 */
export const pendingIntentKeys = (sql: SqlClient.SqlClient): Fragment =>
  sql.onDialectOrElse({
    pg: () =>
      sql`SELECT 0 AS id, i.run_id, i.rule, i.bucket, e.value->>0 AS key, e.value->>1 AS version_id, NULL::bigint AS size,
        0 AS delete_marker, 'pending' AS state, NULL::bigint AS deleted_at, NULL::text AS upload_id,
        min(i.id) AS intent_id, min(e.pos) AS pos
      FROM audit_intents i, jsonb_array_elements(i.keys::jsonb) WITH ORDINALITY AS e(value, pos)
      WHERE NOT EXISTS (SELECT 1 FROM audit a WHERE a.run_id = i.run_id AND a.key = e.value->>0
        AND a.version_id = e.value->>1)
      GROUP BY i.run_id, i.rule, i.bucket, e.value->>0, e.value->>1`,
    orElse: () =>
      sql`SELECT 0 AS id, i.run_id, i.rule, i.bucket, json_extract(e.value, '$[0]') AS key,
        json_extract(e.value, '$[1]') AS version_id, NULL AS size, 0 AS delete_marker, 'pending' AS state,
        NULL AS deleted_at, NULL AS upload_id, min(i.id) AS intent_id, min(e.key) AS pos
      FROM audit_intents i, json_each(i.keys) AS e
      WHERE NOT EXISTS (SELECT 1 FROM audit a WHERE a.run_id = i.run_id AND a.key = json_extract(e.value, '$[0]')
        AND a.version_id = json_extract(e.value, '$[1]'))
      GROUP BY i.run_id, 5, 6`
  })

/** Whether the table exists (a state written by an older version, opened read-only, may not have it yet). */
export const hasTable = (sql: SqlClient.SqlClient, name: string) =>
  sql.onDialectOrElse({
    pg: () => sql<{ n: number | string }>`SELECT count(*) AS n FROM pg_class WHERE oid = to_regclass(${name})`,
    orElse: () =>
      sql<{ n: number | string }>`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ${name}`
  }).pipe(Effect.map((rows) => Number(rows[0]?.n ?? 0) > 0))
