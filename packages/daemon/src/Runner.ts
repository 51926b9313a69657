/**
 * One run of one rule: resume from the rule's checkpoint, reconcile what an earlier killed run left pending in the
 * audit, run the deletion engine with hooks that write intent, confirmations and checkpoints to State, record the
 * outcome (succeeded, failed, interrupted) and update the metrics.
 */
import type { Deletion } from "@effect-cos/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import { type Rule, Settings } from "./Config.js"
import * as Metrics from "./Metrics.js"
import { PurgeError, Purger } from "./Purger.js"
import { emptyCounts, type RunCounts, type RunRecord, State, type Trigger } from "./State.js"
import { Status } from "./Status.js"
import * as Tracing from "./Tracing.js"

export interface RunOptions {
  readonly trigger: Trigger
  /** Plan only, whatever the rule says. */
  readonly dryRun?: boolean | undefined
  /** Keys kept in the summary's sample. */
  readonly sampleSize?: number | undefined
  /** The fire time this run is for (cluster mode records it). */
  readonly scheduledAt?: number | undefined
  /** The replica's runner address (cluster mode records it). */
  readonly runner?: string | undefined
}

export interface RunOutcome {
  readonly run: RunRecord
  /** Absent when the run failed before the engine summarised it. */
  readonly summary?: Deletion.Summary | undefined
}

const countsOf = (s: Deletion.Summary): RunCounts => ({
  listed: s.listed,
  matched: s.matched,
  deleted: s.deleted,
  bytes: s.bytes,
  failed: s.failed,
  skipped: s.skipped,
  throttled: s.throttled
})

const failureText = (s: Deletion.Summary) => {
  const first = s.failures[0]
  return `${s.failed} key${s.failed === 1 ? "" : "s"} could not be deleted` +
    (first === undefined ? "" : ` (first: ${first.key}: ${first.code} ${first.message})`)
}

/**
 * A run that a cap of the rule (`maxDeletes`, `maxDeleteSize`) stopped: what it left, in a sentence (recorded as the
 * run's `error`, logged, and shown by `once`, which exits 3 then); `undefined` when no cap stopped it.
 */
export const capText = (rule: Rule, s: Deletion.Summary): string | undefined => {
  if (s.stoppedBy !== "maxDeletes" && s.stoppedBy !== "maxDeleteSize") return undefined
  const cap = s.stoppedBy === "maxDeletes"
    ? `maxDeletes: ${rule.maxDeletes}`
    : `maxDeleteSize: ${rule.maxDeleteSize} bytes`
  const left = s.left === undefined ? "" : `: ${s.left.keys} matched key${s.left.keys === 1 ? "" : "s"} ` +
    `(${s.left.bytes} bytes) left in place`
  return `stopped by the rule's cap (${cap}) after deleting ${s.deleted} key${s.deleted === 1 ? "" : "s"}${left}`
}

/** HEAD requests of a reconcile are retried through transient failures (503, resets) before the reconcile gives up. */
const reconcileRetry = Schedule.exponential("200 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(5))
)

/**
 * HEAD requests of a reconcile in flight at once. A takeover waits for the reconcile of the dead run's in-flight
 * batches (up to concurrency x batchSize keys, 8,000 by default) before the run resumes: at 16 at once that alone took
 * 8-26 s of the takeover in bench/cluster.ts; HEADs are reads, far under a bucket's request limits.
 */
const reconcileConcurrency = 64

/** Pending rows settled per transaction: a kill during a long reconcile loses at most this many HEAD answers. */
const reconcileChunk = 500

/** A pending audit row as the reconcile needs it: its id and the object it names (`versionId` "" for none). */
export interface PendingObject {
  readonly id: number
  readonly bucket: string
  readonly key: string
  readonly versionId: string
}

/**
 * Asks COS about pending audit rows, one HEAD each ({@link reconcileConcurrency} at once, each retried through
 * transient failures): the ids of the rows whose object is gone (deleted by the run that wrote the row) and of those
 * still there (not deleted). The one way both the daemon's reconcile and a split run's chunk settle such rows. With
 * tracing off it builds no spans (a HEAD costs about 18% less CPU without them: bench/results/head-cost.md).
 */
export const askCos = (
  purger: Purger,
  rule: Rule,
  rows: ReadonlyArray<PendingObject>,
  exporting: boolean
): Effect.Effect<{ readonly gone: Array<number>; readonly present: Array<number> }, PurgeError> =>
  Effect.suspend(() => {
    const gone: Array<number> = []
    const present: Array<number> = []
    const ask = Effect.forEach(
      rows,
      (row) =>
        purger.exists(rule, { bucket: row.bucket, key: row.key, versionId: row.versionId || undefined }).pipe(
          Effect.retry(reconcileRetry),
          Effect.map((exists) => {
            ;(exists ? present : gone).push(row.id)
          })
        ),
      { concurrency: reconcileConcurrency, discard: true }
    )
    return Effect.as(exporting ? ask : Effect.withTracerEnabled(ask, false), { gone, present })
  })

