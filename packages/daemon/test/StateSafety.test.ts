/**
 * One writer per state, start-up that changes nothing until every check passed, an audit that stays exact across
 * kills whichever command comes next, and one-line errors for state problems (issue 9).
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeNet from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { vi } from "vitest"
import { cli } from "../src/Cli.js"
import { teardown } from "../src/cli/common.js"
import * as Config from "../src/Config.js"
import * as Daemon from "../src/Daemon.js"
import { Purger } from "../src/Purger.js"
import { Runner } from "../src/Runner.js"
import { layerSqlite, State } from "../src/State.js"
import { Status } from "../src/Status.js"
import { cosRetention as child, credentialsEnv, repo } from "./support/child.js"

const day = 86_400_000

/** `cos-retention <args>` in process: exit code (as bin.ts maps it), stdout, stderr. */
const cosRetention = (...args: Array<string>) =>
  Effect.gen(function*() {
    const out: Array<string> = []
    const err: Array<string> = []
    const log = vi.spyOn(console, "log").mockImplementation((...xs: Array<unknown>) => void out.push(xs.join(" ")))
    const error = vi.spyOn(console, "error").mockImplementation((...xs: Array<unknown>) => void err.push(xs.join(" ")))
    const write = vi.spyOn(process.stderr, "write").mockImplementation((chunk: any) => {
      err.push(String(chunk))
      return true
    })
    const exit = yield* cli(["node", "cos-retention", ...args]).pipe(Effect.provide(NodeContext.layer), Effect.exit)
    let code = -1
    teardown(exit, (c) => (code = c))
    log.mockRestore()
    error.mockRestore()
    write.mockRestore()
    return { code, stdout: out.join("\n"), stderr: err.join("\n") }
  }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(credentialsEnv)))))

const tempDir = Effect.acquireRelease(
  Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "cos-retention-safety-"))),
  (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
)

const writeConfig = (
  dir: string,
  options: { readonly endpoint: string; readonly state?: string; readonly extra?: string }
) => {
  const path = NodePath.join(dir, "retention.yaml")
  NodeFs.writeFileSync(
    path,
    `cos: { region: ${CosFake.testRegion}, endpoint: "${options.endpoint}" }
state: ${JSON.stringify(options.state ?? "state.db")}
http: { enabled: false }
rules:
  - name: expire
    bucket: ${CosFake.testBucket}
    prefix: logs/
    olderThan: 30d
    schedule: "0 3 1 1 *"
    batchSize: 50
    concurrency: 4
${options.extra ?? ""}`
  )
  return path
}

