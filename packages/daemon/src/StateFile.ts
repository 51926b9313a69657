/**
 * The state database as a file: checks that make a bad `state` path a one-line error, and the one-writer lock.
 *
 * The lock is a companion SQLite database, `<state>.lock`, opened with `locking_mode=EXCLUSIVE` and written once at
 * open: SQLite then holds a POSIX write lock on it (fcntl) until the connection closes, and the kernel drops that
 * lock when the process dies, whatever killed it, so a killed daemon never blocks the next start. The holder's pid
 * is written in that same first transaction as the database's `user_version` (bytes 60-63 of the file's header),
 * which another process reads with a plain read, without taking any lock. The state database itself stays an
 * ordinary WAL database that a second process may read (`history` while a daemon runs).
 *
 * While the lock is held, the state file and the lock file must stay the files that were opened: `check` compares
 * their device and inode with what they were at open, so a state deleted or replaced under a running daemon is
 * noticed (a second process could otherwise lock a new file and write beside the first).
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"

/** The state cannot be used: `path` is the state database, `message` the cause in a few words. */
export class StateError extends Schema.TaggedError<StateError>()("StateError", {
  path: Schema.String,
  message: Schema.String,
  /** Another process holds the state: its pid (0 when it could not be read). */
  holder: Schema.optional(Schema.Number)
}) {
  /** The one line shown to the user. */
  get line(): string {
    return `state ${this.path}: ${this.message}`
  }
}

const sqliteHeader = Buffer.from("SQLite format 3\0", "latin1")

export const lockPathOf = (state: string) => `${state}.lock`

const describeErrno = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  switch (code) {
    case "EACCES":
    case "EPERM":
      return "permission denied"
    case "EROFS":
      return "read-only file system"
    case "ENOSPC":
      return "no space left on the device"
    case "ENOENT":
      return "this file system does not allow creating files here"
    case "ENOTDIR":
      return "a parent of the path is not a directory"
    case "EISDIR":
      return "it is a directory"
    default:
      return code ?? (e instanceof Error ? e.message : String(e))
  }
}

const statOrUndefined = (path: string): NodeFs.Stats | undefined => {
  try {
    return NodeFs.statSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    // ENOTDIR: a parent is a file; the walk up to the nearest existing ancestor then names it
    if (code === "ENOENT" || code === "ENOTDIR") return undefined
    throw e
  }
}

/**
 * Problems with the state location that can be seen without writing anything: a parent that is not a directory, a
 * state path that is a directory or not a SQLite database, a location where this process cannot create or write
 * files (checked with `access`, so it says nothing for root, which bypasses permissions; the open then reports it).
 * Returns the nearest existing directory the state's directory would be created under.
 */
export const inspect = (state: string): string | undefined => {
  if (state === ":memory:") return undefined
  const problem = (message: string) => {
    throw new StateError({ path: state, message })
  }
  let existing: string | undefined
  try {
    const stat = statOrUndefined(state)
    if (stat !== undefined) {
      if (stat.isDirectory()) problem("it is a directory, not a SQLite database file")
      if (!stat.isFile()) problem("it is not a regular file")
      if (stat.size > 0) {
        const header = Buffer.alloc(sqliteHeader.length)
        const fd = NodeFs.openSync(state, "r")
        try {
          NodeFs.readSync(fd, header, 0, header.length, 0)
        } finally {
          NodeFs.closeSync(fd)
        }
        if (!header.equals(sqliteHeader)) problem("the file is not a SQLite database")
      }
      NodeFs.accessSync(state, NodeFs.constants.R_OK | NodeFs.constants.W_OK)
    }
    // the nearest existing ancestor must be a directory this process may write in
    let dir = NodePath.dirname(state)
    while (true) {
      const s = statOrUndefined(dir)
      if (s !== undefined) {
        if (!s.isDirectory()) problem(`${dir} is not a directory`)
        existing = dir
        break
      }
      const parent = NodePath.dirname(dir)
      if (parent === dir) break
      dir = parent
    }
    if (existing !== undefined) {
      try {
        NodeFs.accessSync(existing, NodeFs.constants.W_OK | NodeFs.constants.X_OK)
      } catch (e) {
        problem(`cannot create files in ${existing}: ${describeErrno(e)}`)
      }
    }
  } catch (e) {
    if (e instanceof StateError) throw e
    problem(describeErrno(e))
  }
  return existing
}

/** Creates the directory of the state, level by level (Node's recursive mkdir can hang on some paths, e.g. /proc). */
const makeDirectory = (state: string, dir: string) => {
  const missing: Array<string> = []
  let d = dir
  while (statOrUndefined(d) === undefined) {
    missing.unshift(d)
    const parent = NodePath.dirname(d)
    if (parent === d) break
    d = parent
  }
  for (const m of missing) {
    try {
      NodeFs.mkdirSync(m)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new StateError({ path: state, message: `cannot create the directory ${m}: ${describeErrno(e)}` })
      }
    }
  }
}

interface Identity {
  readonly dev: number
  readonly ino: number
}

const identity = (path: string): Identity | undefined => {
  const s = statOrUndefined(path)
  return s === undefined ? undefined : { dev: s.dev, ino: s.ino }
}

const sameIdentity = (a: Identity | undefined, b: Identity | undefined) =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino

/** Locks held by this process, by lock path: a second open in the same process must not touch the file itself. */
const heldHere = new Set<string>()

