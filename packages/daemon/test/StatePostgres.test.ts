import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Config from "../src/Config.js"
import { layerSql, State } from "../src/State.js"
import * as StateStore from "../src/StateStore.js"
import { writeConfig } from "./support/config.js"
import { cosRetentionJsonLogs } from "./support/inProcess.js"
import { PgServer } from "./support/postgres.js"
import { seedKeys } from "./support/seed.js"

const day = 86_400_000

/** Keys a selector must survive: spaces at the ends, astral characters, combining marks, line breaks, XML specials. */
const awkwardKeys = [
  " logs/ leading and trailing ",
  "logs/𝌆 astral 😀",
  "logs/e\u0301 combining",
  "logs/line\nbreak\r\n",
  "logs/<xml> & \"quotes\" 'apos'",
  "logs/plain"
] as const

let databases = 0
/** A fresh database on the test server, as a `state:` store. */
const freshStore = Effect.gen(function*() {
  const pg = yield* PgServer
  const url = yield* pg.createDatabase(`state_${++databases}`)
  return Either.getOrThrow(StateStore.fromSetting(url, "/"))
})

/** `cos-retention <args>` in process, with JSON log lines. */
const cosRetention = cosRetentionJsonLogs

/** A configuration of one daily rule with `state` as its state setting. */
const decodeWithState = (state: string) =>
  Config.decode({
    state,
    rules: [{
      name: "r",
      bucket: "b-1250000000",
      region: "ap-beijing",
      prefix: "x/",
      olderThan: "1d",
      schedule: "@daily"
    }]
  }, { source: "test", baseDir: "/" })

describe("the state setting", () => {
  it("accepts a postgres:// URL, keeps it Redacted and shows it without its password", () => {
    const store = Either.getOrThrow(StateStore.fromSetting("postgres://cos:s3cret@db.internal:6432/retention", "/"))
    assert.strictEqual(store._tag, "postgres")
    assert.strictEqual(StateStore.display(store), "postgres://cos@db.internal:6432/retention")
    assert.notInclude(String(store), "s3cret")
    assert.notInclude(JSON.stringify(store), "s3cret")
    const sqlite = Either.getOrThrow(StateStore.fromSetting("state/cos.db", "/var/lib"))
    assert.deepStrictEqual(sqlite, { _tag: "sqlite", filename: "/var/lib/state/cos.db" })
  })

  it("refuses a Postgres URL without a host or database, naming the field and not the secret", () => {
    const result = decodeWithState("postgres://cos:s3cret@db.internal")
    assert.isTrue(Either.isLeft(result))
    const message = Either.isLeft(result) ? result.left.message : ""
    assert.include(message, "state: a Postgres URL needs a host and a database")
    assert.notInclude(message, "s3cret")
  })
})

