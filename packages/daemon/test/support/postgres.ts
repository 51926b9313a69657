/**
 * A throwaway Postgres for the tests that need one (state on Postgres, cluster mode): `initdb` into a temp dir,
 * `pg_ctl start` on 127.0.0.1 and a free port with fsync and full-page writes off (a crash of the server keeps what it committed, a crash of the machine would not), and
 * `pg_ctl stop -m immediate` plus removal of the dir when the layer's scope closes. Only test files that provide
 * `PgServer.Default` pay for it (about a second); the rest of the suite never starts it.
 *
 * Postgres refuses to run as root: as root, every Postgres command runs as the `postgres` user (`runuser`) and the dir
 * is handed to it. A watchdog process stops the server and removes the dir if the test process dies without running
 * its finalizers (a killed vitest worker), so no Postgres outlives the tests.
 *
 * The binaries come from `COS_TEST_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout),
 * else `pg_ctl` on PATH. Missing ones fail the test with how to install them.
 */
import * as Effect from "effect/Effect"
import { spawn, spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeNet from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

const binDir = (): string | undefined => {
  const fromEnv = process.env["COS_TEST_PG_BIN"]
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const root = "/usr/lib/postgresql"
  const versions = NodeFs.existsSync(root)
    ? NodeFs.readdirSync(root).filter((v) => NodeFs.existsSync(NodePath.join(root, v, "bin", "pg_ctl")))
      .sort((a, b) => Number(b) - Number(a))
    : []
  if (versions[0] !== undefined) return NodePath.join(root, versions[0], "bin")
  const which = spawnSync("sh", ["-c", "command -v pg_ctl"], { encoding: "utf8" })
  return which.status === 0 ? NodePath.dirname(which.stdout.trim()) : undefined
}

const isRoot = process.getuid?.() === 0

/** `[command, args]` running `bin/name` as the postgres user when we are root. */
const asPostgres = (bin: string, name: string, args: ReadonlyArray<string>): [string, Array<string>] =>
  isRoot ? ["runuser", ["-u", "postgres", "--", NodePath.join(bin, name), ...args]] : [NodePath.join(bin, name), [
    ...args
  ]]

const run = (bin: string, name: string, args: ReadonlyArray<string>) =>
  Effect.sync(() => {
    const [command, argv] = asPostgres(bin, name, args)
    return spawnSync(command, argv, { encoding: "utf8" })
  }).pipe(
    Effect.flatMap((r) =>
      r.status === 0
        ? Effect.succeed(r.stdout)
        : Effect.dieMessage(`${name} ${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`)
    )
  )

/** A TCP port free on 127.0.0.1 right now. */
export const freePort = Effect.async<number>((resume) => {
  const server = NodeNet.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

export interface PgServerInfo {
  readonly host: string
  readonly port: number
  /** The superuser; trust authentication on 127.0.0.1 (no password). */
  readonly user: string
  /** `postgres://postgres@127.0.0.1:PORT/postgres`, or another database of the same server. */
  readonly url: (database?: string) => string
  /** A new empty database; returns its URL. Cheap (a copy of template1), so tests can each have their own. */
  readonly createDatabase: (name: string) => Effect.Effect<string>
  /** The temp dir holding the data, the log and the Unix socket; removed when the server stops. */
  readonly dir: string
  /** Runs SQL with psql, returns its unaligned output. */
  readonly psql: (sql: string, database?: string) => Effect.Effect<string>
  /** Milliseconds from `initdb` to accepting connections. */
  readonly startMs: number
  /** Stops the server at once (as a crash would) and starts it again on the same port and data. */
  readonly restart: Effect.Effect<void>
}

const start = Effect.gen(function*() {
  const bin = binDir()
  if (bin === undefined || !NodeFs.existsSync(NodePath.join(bin, "initdb"))) {
    return yield* Effect.dieMessage(
      "Postgres is not installed: these tests need initdb and pg_ctl (apt-get install -y postgresql), " +
        "or COS_TEST_PG_BIN pointing at their directory"
    )
  }
  const began = Date.now()
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "cos-pg-"))
  const data = NodePath.join(dir, "data")
  if (isRoot) spawnSync("chown", ["postgres:postgres", dir])
  yield* run(bin, "initdb", ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"])
  const port = yield* freePort
  const options = [
    "-c listen_addresses=127.0.0.1",
    `-p ${port}`,
    `-k ${dir}`,
    "-c fsync=off",
    "-c full_page_writes=off",
    "-c max_connections=200"
  ].join(" ")
  const pgStart = run(bin, "pg_ctl", ["-D", data, "-l", NodePath.join(dir, "log"), "-w", "-o", options, "start"])
  const stop = run(bin, "pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"])
  yield* pgStart
  const startMs = Date.now() - began

  // the watchdog: when this process is gone, stop the server and remove the dir
  const [stopCommand, stopArgs] = asPostgres(bin, "pg_ctl", ["-D", data, "-m", "immediate", "stop"])
  const watchdog = spawn(
    "sh",
    [
      "-c",
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; "$@" >/dev/null 2>&1; rm -rf '${dir}'`,
      "watchdog",
      stopCommand,
      ...stopArgs
    ],
    { detached: true, stdio: "ignore" }
  )
  watchdog.unref()

  const psql = (text: string, database = "postgres") =>
    run(bin, "psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database, "-XAtq", "-c", text])
  const url = (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`
  const info: PgServerInfo = {
    host: "127.0.0.1",
    port,
    user: "postgres",
    url,
    dir,
    startMs,
    psql,
    createDatabase: (name) => Effect.as(psql(`CREATE DATABASE "${name}"`), url(name)),
    restart: Effect.zipRight(stop, pgStart)
  }
  const release = Effect.gen(function*() {
    yield* Effect.ignore(stop)
    if (watchdog.pid !== undefined) yield* Effect.sync(() => process.kill(watchdog.pid!)).pipe(Effect.ignore)
    yield* Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
  })
  return { info, release }
})

/** One throwaway Postgres server per layer build: `it.layer(PgServer.Default)` in the files that need it. */
export class PgServer extends Effect.Service<PgServer>()("test/PgServer", {
  scoped: Effect.map(
    Effect.acquireRelease(start, ({ release }) => release),
    ({ info }) => info
  )
}) {}