describe("one writer per state", () => {
  it.live(
    "a second process on a held state (once, run) exits 2 naming the file and the holder's pid, and writes nothing",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const config = writeConfig(dir, { endpoint: "http://127.0.0.1:9" })
        const stateFile = NodePath.join(dir, "state.db")
        // this process holds the state, with a run going
        const held = yield* Layer.build(State.layerFile(stateFile))
        const state = Layer.succeedContext(held)
        yield* Effect.flatMap(State, (s) => s.startRun({ rule: "expire", trigger: "schedule", dryRun: false })).pipe(
          Effect.provide(state)
        )
        // a second process: a real one (the kernel's lock), and the same process again
        const other = child(["once", "--config", config])
        const code = yield* Effect.promise(() => other.exit)
        const text = other.lines.map((l) => l["message"]).join("\n")
        assert.strictEqual(code, 2, text)
        assert.include(text, `state ${stateFile}: in use by another cos-retention process (pid ${process.pid}`)
        for (const command of ["run", "once"]) {
          const again = yield* cosRetention(command, "--config", config, "--log-format", "json")
          assert.strictEqual(again.code, 2, again.stderr)
          assert.include(
            again.stderr,
            `state ${stateFile}: in use by another cos-retention process (pid ${process.pid}`
          )
          assert.notInclude(again.stderr, "    at ")
        }
        // history only reads a held state: it shows the live run as the holder recorded it
        const history = yield* cosRetention("history", "--config", config, "--json", "--log-format", "json")
        assert.strictEqual(history.code, 0, history.stderr)
        assert.deepStrictEqual(JSON.parse(history.stdout).map((r: any) => [r.id, r.status]), [[1, "running"]])
        const runs = yield* Effect.flatMap(State, (s) => s.recentRuns({ limit: 10 })).pipe(Effect.provide(state))
        // the live run was not rewritten to interrupted, and no run started
        assert.deepStrictEqual(runs.map((r) => [r.id, r.status]), [[1, "running"]])
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "a daemon refused by a port clash leaves the state as it was (a dead process's run is not rewritten)",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const stateFile = NodePath.join(dir, "state.db")
        yield* Effect.flatMap(State, (s) => s.startRun({ rule: "expire", trigger: "schedule", dryRun: false })).pipe(
          Effect.provide(State.layerFile(stateFile))
        )
        const before = NodeFs.readFileSync(stateFile)
        const busy = NodeNet.createServer()
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => void busy.listen(0, "127.0.0.1", () => resume(Effect.void))),
          () => Effect.sync(() => busy.close())
        )
        const port = (busy.address() as NodeNet.AddressInfo).port
        const config = writeConfig(dir, { endpoint: "http://127.0.0.1:9" })
        NodeFs.writeFileSync(
          config,
          NodeFs.readFileSync(config, "utf8").replace("http: { enabled: false }", `http: { port: ${port} }`)
        )
        const r = yield* cosRetention("run", "--config", config, "--log-format", "json")
        assert.strictEqual(r.code, 2, r.stderr)
        assert.include(r.stderr, `cannot listen on 127.0.0.1:${port}`)
        const runs = yield* Effect.flatMap(State, (s) => s.recentRuns({ limit: 10 })).pipe(
          Effect.provide(State.layerReadonly(stateFile))
        )
        assert.deepStrictEqual(runs.map((run) => [run.id, run.status]), [[1, "running"]])
        assert.isTrue(NodeFs.readFileSync(stateFile).equals(before), "the state file is byte for byte as it was")
      }).pipe(Effect.scoped),
    20_000
  )

  it.live(
    "a state file deleted or replaced under a running daemon stops it with the reason",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const settings = yield* Config.load(writeConfig(dir, { endpoint: "http://127.0.0.1:9" })).pipe(
          Effect.provide(NodeFileSystem.layer)
        )
        const daemon = yield* Layer.build(
          Daemon.layerWith(settings, Purger.Test({ credentials: [CosFake.testCredentials] }))
        ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(credentialsEnv)))))
        const watching = yield* Effect.fork(Effect.provide(Daemon.watch, daemon))
        yield* Effect.sleep("1200 millis")
        assert.isNull(watching.unsafePoll(), "the daemon keeps going while its state is in place")
        const stateFile = NodePath.join(dir, "state.db")
        NodeFs.renameSync(stateFile, `${stateFile}.moved`)
        NodeFs.copyFileSync(`${stateFile}.moved`, stateFile)
        const exit = yield* Fiber.await(watching).pipe(Effect.timeout("5 seconds"))
        assert.isTrue(Exit.isFailure(exit))
        assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /deleted or replaced/)
        // and no run starts on it any more
        const rule = settings.rules[0]!
        const run = yield* Effect.either(
          Effect.flatMap(Runner, (r) => r.run(rule, { trigger: "once" })).pipe(Effect.provide(daemon))
        )
        assert.isTrue(Either.isLeft(run))
      }).pipe(Effect.scoped),
    20_000
  )
})

