import type { Deletion } from "@effect-cos/core"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Config from "../src/Config.js"
import { PurgeError, Purger, type PurgeRequest } from "../src/Purger.js"
import { Runner } from "../src/Runner.js"
import { layerSqlite, State } from "../src/State.js"
import { Status } from "../src/Status.js"

const settings = (() => {
  const result = Config.decode(
    {
      cos: { region: "ap-beijing" },
      state: ":memory:",
      rules: [{
        name: "logs",
        bucket: "examplebucket-1250000000",
        prefix: "logs/",
        olderThan: "1d",
        schedule: "0 3 * * *"
      }]
    },
    { source: "test", baseDir: "/" }
  )
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
})()
const rule = settings.rules[0]!

/**
 * A stand-in for the deletion engine over a set of keys: batches in key order after `startAfter`, with the engine's
 * hooks. With `crashAt`, the batch of that index is half-deleted by "COS" and the purge then hangs, as a process
 * does when it is SIGKILLed mid-request.
 */
const fakePurger = (
  bucket: Set<string>,
  options: { readonly batchSize: number; readonly crashAt?: number; readonly crashed?: Deferred.Deferred<void> }
) =>
  Layer.succeed(
    Purger,
    Purger.make({
      purge: (request: PurgeRequest) =>
        Effect.gen(function*() {
          const hooks = request.hooks ?? {}
          const keys = Array.from(bucket).sort().filter((k) =>
            request.startAfter === undefined || k > request.startAfter
          )
          let deleted = 0
          for (let i = 0, batch = 0; i < keys.length; i += options.batchSize, batch++) {
            const slice = keys.slice(i, i + options.batchSize)
            // as the engine does: onDeleted gets the array onSend was given
            const sent = slice.map((key) => ({ key }))
            yield* hooks.onSend?.(sent) ?? Effect.void
            if (batch === options.crashAt) {
              slice.filter((_, j) => j % 2 === 0).forEach((k) => bucket.delete(k))
              yield* Deferred.succeed(options.crashed!, void 0)
              return yield* Effect.never
            }
            slice.forEach((k) => bucket.delete(k))
            yield* hooks.onDeleted?.(
              slice.map((key): Deletion.Deleted => ({ key, size: 10, deleteMarkerCreated: false })),
              sent
            ) ??
              Effect.void
            deleted += slice.length
            yield* hooks.onCheckpoint?.(slice[slice.length - 1]!) ?? Effect.void
          }
          const summary: Deletion.Summary = {
            dryRun: false,
            bucket: rule.bucket,
            prefix: rule.prefix,
            versions: "current",
            listed: keys.length,
            matched: keys.length,
            matchedBytes: keys.length * 10,
            deleted,
            bytes: deleted * 10,
            failed: 0,
            failures: [],
            skipped: 0,
            sample: keys.slice(0, 3),
            breakdown: { objects: keys.length, versions: 0, deleteMarkers: 0 },
            deleteMarkersCreated: 0,
            requests: 0,
            retries: 0,
            throttled: 0,
            durationMs: 0,
            notes: []
          }
          return summary
        }),
      exists: (_rule, object) => Effect.succeed(bucket.has(object.key)),
      split: () => Effect.succeed([{ after: "", through: undefined }]),
      check: () => Effect.void
    })
  )

const daemonLayer = (dbFile: string, purger: Layer.Layer<Purger>) =>
  Runner.DefaultWithoutDependencies.pipe(
    Layer.provideMerge(State.DefaultWithoutDependencies),
    Layer.provideMerge(Layer.mergeAll(purger, Status.Default, Config.Settings.layer(settings), layerSqlite(dbFile)))
  )

