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
            yield* hooks.onSend?.(slice.map((key) => ({ key }))) ?? Effect.void
            if (batch === options.crashAt) {
              slice.filter((_, j) => j % 2 === 0).forEach((k) => bucket.delete(k))
              yield* Deferred.succeed(options.crashed!, void 0)
              return yield* Effect.never
            }
            slice.forEach((k) => bucket.delete(k))
            yield* hooks.onDeleted?.(
              slice.map((key): Deletion.Deleted => ({ key, size: 10, deleteMarkerCreated: false }))
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
      assert.strictEqual(yield* state.pruneAudit(3_600_000), 1)
      // intent rows are never pruned: they wait for reconciliation
      assert.deepStrictEqual((yield* state.audit({ runId: run.id })).map((r) => r.key), ["b"])
    }).pipe(Effect.provide(State.Test)))
})