const readHolder = (lockPath: string): number | undefined => {
  try {
    const header = Buffer.alloc(64)
    const fd = NodeFs.openSync(lockPath, "r")
    try {
      NodeFs.readSync(fd, header, 0, 64, 0)
    } finally {
      NodeFs.closeSync(fd)
    }
    const pid = header.readUInt32BE(60)
    return pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const sqliteCode = (cause: unknown): string | undefined => {
  let c: any = cause
  for (let i = 0; i < 4 && c !== undefined && c !== null; i++) {
    if (typeof c.code === "string" && c.code.startsWith("SQLITE_")) return c.code
    c = c.cause
  }
  return undefined
}

/** A one-line cause for a SQLite failure on the state or its lock file. */
export const describeSqlite = (cause: unknown): string => {
  const code = sqliteCode(cause)
  switch (code) {
    case "SQLITE_NOTADB":
      return "the file is not a SQLite database"
    case "SQLITE_CORRUPT":
      return "the database file is corrupt"
    case "SQLITE_CANTOPEN":
      return "cannot open the database file"
    case "SQLITE_READONLY":
    case "SQLITE_READONLY_DBMOVED":
      return "the database is read-only for this process"
    case "SQLITE_PERM":
    case "SQLITE_AUTH":
      return "permission denied"
    case "SQLITE_FULL":
      return "no space left on the device"
    case "SQLITE_IOERR":
      return "I/O error"
    default: {
      let c: any = cause
      while (c?.cause !== undefined && c.cause !== null) c = c.cause
      return code ?? (c instanceof Error ? c.message : String(c))
    }
  }
}

export interface Held {
  readonly state: string
  readonly lockPath: string
  /**
   * Fails if the state file or the lock file is no longer the file opened (deleted, replaced, moved away). Call
   * after the state was opened: `opened` records the state's identity.
   */
  readonly check: Effect.Effect<void, StateError>
  /** Records the state file's identity once it exists (after SQLite opened or created it). */
  readonly opened: Effect.Effect<void, StateError>
}

/**
 * Takes the one-writer lock of a state database, for the scope. Fails with the holder's pid when another process
 * holds it. Creates the state's directory and the lock file; never touches the state database.
 */
export const acquire = (state: string): Effect.Effect<Held, StateError, Scope.Scope> =>
  Effect.gen(function*() {
    const lockPath = lockPathOf(state)
    const fail = (message: string, holder?: number) => new StateError({ path: state, message, holder })
    const held = (pid: number | undefined) =>
      fail(
        `in use by another cos-retention process (${pid === undefined ? "pid unknown" : `pid ${pid}`}, ` +
          `lock ${lockPath}): only one process may use a state database at a time`,
        pid ?? 0
      )
    if (heldHere.has(lockPath)) return yield* held(process.pid)
    yield* Effect.try({ try: () => inspect(state), catch: (e) => e as StateError })
    yield* Effect.try({ try: () => makeDirectory(state, NodePath.dirname(state)), catch: (e) => e as StateError })
    const before = yield* Effect.try({
      try: () => {
        // create the lock file with a plain open so that a refusal has its errno (permission, file system)
        const fd = NodeFs.openSync(lockPath, "a")
        NodeFs.closeSync(fd)
        return identity(lockPath)
      },
      catch: (e) => fail(`cannot create the lock file ${lockPath}: ${describeErrno(e)}`)
    })
    const lock = yield* Layer.build(SqliteClient.layer({ filename: lockPath, disableWAL: true })).pipe(
      Effect.map(Context.get(SqliteClient.SqliteClient)),
      Effect.orDie,
      Effect.catchAllDefect((e) => Effect.fail(fail(`lock file ${lockPath}: ${describeSqlite(e)}`)))
    )
    const taken = yield* Effect.exit(
      Effect.gen(function*() {
        yield* lock.unsafe("PRAGMA busy_timeout = 0")
        yield* lock.unsafe("PRAGMA locking_mode = EXCLUSIVE")
        yield* lock.unsafe("BEGIN IMMEDIATE")
        yield* lock.unsafe(`PRAGMA user_version = ${process.pid}`)
        yield* lock.unsafe("COMMIT")
        // in exclusive locking mode the write lock of that first write is kept until the connection closes
      })
    )
    if (Exit.isFailure(taken)) {
      const squashed = Exit.causeOption(taken)
      const cause = squashed._tag === "Some" ? squashed.value : undefined
      const text = JSON.stringify(cause ?? "")
      if (text.includes("SQLITE_BUSY") || text.includes("SQLITE_LOCKED") || /database is locked/.test(text)) {
        // the holder writes its pid in the transaction that takes the lock: retry a moment if we read a stale one
        let pid = readHolder(lockPath)
        for (let i = 0; i < 10 && (pid === undefined || !alive(pid)); i++) {
          yield* Effect.sleep("50 millis")
          pid = readHolder(lockPath)
        }
        return yield* held(pid)
      }
      const sqlError = cause !== undefined && "failure" in cause ? (cause as any).failure : undefined
      return yield* fail(`lock file ${lockPath}: ${describeSqlite(sqlError ?? text)}`)
    }
    if (!sameIdentity(before, identity(lockPath))) {
      return yield* fail(`the lock file ${lockPath} was replaced while it was being locked; try again`)
    }
    heldHere.add(lockPath)
    yield* Effect.addFinalizer(() => Effect.sync(() => heldHere.delete(lockPath)))
    let stateIdentity: Identity | undefined
    const check = Effect.suspend(() => {
      if (!sameIdentity(before, identity(lockPath))) {
        return Effect.fail(fail(`the lock file ${lockPath} was deleted or replaced while this process held it`))
      }
      if (stateIdentity !== undefined && !sameIdentity(stateIdentity, identity(state))) {
        return Effect.fail(fail("the database file was deleted or replaced while this process was using it"))
      }
      return Effect.void
    })
    const opened = Effect.suspend(() => {
      stateIdentity = identity(state)
      return stateIdentity === undefined
        ? Effect.fail(fail("the database file was not created"))
        : Effect.void
    })
    return { state, lockPath, check, opened }
  })