describe("the audit stays exact across kills, whichever command comes next", () => {
  it.live(
    "history settles a run left by a dead process and reconciles its pending rows (HEAD)",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        yield* Store.seed(server.fake.store, {
          bucket: CosFake.testBucket,
          count: 3,
          keyFn: (i) => `logs/${"abc"[i]}`,
          ageMs: 40 * day,
          size: 10
        })
        const dir = yield* tempDir
        const config = writeConfig(dir, { endpoint: server.url })
        const stateFile = NodePath.join(dir, "state.db")
        // a process that died: a run still `running`, a confirmed, b sent (COS deleted it), c sent (not deleted)
        yield* Effect.gen(function*() {
          const state = yield* State
          const run = yield* state.startRun({ rule: "expire", trigger: "once", dryRun: false })
          const ctx = { id: run.id, rule: "expire", bucket: CosFake.testBucket }
          yield* state.recordIntent(ctx, [{ key: "logs/a" }, { key: "logs/b" }, { key: "logs/c" }])
          yield* state.confirmDeleted(ctx, [{ key: "logs/a", size: 10, deleteMarkerCreated: false }])
        }).pipe(Effect.provide(State.layerFile(stateFile)))
        yield* Store.deleteObject(server.fake.store, { bucket: CosFake.testBucket, key: "logs/a" })
        yield* Store.deleteObject(server.fake.store, { bucket: CosFake.testBucket, key: "logs/b" })

        const history = yield* cosRetention("history", "--config", config, "--json", "--log-format", "json")
        assert.strictEqual(history.code, 0, history.stderr)
        const shown = JSON.parse(history.stdout)
        assert.deepStrictEqual(shown.map((r: any) => [r.id, r.status, r.deleted]), [[1, "interrupted", 2]])
        const audit = yield* Effect.flatMap(State, (s) => s.audit()).pipe(Effect.provide(State.layerFile(stateFile)))
        assert.deepStrictEqual(audit.map((r) => [r.key, r.state]), [["logs/a", "deleted"], ["logs/b", "deleted"]])
        assert.match(history.stderr, /reconciled the audit of interrupted runs: 1 deleted, 1 not deleted/)
      }).pipe(Effect.scoped),
    20_000
  )

  /**
   * Processes that share one state and one COS, each killed at a random moment: while batches wait for the write
   * budget, while they back off after SlowDown, while a reconcile's HEAD requests fail with 503. A kill is
   * simulated exactly: the process's HTTP client stops reaching COS (a request that got there may still complete,
   * as with a real kill) and the database as it is at that instant (VACUUM INTO) is what the next process opens.
   */
  it.live(
    "kills at random points: sum(deleted over runs) == keys deleted, one audit row per deleted key",
    () =>
      Effect.gen(function*() {
        const keys = 2400
        const fake = yield* CosFake.make({
          credentials: [CosFake.testCredentials],
          faults: {
            seed: 7,
            operations: {
              DeleteObjects: { latencyMs: 15, jitterMs: 20, slowDownRate: 0.25 },
              HeadObject: { latencyMs: 2, internalErrorRate: 0.15 }
            }
          }
        })
        yield* Store.seed(fake.store, {
          bucket: CosFake.testBucket,
          count: keys,
          prefix: "logs/",
          ageMs: 40 * day,
          size: 10
        })
        yield* Store.seed(fake.store, { bucket: CosFake.testBucket, count: 100, prefix: "logs/new/", ageMs: day })
        const dir = yield* tempDir
        const settings = yield* Config.load(
          writeConfig(dir, { endpoint: "http://127.0.0.1:9", extra: "    writeBudget: 2000\n" })
        ).pipe(Effect.provide(NodeFileSystem.layer))
        // two batches of 20 in flight: a kill leaves at most 40 pending rows; a whole run is about 150 requests
        const rule = { ...settings.rules[0]!, concurrency: 2, batchSize: 20 }
        const base = CosFake.httpClient(fake)

        /**
         * One process on `file`: recovers the state and runs the rule. Killed at its `killAt`-th request to COS (counted
         * over list, delete and HEAD requests, so the point does not depend on the machine's speed), either just before
         * that request leaves (`applied: false`) or after COS carried it out but before the answer arrives.
         */
        const processOn = (
          file: string,
          snapshot: string,
          kill: { readonly at: number; readonly applied: boolean } | undefined
        ) =>
          Effect.gen(function*() {
            let killed = false
            let sent = 0
            const dead = yield* Deferred.make<void>()
            const die = Effect.suspend(() => {
              killed = true
              return Deferred.succeed(dead, undefined)
            })
            // after the kill nothing more reaches COS, and no answer reaches the dead process
            const http = HttpClient.make((request) =>
              Effect.suspend(() => {
                if (killed) return Effect.never
                sent++
                if (kill !== undefined && sent === kill.at && !kill.applied) return Effect.zipRight(die, Effect.never)
                return Effect.flatMap(base.execute(request), (res) =>
                  Effect.suspend(() => {
                    if (kill !== undefined && sent >= kill.at) killed = true
                    return killed
                      ? Effect.zipRight(
                        die,
                        Effect.fail(new HttpClientError.RequestError({ request, reason: "Transport" }))
                      )
                      : Effect.succeed(res)
                  }))
              })
            )
            const services = Runner.DefaultWithoutDependencies.pipe(
              Layer.provideMerge(State.DefaultWithoutDependencies),
              Layer.provideMerge(Layer.mergeAll(
                Purger.layerHttp(Layer.succeed(HttpClient.HttpClient, http)),
                Status.Default,
                Config.Settings.layer({ ...settings, state: file }),
                layerSqlite(file)
              ))
            )
            yield* Effect.gen(function*() {
              const runner = yield* Runner
              const sql = yield* SqlClient.SqlClient
              const work = yield* Effect.fork(
                Effect.zipRight(runner.recover, runner.run(rule, { trigger: "once" })).pipe(Effect.either)
              )
              const first = yield* Effect.raceFirst(
                Effect.map(Fiber.join(work), (r) => ({ done: r })),
                Effect.as(Deferred.await(dead), { done: undefined })
              )
              // the database as it is at the instant of the kill (or at the end) is what the next process opens
              yield* sql`VACUUM INTO ${snapshot}`
              if (first.done !== undefined) {
                if (kill === undefined) assert.isTrue(Either.isRight(first.done), JSON.stringify(first.done))
                return
              }
              killed = true
              outcomes.killed++
              yield* Fiber.interruptFork(work)
            }).pipe(Effect.provide(services), Effect.scoped)
          })

        const outcomes = { killed: 0 }
        let file = NodePath.join(dir, "state-0.db")
        for (let i = 1; i <= 12; i++) {
          const next = NodePath.join(dir, `state-${i}.db`)
          const at = yield* Random.nextIntBetween(1, 100)
          const applied = yield* Random.nextBoolean
          yield* processOn(file, next, { at, applied })
          file = next
        }
        yield* processOn(file, NodePath.join(dir, "final.db"), undefined)

        const left = (yield* Store.keys(fake.store, CosFake.testBucket, "logs/")).length
        assert.strictEqual(left, 100, "every old key deleted, every young one kept")
        const check = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const runs = yield* sql<{ deleted: number; status: string }>`SELECT deleted, status FROM runs`
          const rows = yield* sql<{ state: string; n: number; k: number }>`
          SELECT state, count(*) AS n, count(DISTINCT key || char(0) || version_id) AS k FROM audit GROUP BY state`
          return { runs, rows }
        }).pipe(Effect.provide(layerSqlite(NodePath.join(dir, "final.db"))))
        console.log(`kill property: ${outcomes.killed} processes killed, ${check.runs.length} runs`)
        assert.isAtLeast(outcomes.killed, 3, "several processes were killed part-way")
        assert.isAtLeast(check.runs.length, 3, "several runs were started (and most of them killed)")
        assert.strictEqual(check.runs.reduce((n, r) => n + r.deleted, 0), keys, JSON.stringify(check.runs))
        assert.deepStrictEqual(check.rows, [{ state: "deleted", n: keys, k: keys }])
      }).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(credentialsEnv)))),
        Effect.scoped
      ),
    60_000
  )
})