const make = Effect.gen(function*() {
  const state = yield* State
  const purger = yield* Purger
  const status = yield* Status
  const settings = yield* Settings
  // tracing off: the run, its engine, client and state statements build no spans (noop spans instead)
  const exporting = yield* Tracing.Exporting

  /**
   * Pending audit rows of ended runs of this rule (intent recorded just before a request was sent, outcome unknown
   * because the process died or the run was cut off): a row that a later run's row names too is that later run's
   * (dropped here); otherwise COS is asked (HEAD): a key that is gone was deleted by that run, a key still there was
   * not. Settled in chunks, each in one transaction, so a kill during a long reconcile keeps what was settled.
   * Returns how many rows were confirmed deleted.
   */
  const reconcile = (rule: Rule) =>
    Effect.gen(function*() {
      const superseded = yield* state.dropSuperseded(rule.name)
      const pending = yield* state.pendingAudit(rule.name)
      if (pending.length === 0 && superseded === 0) return 0
      const started = yield* Clock.currentTimeMillis
      yield* Effect.logInfo(`reconciling ${pending.length} pending audit rows left by interrupted runs`).pipe(
        Effect.annotateLogs({ pending: pending.length, superseded })
      )
      let confirmed = 0
      let notDeleted = 0
      for (let i = 0; i < pending.length; i += reconcileChunk) {
        const chunk = pending.slice(i, i + reconcileChunk)
        const { gone, present } = yield* askCos(purger, rule, chunk, exporting)
        yield* state.settlePending(gone, present)
        confirmed += gone.length
        notDeleted += present.length
        if (i + reconcileChunk < pending.length) {
          yield* Effect.logInfo(`reconciled ${i + chunk.length} of ${pending.length} pending audit rows`)
        }
      }
      const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
      yield* Effect.logInfo(
        `reconciled the audit of interrupted runs: ${confirmed} deleted, ${notDeleted} not deleted, ` +
          `${superseded} credited to a later run, in ${seconds.toFixed(1)} s`
      ).pipe(Effect.annotateLogs({ confirmed, notDeleted, superseded, seconds }))
      return confirmed
    }).pipe(Effect.annotateLogs({ rule: rule.name, bucket: rule.bucket }))

  /**
   * What every command that opens the state does first: the schema is migrated, runs left `running` by a process that
   * died are recorded interrupted (counts from the audit), and the pending audit rows of every rule are reconciled.
   * A rule whose rows cannot be reconciled yet (COS unreachable) is logged; it does not run until they are (see run).
   */
  const recover = Effect.gen(function*() {
    yield* state.migrate
    const abandoned = yield* state.markAbandoned
    if (abandoned.length > 0) {
      yield* Effect.logWarning(`${abandoned.length} run(s) were left unfinished by a process that stopped`).pipe(
        Effect.annotateLogs({ runs: abandoned.join(",") })
      )
    }
    const byRule = yield* state.pendingByRule
    for (const { n, rule: name } of byRule) {
      const rule = settings.rules.find((r) => r.name === name)
      if (rule === undefined) {
        yield* Effect.logWarning(
          `${n} pending audit rows belong to rule "${name}", which is not in the configuration: left as they are`
        )
        continue
      }
      yield* reconcile(rule).pipe(
        Effect.catchAll((e) =>
          Effect.logWarning(
            `could not reconcile ${n} pending audit rows yet (${e.message}); the rule does not run until they are`
          ).pipe(Effect.annotateLogs({ rule: rule.name }))
        )
      )
    }
  })

  const run = (rule: Rule, options: RunOptions): Effect.Effect<RunOutcome, PurgeError> =>
    Effect.gen(function*() {
      const dryRun = rule.dryRun || options.dryRun === true
      yield* state.check.pipe(Effect.mapError((e) => new PurgeError({ rule: rule.name, message: e.line })))
      if (!dryRun) {
        // a new run may delete keys an earlier run's pending rows name: those are settled first, or the run waits.
        // The run is recorded failed (with its fire time) and deletes nothing: the fire time is decided, and
        // `history` says why, as for any failed run
        const reconciled = yield* Effect.either(reconcile(rule))
        if (Either.isLeft(reconciled)) {
          const error = new PurgeError({
            rule: rule.name,
            message: `pending audit rows of an interrupted run could not be reconciled (${reconciled.left.message}); ` +
              "the rule does not run until they are",
            cause: reconciled.left
          })
          const record = yield* state.startRun({
            rule: rule.name,
            trigger: options.trigger,
            dryRun,
            resumedFrom: undefined,
            scheduledAt: options.scheduledAt,
            runner: options.runner
          })
          yield* state.finishRun(record.id, "failed", emptyCounts, error.message)
          yield* Metrics.recordRun(rule.name, "failed", 0)
          yield* Effect.logError(`run failed: ${error.message}`).pipe(Effect.annotateLogs({ run: record.id }))
          return yield* error
        }
      }
      const checkpoint = dryRun ? undefined : yield* state.getCheckpoint(rule.name)
      // a checkpoint outside the rule's prefix belongs to an older version of the rule
      const startAfter = checkpoint !== undefined && checkpoint.afterKey.startsWith(rule.prefix)
        ? checkpoint.afterKey
        : undefined
      const record = yield* state.startRun({
        rule: rule.name,
        trigger: options.trigger,
        dryRun,
        resumedFrom: startAfter,
        scheduledAt: options.scheduledAt,
        runner: options.runner
      })
      const ctx = { id: record.id, rule: rule.name, bucket: rule.bucket }
      const counts = yield* Ref.make<RunCounts>(emptyCounts)
      const reportedThrottles = yield* Ref.make(0)
      // the engine reports its summary even when interrupted: the interrupted run's counts come from it
      const lastSummary = yield* Ref.make<Deletion.Summary | undefined>(undefined)
      const startedAt = record.startedAt
      yield* status.update(rule.name, (live) => ({ ...live, current: { runId: record.id, startedAt } }))
      yield* Metrics.setRunning(rule.name, true)
      yield* Effect.logInfo(
        startAfter === undefined ? "run started" : `run started, resuming after ${JSON.stringify(startAfter)}`
      ).pipe(Effect.annotateLogs({ run: record.id, trigger: options.trigger, dryRun }))

      const throttles = (total: number) =>
        Effect.flatMap(
          Ref.getAndSet(reportedThrottles, total),
          (before) => total > before ? Metrics.recordThrottled(rule.name, total - before) : Effect.void
        )

      const hooks = dryRun ? {} : {
        // intent immediately before each request leaves (not before the write budget's wait or a backoff): a pending
        // row then means "a delete for this key may have reached COS from this run"
        onSend: (objects: ReadonlyArray<{ readonly key: string; readonly versionId?: string | undefined }>) =>
          state.recordIntent(ctx, objects),
        // `sent`: the array onSend was given for this request, so the confirmation resolves that request's intent
        onDeleted: (deleted: ReadonlyArray<Deletion.Deleted>, sent?: ReadonlyArray<unknown>) =>
          Effect.gen(function*() {
            yield* state.confirmDeleted(ctx, deleted, sent)
            const bytes = deleted.reduce((n, d) => n + (d.size ?? 0), 0)
            yield* Ref.update(counts, (c) => ({ ...c, deleted: c.deleted + deleted.length, bytes: c.bytes + bytes }))
            yield* Metrics.recordDeleted(rule.name, deleted.length, bytes)
          }),
        onCheckpoint: (afterKey: string) => state.saveCheckpoint(rule.name, record.id, afterKey)
      }
      const onProgress = (p: Deletion.Progress) =>
        Effect.gen(function*() {
          yield* Ref.update(counts, (c) => ({
            ...c,
            listed: p.listed,
            matched: p.matched,
            failed: p.failed,
            throttled: p.throttled
          }))
          yield* throttles(p.throttled)
          yield* status.update(
            rule.name,
            (live) => ({ ...live, current: { runId: record.id, startedAt, progress: p } })
          )
        })

      const finish = (exit: Exit.Exit<Deletion.Summary, PurgeError>) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const seconds = (now - startedAt) / 1000
          let outcome: RunRecord["status"]
          if (Exit.isSuccess(exit)) {
            const summary = exit.value
            const c = countsOf(summary)
            yield* throttles(summary.throttled)
            outcome = summary.stoppedBy === "interrupted" ? "interrupted" : summary.failed > 0 ? "failed" : "succeeded"
            const capped = outcome === "succeeded" ? capText(rule, summary) : undefined
            yield* state.finishRun(record.id, outcome, c, outcome === "failed" ? failureText(summary) : capped)
            if (outcome !== "interrupted" && !dryRun) {
              // every outcome is known: leftover intent rows are keys that were not deleted
              yield* state.dropPending(record.id)
              if (outcome === "succeeded") yield* state.clearCheckpoint(rule.name)
            }
            if (summary.failed > 0) yield* Metrics.recordFailed(rule.name, summary.failed)
            yield* (capped === undefined ? Effect.logInfo(`run ${outcome}`) : Effect.logWarning(`run ${capped}`)).pipe(
              Effect.annotateLogs({
                run: record.id,
                listed: c.listed,
                matched: c.matched,
                deleted: c.deleted,
                bytes: c.bytes,
                failed: c.failed,
                skipped: c.skipped,
                seconds
              })
            )
          } else {
            const summary = yield* Ref.get(lastSummary)
            const c = summary === undefined ? yield* Ref.get(counts) : countsOf(summary)
            if (summary !== undefined) yield* throttles(summary.throttled)
            const interrupted = Exit.isInterrupted(exit)
            outcome = interrupted ? "interrupted" : "failed"
            const error = interrupted
              ? "interrupted (the daemon is stopping); the next run resumes from the checkpoint"
              : Option.match(Cause.failureOption(exit.cause), {
                onSome: (e) => e.message,
                onNone: () => `unexpected error: ${Cause.squash(exit.cause)}`
              })
            yield* state.finishRun(record.id, outcome, c, error)
            if (interrupted) {
              yield* Effect.logWarning("run interrupted").pipe(
                Effect.annotateLogs({
                  run: record.id,
                  deleted: c.deleted,
                  failed: c.failed,
                  skipped: c.skipped,
                  firstFailure: summary?.failures[0] === undefined
                    ? undefined
                    : `${summary.failures[0].code}: ${summary.failures[0].message}`
                })
              )
            } else yield* Effect.logError(`run failed: ${error}`).pipe(Effect.annotateLogs({ run: record.id }))
          }
          yield* Effect.annotateCurrentSpan({ outcome, dryRun, run: record.id })
          yield* Metrics.recordRun(rule.name, outcome, seconds)
          if (outcome === "succeeded") yield* Metrics.recordSuccessAt(rule.name, Math.floor(now / 1000))
          yield* Metrics.setRunning(rule.name, false)
          yield* status.update(rule.name, (live) => ({ ...live, current: undefined }))
        })

      const exit = yield* purger.purge({
        rule,
        dryRun,
        startAfter,
        gracePeriod: settings.gracePeriod,
        sampleSize: options.sampleSize,
        hooks: { ...hooks, onProgress, onSummary: (summary) => Ref.set(lastSummary, summary) }
      }).pipe(Effect.onExit(finish), Effect.exit)
      const final = (yield* state.getRun(record.id)) ?? record
      if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
      return { run: final, summary: exit.value }
    }).pipe(
      Effect.annotateLogs({ rule: rule.name, bucket: rule.bucket }),
      // every span of the run (engine, client, HTTP, SQL) carries the rule and the bucket
      Effect.annotateSpans({ rule: rule.name, bucket: rule.bucket }),
      Effect.withSpan("Runner.run", {
        attributes: { rule: rule.name, bucket: rule.bucket, prefix: rule.prefix, trigger: options.trigger }
      }),
      (effect) => exporting ? effect : Effect.withTracerEnabled(effect, false)
    )

  /** At daemon start: prunes audit rows past the audit retention period. */
  const pruneAudit = Effect.gen(function*() {
    const pruned = yield* state.pruneAudit(Duration.toMillis(settings.auditRetention))
    if (pruned > 0) yield* Effect.logInfo(`pruned ${pruned} audit rows past the audit retention period`)
    return pruned
  })

  return { run, reconcile, recover, pruneAudit } as const
})