describe("Runner and State", () => {
  it.scoped("a run killed mid-way resumes from its checkpoint, and the audit holds every deleted key once", () =>
    Effect.gen(function*() {
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "cos-retention-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true })))
      const live = NodePath.join(dir, "live.db")
      const afterKill = NodePath.join(dir, "after-kill.db")
      const bucket = new Set(Array.from({ length: 2500 }, (_, i) => `logs/${String(i).padStart(4, "0")}`))

      // first process: killed while its third batch (keys 1000-1499) is in flight
      const crashed = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        const runner = yield* Runner
        const fiber = yield* Effect.fork(runner.run(rule, { trigger: "schedule" }))
        yield* Deferred.await(crashed)
        // the database file as a SIGKILL would leave it, at this very moment
        const sql = yield* SqlClient.SqlClient
        yield* sql`VACUUM INTO ${afterKill}`
        yield* Fiber.interrupt(fiber)
      }).pipe(
        Effect.provide(daemonLayer(live, fakePurger(bucket, { batchSize: 500, crashAt: 2, crashed }))),
        Effect.scoped
      )
      assert.strictEqual(bucket.size, 2500 - 1000 - 250)

      // second process, on the database as the kill left it
      yield* Effect.gen(function*() {
        const state = yield* State
        const runner = yield* Runner
        // what the kill left: the intent of the request in flight (one row, its 500 keys), no per-key pending row;
        // the confirmed requests' intents went with their confirmation
        const sql = yield* SqlClient.SqlClient
        assert.deepStrictEqual(
          yield* sql<{ n: number; keys: number }>`SELECT count(*) AS n, sum(json_array_length(keys)) AS keys
            FROM audit_intents`,
          [{ n: 1, keys: 500 }]
        )
        assert.deepStrictEqual(yield* sql`SELECT id FROM audit WHERE state = 'pending'`, [])
        assert.deepStrictEqual(yield* state.markAbandoned, [1])
        assert.deepStrictEqual(yield* state.getCheckpoint("logs"), { runId: 1, afterKey: "logs/0999" })
        const pendingBefore = yield* state.pendingAudit("logs")
        assert.strictEqual(pendingBefore.length, 500)

        const outcome = yield* runner.run(rule, { trigger: "resume" })
        assert.strictEqual(outcome.run.status, "succeeded")
        assert.strictEqual(outcome.run.resumedFrom, "logs/0999")
        // 250 keys of the killed batch were still there, plus keys 1500-2499
        assert.strictEqual(outcome.run.deleted, 1250)
        assert.strictEqual(bucket.size, 0)

        const audit = yield* state.audit({ rule: "logs" })
        assert.isTrue(audit.every((row) => row.state === "deleted"))
        const keys = audit.map((row) => row.key)
        assert.strictEqual(keys.length, 2500)
        assert.strictEqual(new Set(keys).size, 2500)
        // the killed run owns what it deleted (including the half of its last batch that COS had done)
        assert.strictEqual(audit.filter((row) => row.runId === 1).length, 1250)
        assert.strictEqual(audit.filter((row) => row.runId === 2).length, 1250)
        assert.isUndefined(yield* state.getCheckpoint("logs"))
        const runs = yield* state.recentRuns({ limit: 10 })
        // the killed run counts what the audit proves it deleted: 2 batches, and half of the third
        assert.deepStrictEqual(runs.map((r) => [r.id, r.status, r.deleted]), [[2, "succeeded", 1250], [
          1,
          "interrupted",
          1250
        ]])
      }).pipe(Effect.provide(daemonLayer(afterKill, fakePurger(bucket, { batchSize: 500 }))), Effect.scoped)
    }))

  it.scoped("a state written by the previous version (pending rows per key) is migrated, reconciled exactly, then runs", () =>
    Effect.gen(function*() {
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "cos-retention-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true })))
      const file = NodePath.join(dir, "state.db")
      // the schema and migration records that migrations 0001-0005 leave, and the rows of a run killed with a batch
      // in flight as that version wrote them: two keys confirmed, three pending (intent rows per key)
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        for (
          const statement of [
            `CREATE TABLE cos_retention_migrations (migration_id integer PRIMARY KEY NOT NULL,
              created_at datetime NOT NULL DEFAULT current_timestamp, name VARCHAR(255) NOT NULL)`,
            `INSERT INTO cos_retention_migrations (migration_id, name) VALUES (1, 'init'), (2, 'audit_upload_id'),
              (3, 'scheduled_at'), (4, 'runs_runner'), (5, 'audit_by_time_partial')`,
            `CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL, trigger TEXT NOT NULL,
              dry_run INTEGER NOT NULL DEFAULT 0, started_at INTEGER NOT NULL, ended_at INTEGER,
              status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
              resumed_from TEXT, listed INTEGER NOT NULL DEFAULT 0, matched INTEGER NOT NULL DEFAULT 0,
              deleted INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
              skipped INTEGER NOT NULL DEFAULT 0, throttled INTEGER NOT NULL DEFAULT 0, error TEXT,
              scheduled_at INTEGER, runner TEXT)`,
            `CREATE INDEX runs_by_rule ON runs (rule, started_at)`,
            `CREATE TABLE checkpoints (rule TEXT PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES runs (id),
              after_key TEXT NOT NULL, updated_at INTEGER NOT NULL)`,
            `CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES runs (id),
              rule TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL DEFAULT '',
              size INTEGER, delete_marker INTEGER NOT NULL DEFAULT 0,
              state TEXT NOT NULL CHECK (state IN ('pending', 'deleted')), deleted_at INTEGER, upload_id TEXT,
              UNIQUE (run_id, key, version_id))`,
            `CREATE INDEX audit_pending ON audit (run_id) WHERE state = 'pending'`,
            `CREATE INDEX audit_by_time ON audit (deleted_at) WHERE deleted_at IS NOT NULL`,
            `INSERT INTO runs (rule, trigger, started_at, status) VALUES ('logs', 'schedule', 1, 'running')`,
            `INSERT INTO checkpoints (rule, run_id, after_key, updated_at) VALUES ('logs', 1, 'logs/0001', 2)`,
            `INSERT INTO audit (run_id, rule, bucket, key, size, state, deleted_at) VALUES
              (1, 'logs', '${rule.bucket}', 'logs/0000', 10, 'deleted', 3),
              (1, 'logs', '${rule.bucket}', 'logs/0001', 10, 'deleted', 3)`,
            `INSERT INTO audit (run_id, rule, bucket, key, state) VALUES (1, 'logs', '${rule.bucket}', 'logs/0002',
              'pending'), (1, 'logs', '${rule.bucket}', 'logs/0003', 'pending'),
              (1, 'logs', '${rule.bucket}', 'logs/0004', 'pending')`
          ]
        ) yield* sql.unsafe(statement)
      }).pipe(Effect.provide(layerSqlite(file)), Effect.orDie, Effect.scoped)
      // COS: of the three pending keys only logs/0003 is still there (the killed run deleted the other two)
      const bucket = new Set(["logs/0003", "logs/0005", "logs/0006"])

      yield* Effect.gen(function*() {
        const state = yield* State
        const runner = yield* Runner
        const sql = yield* SqlClient.SqlClient
        const migrations = yield* sql<{ name: string }>`SELECT name FROM cos_retention_migrations ORDER BY 1`
        assert.include(migrations.map((m) => m.name), "audit_intents")
        yield* runner.recover
        const killed = yield* state.getRun(1)
        assert.deepStrictEqual([killed?.status, killed?.deleted], ["interrupted", 4])
        assert.deepStrictEqual(yield* state.pendingAudit(), [])

        const outcome = yield* runner.run(rule, { trigger: "resume" })
        assert.strictEqual(outcome.run.status, "succeeded")
        assert.strictEqual(outcome.run.deleted, 3)
        assert.strictEqual(bucket.size, 0)
        const audit = yield* state.audit()
        assert.deepStrictEqual(audit.map((r) => [r.key, r.runId, r.state]).sort(), [
          ["logs/0000", 1, "deleted"],
          ["logs/0001", 1, "deleted"],
          ["logs/0002", 1, "deleted"],
          ["logs/0003", 2, "deleted"],
          ["logs/0004", 1, "deleted"],
          ["logs/0005", 2, "deleted"],
          ["logs/0006", 2, "deleted"]
        ])
        assert.deepStrictEqual(yield* sql`SELECT id FROM audit_intents`, [])
      }).pipe(Effect.provide(daemonLayer(file, fakePurger(bucket, { batchSize: 2 }))), Effect.scoped)
    }))

  it.scoped("an interrupted run is recorded as interrupted with its checkpoint and counts", () =>
    Effect.gen(function*() {
      const bucket = new Set(Array.from({ length: 1000 }, (_, i) => `logs/${String(i).padStart(4, "0")}`))
      const crashed = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        const runner = yield* Runner
        const state = yield* State
        const fiber = yield* Effect.fork(runner.run(rule, { trigger: "schedule" }))
        yield* Deferred.await(crashed)
        yield* Fiber.interrupt(fiber)
        const run = yield* state.getRun(1)
        assert.strictEqual(run?.status, "interrupted")
        assert.strictEqual(run?.deleted, 200)
        assert.match(run?.error ?? "", /interrupted/)
        assert.deepStrictEqual(yield* state.getCheckpoint("logs"), { runId: 1, afterKey: "logs/0199" })
      }).pipe(
        Effect.provide(daemonLayer(":memory:", fakePurger(bucket, { batchSize: 100, crashAt: 2, crashed }))),
        Effect.scoped
      )
    }))

  it.scoped("a run whose pending audit rows cannot be reconciled is recorded failed, with its fire time, and deletes nothing", () =>
    Effect.gen(function*() {
      const bucket = new Set(["logs/a", "logs/b"])
      const unreachable = Layer.map(fakePurger(bucket, { batchSize: 100 }), (context) => {
        const purger = Context.get(context, Purger)
        return Context.make(
          Purger,
          Purger.make({
            ...purger,
            exists: () => Effect.fail(new PurgeError({ rule: rule.name, message: "cannot connect to COS" }))
          })
        )
      })
      yield* Effect.gen(function*() {
        const state = yield* State
        const runner = yield* Runner
        // a run killed with a delete in flight: its intent row is pending
        const killed = yield* state.startRun({ rule: "logs", trigger: "schedule", dryRun: false, scheduledAt: 1_000 })
        yield* state.recordIntent({ id: killed.id, rule: "logs", bucket: rule.bucket }, [{ key: "logs/a" }])
        assert.deepStrictEqual(yield* state.markAbandoned, [killed.id])

        // (the reconcile's HEAD requests are retried with backoff, on the test clock)
        const fiber = yield* Effect.fork(Effect.either(runner.run(rule, { trigger: "schedule", scheduledAt: 2_000 })))
        yield* TestClock.adjust("1 minute")
        const result = yield* Fiber.join(fiber)
        assert.isTrue(Either.isLeft(result))
        // the fire time has its own run, failed, saying why; nothing was deleted
        const runs = yield* state.recentRuns({ limit: 10 })
        assert.deepStrictEqual(runs.map((r) => [r.id, r.status, r.scheduledAt, r.deleted]), [
          [killed.id + 1, "failed", 2_000, 0],
          [killed.id, "interrupted", 1_000, 0]
        ])
        assert.match(
          runs[0]!.error ?? "",
          /pending audit rows of an interrupted run could not be reconciled \(cannot connect to COS\)/
        )
        assert.strictEqual(bucket.size, 2)
        assert.strictEqual((yield* state.pendingAudit("logs")).length, 1)
      }).pipe(Effect.provide(daemonLayer(":memory:", unreachable)), Effect.scoped)
    }))

  it.scoped("audit rows older than the retention period are pruned", () =>
    Effect.gen(function*() {
      const state = yield* State
      const run = yield* state.startRun({ rule: "logs", trigger: "once", dryRun: false })
      const ctx = { id: run.id, rule: "logs", bucket: rule.bucket }
      yield* state.recordIntent(ctx, [{ key: "a" }, { key: "b", versionId: "v1" }])
      // recording twice is harmless: one row per run, key and version
      yield* state.recordIntent(ctx, [{ key: "a" }])
      yield* state.confirmDeleted(ctx, [{ key: "a", size: 5, deleteMarkerCreated: false }])
      yield* state.confirmDeleted(ctx, [{ key: "a", size: 5, deleteMarkerCreated: false }])
      const rows = yield* state.audit({ runId: run.id })
      assert.deepStrictEqual(rows.map((r) => [r.key, r.versionId, r.state, r.size]), [
        ["a", "", "deleted", 5],
        ["b", "v1", "pending", null]
      ])
      yield* TestClock.adjust("2 hours")
      assert.strictEqual(yield* state.pruneAudit(3 * 3_600_000), 0)
      // intents are never pruned, they wait for their run's end or the reconcile, and so do their run's rows
      // (pruning "a" here would make the intent's "a" pending again)
      assert.strictEqual(yield* state.pruneAudit(3_600_000), 0)
      assert.deepStrictEqual((yield* state.audit({ runId: run.id })).map((r) => [r.key, r.state]), [
        ["a", "deleted"],
        ["b", "pending"]
      ])
      // the process died: the reconcile settles "b" (still in COS: not deleted); then "a" is pruned
      yield* state.markAbandoned
      const pending = yield* state.pendingAudit("logs")
      assert.deepStrictEqual(pending.map((r) => [r.key, r.versionId]), [["b", "v1"]])
      yield* state.settlePending([], pending.map((r) => r.id))
      assert.strictEqual(yield* state.pruneAudit(3_600_000), 1)
      assert.deepStrictEqual(yield* state.audit({ runId: run.id }), [])
    }).pipe(Effect.provide(State.Test)))
})