describe("clear failures for state problems", () => {
  it.live(
    "a bad state path is one line naming the path and the cause, exit 2, no stack trace",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        NodeFs.writeFileSync(NodePath.join(dir, "plain"), "a regular file\n")
        NodeFs.writeFileSync(NodePath.join(dir, "notes.db"), "not a database, just text that is long enough\n")
        const cases = [
          ["/proc/x.db", /^state \/proc\/x\.db: .+/],
          [NodePath.join(dir, "plain", "x.db"), /^state .*plain\/x\.db: .*plain is not a directory$/],
          [NodePath.join(dir, "notes.db"), /^state .*notes\.db: the file is not a SQLite database$/],
          [dir, /^state .*: it is a directory, not a SQLite database file$/]
        ] as const
        for (const [state, expected] of cases) {
          const config = writeConfig(dir, { endpoint: "http://127.0.0.1:9", state })
          // (history reports a state that does not exist yet as "no run recorded": /proc/x.db passes its checks)
          for (const command of state === "/proc/x.db" ? ["once", "run"] : ["once", "run", "history"]) {
            const r = yield* cosRetention(command, "--config", config, "--log-format", "json")
            assert.strictEqual(r.code, 2, `${command} ${state}: ${r.stderr}`)
            const lines = r.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("{"))
            assert.strictEqual(lines.length, 1, `${command} ${state}: ${r.stderr}`)
            assert.match(lines[0]!, expected)
          }
          const v = yield* cosRetention("validate", "--config", config)
          if (state !== "/proc/x.db") {
            // (as root, /proc passes access(); only creating the file shows the problem)
            assert.strictEqual(v.code, 2, `validate ${state}: ${v.stdout}`)
            assert.include(v.stderr, `state ${state}: `)
          }
        }
        assert.isFalse(NodeFs.existsSync(NodePath.join(dir, "plain.lock")))
        assert.strictEqual(NodeFs.readFileSync(NodePath.join(dir, "notes.db"), "utf8").slice(0, 7), "not a d")
      }).pipe(Effect.scoped),
    30_000
  )

  it.live.skipIf(process.getuid?.() !== 0 || !NodeFs.existsSync("/usr/sbin/runuser"))(
    "a directory this user cannot write: validate and once say so in one line, exit 2 (run as nobody: root bypasses permissions)",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        NodeFs.chmodSync(dir, 0o755)
        const locked = NodePath.join(dir, "root-only")
        NodeFs.mkdirSync(locked, { mode: 0o755 })
        const state = NodePath.join(locked, "state.db")
        const config = writeConfig(dir, { endpoint: "http://127.0.0.1:9", state })
        NodeFs.chmodSync(config, 0o644)
        const asNobody = (command: string) =>
          Effect.promise(() =>
            new Promise<{ code: number | null; stderr: string }>((resolve) => {
              const p = spawn("/usr/sbin/runuser", [
                "-u",
                "nobody",
                "--",
                process.execPath,
                "--conditions=source",
                "--import",
                "tsx",
                "packages/daemon/src/bin.ts",
                command,
                "--config",
                config
              ], { cwd: repo, env: { ...process.env, ...credentialsEnv, HOME: "/tmp" } })
              let stderr = ""
              p.stderr.on("data", (c: Buffer) => (stderr += c.toString()))
              p.on("exit", (code) => resolve({ code, stderr }))
            })
          )
        const [validate, once] = yield* Effect.all([asNobody("validate"), asNobody("once")], { concurrency: 2 })
        const expected = `state ${state}: cannot create files in ${locked}: permission denied`
        assert.strictEqual(validate.code, 2, validate.stderr)
        assert.include(validate.stderr, expected)
        assert.strictEqual(once.code, 2, once.stderr)
        assert.deepStrictEqual(once.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("{")), [expected])
        assert.deepStrictEqual(NodeFs.readdirSync(locked), [])
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "validate reports every missing credential variable of every enabled rule, and the state location",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const config = writeConfig(dir, {
          endpoint: "http://127.0.0.1:9",
          state: NodePath.join(dir, "plain", "x.db"),
          extra: `    credentials: { secretIdEnv: NO_SUCH_ID_A, secretKeyEnv: NO_SUCH_KEY_A }
  - name: second
    bucket: ${CosFake.testBucket}
    prefix: other/
    olderThan: 30d
    schedule: "0 3 1 1 *"
    credentials: { secretIdEnv: NO_SUCH_ID_B, secretKeyEnv: COS_SECRET_KEY }
  - name: off
    enabled: false
    bucket: ${CosFake.testBucket}
    prefix: off/
    olderThan: 30d
    schedule: "0 3 1 1 *"
    credentials: { secretIdEnv: NO_SUCH_ID_C }
`
        })
        NodeFs.writeFileSync(NodePath.join(dir, "plain"), "a regular file\n")
        const v = yield* cosRetention("validate", "--config", config)
        assert.strictEqual(v.code, 2, v.stdout)
        assert.include(v.stderr, "4 problems")
        assert.include(v.stderr, "rules[0] (expire): credentials: the environment variable NO_SUCH_ID_A is not set")
        assert.include(v.stderr, "rules[0] (expire): credentials: the environment variable NO_SUCH_KEY_A is not set")
        assert.include(v.stderr, "rules[1] (second): credentials: the environment variable NO_SUCH_ID_B is not set")
        assert.notInclude(v.stderr, "NO_SUCH_ID_C")
        assert.match(v.stderr, /state .*plain\/x\.db: .*plain is not a directory/)
        assert.notInclude(v.stderr + v.stdout, Redacted.value(CosFake.testCredentials.secretKey))
      }).pipe(Effect.scoped),
    20_000
  )
})