layer(PgServer.Default, { timeout: 60_000 })("state on Postgres", (it) => {
  // the same semantics on both stores: every check below runs on SQLite and on Postgres
  for (const backend of ["sqlite", "postgres"] as const) {
    const stateLayer = backend === "sqlite"
      ? Effect.succeed(State.Test)
      : Effect.map(freshStore, (store) => State.layerStore(store))
    it.scoped(`${backend}: runs, intent before send and confirmed after, checkpoints, abandoned runs, retention`, () =>
      Effect.gen(function*() {
        const layer = yield* stateLayer
        yield* Effect.gen(function*() {
          const state = yield* State
          const run = yield* state.startRun({ rule: "logs", trigger: "schedule", dryRun: false })
          assert.strictEqual(run.status, "running")
          assert.strictEqual(typeof run.id, "number")
          const ctx = { id: run.id, rule: "logs", bucket: "b-1250000000" }
          yield* state.recordIntent(ctx, awkwardKeys.map((key, i) => ({ key, versionId: i === 1 ? "v1" : undefined })))
          // recording again is harmless: one row per run, key and version
          yield* state.recordIntent(ctx, [{ key: awkwardKeys[0]! }])
          yield* state.confirmDeleted(ctx, [
            { key: awkwardKeys[0]!, size: 5_000_000_000, deleteMarkerCreated: false },
            { key: awkwardKeys[1]!, versionId: "v1", size: 7, deleteMarkerCreated: false },
            { key: awkwardKeys[2]!, deleteMarkerCreated: true }
          ])
          // confirming twice changes nothing
          yield* state.confirmDeleted(ctx, [{ key: awkwardKeys[0]!, size: 5_000_000_000, deleteMarkerCreated: false }])
          yield* state.saveCheckpoint("logs", run.id, awkwardKeys[2]!)
          yield* state.saveCheckpoint("logs", run.id, awkwardKeys[3]!)
          assert.deepStrictEqual(yield* state.getCheckpoint("logs"), { runId: run.id, afterKey: awkwardKeys[3]! })

          const rows = yield* state.audit({ runId: run.id })
          assert.deepStrictEqual(rows.map((r) => [r.key, r.versionId, r.state, r.size, r.deleteMarker]), [
            [awkwardKeys[0], "", "deleted", 5_000_000_000, false],
            [awkwardKeys[1], "v1", "deleted", 7, false],
            [awkwardKeys[2], "", "deleted", null, true],
            [awkwardKeys[3], "", "pending", null, false],
            [awkwardKeys[4], "", "pending", null, false],
            [awkwardKeys[5], "", "pending", null, false]
          ])
          // a run still going owns its pending rows
          assert.deepStrictEqual(yield* state.pendingAudit("logs"), [])

          // the process died: the run is recorded as interrupted with what the audit proves it deleted
          yield* TestClock.adjust("1 hour")
          assert.deepStrictEqual(yield* state.markAbandoned, [run.id])
          const abandoned = yield* state.getRun(run.id)
          assert.strictEqual(abandoned?.status, "interrupted")
          assert.strictEqual(abandoned?.deleted, 3)
          assert.strictEqual(abandoned?.bytes, 5_000_000_007)
          assert.strictEqual(abandoned?.endedAt, run.startedAt + 3_600_000)

          // reconciliation: one pending key is gone from COS, the others are still there
          const pending = yield* state.pendingAudit("logs")
          assert.deepStrictEqual(pending.map((r) => r.key), awkwardKeys.slice(3))
          yield* state.settlePending([pending[0]!.id], pending.slice(1).map((r) => r.id))
          assert.strictEqual((yield* state.getRun(run.id))?.deleted, 4)
          assert.deepStrictEqual(yield* state.pendingAudit(), [])

          const second = yield* state.startRun({ rule: "logs", trigger: "resume", dryRun: true, resumedFrom: "x" })
          yield* state.finishRun(second.id, "succeeded", {
            listed: 10,
            matched: 4,
            deleted: 0,
            bytes: 0,
            failed: 0,
            skipped: 0,
            throttled: 0
          })
          const recent = yield* state.recentRuns({ limit: 10 })
          assert.deepStrictEqual(recent.map((r) => [r.id, r.trigger, r.status, r.dryRun, r.resumedFrom]), [
            [second.id, "resume", "succeeded", true, "x"],
            [run.id, "schedule", "interrupted", false, null]
          ])
          assert.strictEqual((yield* state.lastSuccess("logs"))?.id, second.id)
          assert.strictEqual((yield* state.lastRun("logs"))?.id, second.id)
          yield* state.clearCheckpoint("logs")
          assert.isUndefined(yield* state.getCheckpoint("logs"))

          // audit retention: deleted rows older than the period go
          yield* TestClock.adjust("2 hours")
          assert.strictEqual(yield* state.pruneAudit(4 * 3_600_000), 0)
          assert.strictEqual(yield* state.pruneAudit(90 * 60_000), 4)
          assert.deepStrictEqual(yield* state.audit({ rule: "logs" }), [])
        }).pipe(Effect.provide(layer))
      }))

    it.scoped(`${backend}: batches of any size (1537 keys, retried halves): one row per key, exact sizes and states`, () =>
      Effect.gen(function*() {
        const layer = yield* stateLayer
        yield* Effect.gen(function*() {
          const state = yield* State
          const run = yield* state.startRun({ rule: "big", trigger: "once", dryRun: false })
          const ctx = { id: run.id, rule: "big", bucket: "b-1250000000" }
          const keys = Array.from({ length: 1537 }, (_, i) => `${awkwardKeys[i % awkwardKeys.length]}/${i}`)
          yield* state.recordIntent(ctx, keys.map((key, i) => ({ key, versionId: i % 3 === 0 ? `v${i}` : undefined })))
          // a retry sends the second half again: its intent rows are not duplicated
          yield* state.recordIntent(
            ctx,
            keys.slice(700).map((key, i) => ({ key, versionId: (i + 700) % 3 === 0 ? `v${i + 700}` : undefined }))
          )
          const confirmed = keys.slice(0, 1501).map((key, i) => ({
            key,
            versionId: i % 3 === 0 ? `v${i}` : undefined,
            size: i % 5 === 0 ? undefined : i,
            deleteMarkerCreated: false
          }))
          yield* state.confirmDeleted(ctx, confirmed.slice(0, 999))
          yield* state.confirmDeleted(ctx, confirmed.slice(999))
          const rows = yield* state.audit({ runId: run.id })
          assert.strictEqual(rows.length, keys.length)
          assert.deepStrictEqual(
            rows.map((r) => [r.key, r.versionId, r.state, r.size]),
            keys.map((key, i) => [
              key,
              i % 3 === 0 ? `v${i}` : "",
              i < 1501 ? "deleted" : "pending",
              i < 1501 && i % 5 !== 0 ? i : null
            ])
          )
          assert.isTrue(rows.every((r) => (r.state === "deleted") === (r.deletedAt !== null)))
          // every outcome known: the keys never confirmed were not deleted
          yield* state.dropPending(run.id)
          assert.strictEqual((yield* state.audit({ runId: run.id })).length, 1501)
        }).pipe(Effect.provide(layer))
      }))

    it.scoped(`${backend}: a run killed with requests in flight: its intents reconciled, every key once, none claimed wrongly`, () =>
      Effect.gen(function*() {
        const layer = yield* stateLayer
        yield* Effect.gen(function*() {
          const state = yield* State
          const run = yield* state.startRun({ rule: "logs", trigger: "once", dryRun: false })
          const ctx = { id: run.id, rule: "logs", bucket: "b-1250000000" }
          const confirm = (objects: ReadonlyArray<{ readonly key: string; readonly versionId?: string }>) =>
            objects.map((o) => ({ ...o, size: 3, deleteMarkerCreated: false }))
          // request A: confirmed whole (its intent goes with the confirmation)
          const a = [{ key: awkwardKeys[0] }, { key: awkwardKeys[1], versionId: "v1" }]
          yield* state.recordIntent(ctx, a)
          yield* state.confirmDeleted(ctx, confirm(a), a)
          // request B: one key confirmed, the other answered with a retryable error and sent again (B2)
          const b = [{ key: awkwardKeys[2] }, { key: awkwardKeys[3] }]
          yield* state.recordIntent(ctx, b)
          yield* state.confirmDeleted(ctx, confirm(b.slice(0, 1)), b)
          const b2 = [{ key: awkwardKeys[3] }]
          yield* state.recordIntent(ctx, b2)
          // request C: in flight when the process dies
          const c = [{ key: awkwardKeys[4] }, { key: awkwardKeys[5] }, { key: "logs/later-run" }]
          yield* state.recordIntent(ctx, c)
          // meanwhile another rule's run lists and deletes "logs/later-run" (after C's intent): that key is its
          const other = yield* state.startRun({ rule: "other", trigger: "once", dryRun: false })
          const otherCtx = { id: other.id, rule: "other", bucket: "b-1250000000" }
          const later = [{ key: "logs/later-run" }]
          yield* state.recordIntent(otherCtx, later)
          yield* state.confirmDeleted(otherCtx, confirm(later), later)

          // while the run goes on, the audit shows its unconfirmed keys as pending, once each, in the order sent
          const live = yield* state.audit({ runId: run.id })
          assert.deepStrictEqual(live.map((r) => [r.key, r.versionId, r.state]), [
            [awkwardKeys[0], "", "deleted"],
            [awkwardKeys[1], "v1", "deleted"],
            [awkwardKeys[2], "", "deleted"],
            [awkwardKeys[3], "", "pending"],
            [awkwardKeys[4], "", "pending"],
            [awkwardKeys[5], "", "pending"],
            ["logs/later-run", "", "pending"]
          ])
          assert.deepStrictEqual(yield* state.pendingCounts, new Map([["logs", 4]]))
          // a run still going owns its intents
          assert.deepStrictEqual(yield* state.pendingAudit("logs"), [])

          // the process died: the next one records the run interrupted and reconciles its intents
          assert.deepStrictEqual(yield* state.markAbandoned, [run.id, other.id])
          assert.deepStrictEqual(yield* state.pendingByRule, [{ rule: "logs", n: 4 }])
          // "logs/later-run" belongs to the later run: dropped without asking COS
          assert.strictEqual(yield* state.dropSuperseded("logs"), 1)
          const pending = yield* state.pendingAudit("logs")
          assert.deepStrictEqual(pending.map((r) => [r.key, r.runId]), [
            [awkwardKeys[3], run.id],
            [awkwardKeys[4], run.id],
            [awkwardKeys[5], run.id]
          ])
          // COS: awkwardKeys[3] and [5] are gone (this run deleted them), [4] is still there
          yield* state.settlePending([pending[0]!.id, pending[2]!.id], [pending[1]!.id])
          assert.deepStrictEqual(yield* state.pendingAudit(), [])
          assert.deepStrictEqual(yield* state.pendingCounts, new Map())

          const rows = yield* state.audit()
          assert.isTrue(rows.every((r) => r.state === "deleted"))
          // every deleted key exactly once, credited to the run that deleted it; [4] (not deleted) claimed by none
          assert.deepStrictEqual(
            rows.map((r) => [r.key, r.runId]).sort(),
            [
              [awkwardKeys[0], run.id],
              [awkwardKeys[1], run.id],
              [awkwardKeys[2], run.id],
              [awkwardKeys[3], run.id],
              [awkwardKeys[5], run.id],
              ["logs/later-run", other.id]
            ].sort()
          )
          assert.strictEqual((yield* state.getRun(run.id))?.deleted, 5)
          assert.strictEqual((yield* state.getRun(run.id))?.bytes, 9)
          // reconciling again finds nothing
          assert.strictEqual(yield* state.dropSuperseded("logs"), 0)
          assert.deepStrictEqual(yield* state.pendingByRule, [])
        }).pipe(Effect.provide(layer))
      }))
  }

  it.scoped("migrating twice (a restart, or replicas starting together) keeps the data", () =>
    Effect.gen(function*() {
      const store = yield* freshStore
      const first = yield* Effect.flatMap(State, (s) => s.startRun({ rule: "r", trigger: "once", dryRun: false })).pipe(
        Effect.provide(State.layerStore(store))
      )
      const again = yield* Effect.all([
        Effect.flatMap(State, (s) => s.getRun(first.id)).pipe(Effect.provide(State.layerStore(store))),
        Effect.flatMap(State, (s) => s.getRun(first.id)).pipe(Effect.provide(State.layerStore(store)))
      ], { concurrency: 2 })
      assert.deepStrictEqual(again.map((r) => r?.rule), ["r", "r"])
    }))

  it.scoped("a second writer is refused while one holds the state; a reader is not", () =>
    Effect.gen(function*() {
      const pg = yield* PgServer
      const url = yield* pg.createDatabase("locked")
      const settings = Either.getOrThrow(decodeWithState(url))
      const writer = State.Default.pipe(Layer.provide(Config.Settings.layer(settings)))
      yield* Layer.build(writer)
      const second = yield* Effect.flip(Layer.build(Layer.fresh(writer)).pipe(Effect.scoped))
      // the same error as for a SQLite state held by another process: tagged, with the holder's pid
      assert.strictEqual(second._tag, "StateError")
      assert.strictEqual(second.path, settings.store._tag === "postgres" ? settings.store.display : "")
      assert.strictEqual(second.holder, process.pid)
      assert.strictEqual(
        second.line,
        `state ${second.path}: in use by another cos-retention process (pid ${process.pid} on ${NodeOs.hostname()}, ` +
          `a daemon, a cluster replica or a once run holding the writer lock in Postgres): only one process may use ` +
          `a state database at a time, or the replicas of one cluster`
      )
      // at the command line: one line naming the state and the holder, exit 2 (as for SQLite), nothing run
      const { path: config } = yield* writeConfig("pg-held", () =>
        `cos: { region: ap-beijing, endpoint: "http://127.0.0.1:1" }
state: ${url}
http: { enabled: false }
rules:
  - { name: r, bucket: b-1250000000, prefix: x/, olderThan: 1d, schedule: "0 0 1 1 *" }
`)
      for (const args of [["once"], ["run", "--runner-address", "127.0.0.1:1"]]) {
        const refused = yield* cosRetention(args[0]!, "--config", config, ...args.slice(1))
        assert.strictEqual(refused.code, 2, `${args[0]}: ${refused.stderr}`)
        assert.include(
          refused.stderr,
          `state ${second.path}: in use by another cos-retention process (pid ${process.pid}`
        )
        assert.notMatch(refused.stderr, /\n\s+at /, "no stack trace")
        // (besides the JSON log lines)
        const said = refused.stderr.split("\n").filter((l) =>
          l !== "" && !l.startsWith("{")
        )
        assert.strictEqual(said.length, 1, refused.stderr)
      }
      assert.strictEqual((yield* pg.psql("SELECT count(*) FROM runs", "locked")).trim(), "0")
      const reader = yield* Effect.flatMap(State, (s) => s.recentRuns({ limit: 1 })).pipe(
        Effect.provide(State.layerStore(settings.store))
      )
      assert.deepStrictEqual(reader, [])
    }))

  it.scoped("validate, plan, once and history work on a Postgres state, and no password is shown", () =>
    Effect.gen(function*() {
      const pg = yield* PgServer
      yield* pg.createDatabase("cli")
      const server = yield* CosFakeServer.start({})
      yield* seedKeys(server, "logs/", 50, (i) => (i < 30 ? 40 : 1) * day, 1000)
      // trust authentication accepts any password: this one is only here to be kept out of every output
      const password = "pw-never-shown-9f2c"
      const { path: config } = yield* writeConfig(
        "pg",
        () =>
          `cos: { region: ${CosFake.testRegion}, endpoint: ${server.url} }
state: postgres://postgres:${password}@127.0.0.1:${pg.port}/cli
rules:
  - name: expire-logs
    bucket: ${CosFake.testBucket}
    prefix: logs/
    olderThan: 30d
    schedule: "0 3 * * *"
`
      )
      const validate = yield* cosRetention("validate", "--config", config)
      assert.strictEqual(validate.code, 0, validate.stderr)
      assert.include(validate.stdout, `state postgres://postgres@127.0.0.1:${pg.port}/cli`)
      assert.include(validate.stderr, "state: a password is written in the config file; prefer PGPASSWORD")

      const plan = yield* cosRetention("plan", "--config", config, "--json")
      assert.strictEqual(plan.code, 0, plan.stderr)
      assert.deepStrictEqual(JSON.parse(plan.stdout).map((r: any) => [r.rule, r.matched]), [["expire-logs", 30]])

      const history0 = yield* cosRetention("history", "--config", config, "--json")
      assert.strictEqual(history0.code, 0, history0.stderr)

      const once = yield* cosRetention("once", "--config", config)
      assert.strictEqual(once.code, 0, once.stderr)
      assert.match(once.stdout, /expire-logs\s+succeeded\s+30\s+30/)
      assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length, 20)

      const history = yield* cosRetention("history", "--config", config, "--json")
      assert.strictEqual(history.code, 0, history.stderr)
      assert.deepStrictEqual(JSON.parse(history.stdout).map((r: any) => [r.rule, r.status, r.deleted]), [
        ["expire-logs", "succeeded", 30]
      ])
      const audit = (yield* pg.psql("SELECT count(*) FROM audit WHERE state = 'deleted'", "cli")).trim()
      assert.strictEqual(audit, "30")
      for (const output of [validate, plan, history0, once, history]) {
        assert.notInclude(output.stdout + output.stderr, password)
      }
    }).pipe(
      Effect.withConfigProvider(ConfigProvider.fromMap(
        new Map([
          ["COS_SECRET_ID", CosFake.testCredentials.secretId],
          ["COS_SECRET_KEY", Redacted.value(CosFake.testCredentials.secretKey)]
        ])
      ))
    ))

  it.scoped("run with a Postgres state needs a runner address; a malformed one, or one with SQLite, is refused", () =>
    Effect.gen(function*() {
      const pg = yield* PgServer
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "cos-retention-pg-run-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true })))
      const write = (file: string, state: string) => {
        NodeFs.writeFileSync(
          NodePath.join(dir, file),
          `cos: { region: ap-beijing }
state: ${state}
http: { enabled: false }
rules:
  - { name: r, bucket: b-1250000000, prefix: x/, olderThan: 1d, schedule: "@daily" }
`
        )
        return NodePath.join(dir, file)
      }
      const onPostgres = write("pg.yaml", pg.url("postgres"))
      const missing = yield* cosRetention("run", "--config", onPostgres)
      assert.strictEqual(missing.code, 2)
      assert.include(missing.stderr, "needs this replica's address: --runner-address HOST:PORT")
      for (const bad of ["localhost", "10.0.0.1:0", "10.0.0.1:99999", "a b:80"]) {
        const malformed = yield* cosRetention("run", "--config", onPostgres, "--runner-address", bad)
        assert.strictEqual(malformed.code, 2, bad)
        assert.include(malformed.stderr, "is not HOST:PORT", bad)
      }
      const onSqlite = write("sqlite.yaml", "state.db")
      const refused = yield* cosRetention("run", "--config", onSqlite, "--runner-address", "127.0.0.1:4000")
      assert.strictEqual(refused.code, 2)
      assert.include(refused.stderr, "--runner-address is for cluster mode, which needs a Postgres state")
    }))

  it.scoped("the pg driver's queued-query deprecation notice is not printed; other warnings are", () =>
    Effect.gen(function*() {
      const store = yield* freshStore
      yield* Layer.build(layerSql(store))
      const seen: Array<string> = []
      const onWarning = (w: Error) => void seen.push(w.message)
      process.on("warning", onWarning)
      yield* Effect.addFinalizer(() => Effect.sync(() => process.off("warning", onWarning)))
      // what pg 8 emits (through util.deprecate) when the cluster engine queues a statement on its lock session
      process.emitWarning(
        "Calling client.query() when the client is already executing a query is deprecated and will be removed in " +
          "pg@9.0. Use async/await or an external async flow control mechanism instead.",
        "DeprecationWarning"
      )
      process.emitWarning("some other deprecation", "DeprecationWarning")
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      assert.deepStrictEqual(seen, ["some other deprecation"])
    }))

  it.scoped("the Postgres client is told nothing but the URL: a wrong port fails to connect, naming no secret", () =>
    Effect.gen(function*() {
      const store = Either.getOrThrow(StateStore.fromSetting("postgres://postgres:pw-xyz@127.0.0.1:1/none", "/"))
      const exit = yield* Effect.exit(Layer.build(layerSql(store)))
      assert.isTrue(Exit.isFailure(exit))
      assert.notInclude(String(Exit.isFailure(exit) ? exit.cause : ""), "pw-xyz")
    }))
})