export class Runner extends Effect.Service<Runner>()("@effect-cos/daemon/Runner", {
  effect: make,
  dependencies: [State.Default, Purger.Default, Status.Default]
}) {
  /** A stand-in for scheduler tests: each run takes `duration` of (test) clock time and succeeds. */
  static readonly Test = (options: {
    readonly duration: Duration.DurationInput
    readonly calls: Ref.Ref<
      ReadonlyArray<
        { readonly rule: string; readonly trigger: Trigger; readonly at: number; readonly scheduledAt?: number }
      >
    >
  }): Layer.Layer<Runner> =>
    Layer.succeed(
      Runner,
      Runner.make({
        run: (rule, runOptions) =>
          Effect.gen(function*() {
            const at = yield* Clock.currentTimeMillis
            yield* Ref.update(
              options.calls,
              (calls) => [...calls, {
                rule: rule.name,
                trigger: runOptions.trigger,
                at,
                ...(runOptions.scheduledAt === undefined ? {} : { scheduledAt: runOptions.scheduledAt })
              }]
            )
            yield* Effect.sleep(options.duration)
            const now = yield* Clock.currentTimeMillis
            const run: RunRecord = {
              ...emptyCounts,
              id: 0,
              rule: rule.name,
              trigger: runOptions.trigger,
              dryRun: false,
              startedAt: at,
              endedAt: now,
              status: "succeeded",
              resumedFrom: null,
              scheduledAt: runOptions.scheduledAt ?? null,
              runner: runOptions.runner ?? null,
              error: null
            }
            return { run }
          }),
        reconcile: () => Effect.succeed(0),
        recover: Effect.void,
        pruneAudit: Effect.succeed(0)
      })
    )
}

export { PurgeError }
