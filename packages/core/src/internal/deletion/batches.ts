/**
 * Batches: a batch sent (under the governor, with the one retry path), its reply applied key by key, and every key
 * of it accounted exactly once: deleted, failed, skipped, or cut off at the end of the grace period. And the abort of
 * one incomplete upload, accounted the same way.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Tracer from "effect/Tracer"
import type { DeleteObjectsResult, MultipartUpload, ObjectIdentifier } from "../../CosClient.js"
import { isXmlSafeKey, keyProblem } from "../../CosClient.js"
import type { CosError } from "../../CosError.js"
import { isFatal, isRetryableCode, reasonOf } from "../../CosError.js"
import type * as Deletion from "../../Deletion.js"
import { attempt, backoff, mayRetry, request, throttled } from "./requests.js"
import type { Run } from "./run.js"
import { type Cand, settle } from "./segments.js"
import { deletedKeys, failedKeys } from "./tally.js"

const errorCode = (e: CosError): string => (e._tag === "CosServiceError" ? e.code : e._tag)

const cutOff = "cut off at the end of the grace period: not confirmed"

// ---------------------------------------------------------------------------------------------------------------
// outcomes
// ---------------------------------------------------------------------------------------------------------------

const confirm = (run: Run, c: Cand, markerCreated: boolean, report: Array<Deletion.Deleted> | undefined): void => {
  const t = run.tally
  t.deleted++
  t.bytes += c.size
  if (markerCreated) t.deleteMarkersCreated++
  report?.push({ key: c.key, versionId: c.versionId, size: c.size, deleteMarkerCreated: markerCreated })
  settle(run, c)
}

const failKey = (run: Run, c: Cand, code: string, message: string): void => {
  run.tally.fail(c, code, message)
  settle(run, c)
}

// One span per batch (never per key): `deleted` and `failed` add up on it as the batch and its retries settle, and
// `outcome` is set when it ends (deleted, partial, failed, skipped).
const spanNumber = (span: Tracer.Span, name: string) => {
  const v = span.attributes.get(name)
  return typeof v === "number" ? v : 0
}

const countOnBatchSpan = (deleted: number, failed: number): Effect.Effect<void> =>
  Effect.ignore(Effect.flatMap(Effect.currentSpan, (span) =>
    Effect.sync(() => {
      span.attribute("deleted", spanNumber(span, "deleted") + deleted)
      span.attribute("failed", spanNumber(span, "failed") + failed)
    })))

const batchOutcome: Effect.Effect<void> = Effect.ignore(Effect.flatMap(Effect.currentSpan, (span) =>
  Effect.sync(() => {
    const deleted = spanNumber(span, "deleted")
    const failed = spanNumber(span, "failed")
    span.attribute(
      "outcome",
      failed === 0 ? (deleted === 0 ? "skipped" : "deleted") : deleted === 0 ? "failed" : "partial"
    )
  })))

/** After a batch's outcomes are applied: its span's counts, the metrics, the caller's `onDeleted`, the checkpoint. */
const afterBatch = (
  run: Run,
  deleted: number,
  failed: number,
  report: Array<Deletion.Deleted> | undefined,
  sent?: ReadonlyArray<ObjectIdentifier> | undefined
): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* countOnBatchSpan(deleted, failed)
    if (deleted > 0) yield* Metric.incrementBy(deletedKeys, deleted)
    if (failed > 0) yield* Metric.incrementBy(failedKeys, failed)
    const hook = run.r.options.onDeleted
    if (hook !== undefined && report !== undefined && report.length > 0) yield* hook(report, sent)
    yield* run.reportFailures
    yield* run.reportCheckpoint
  })

/** Every key of a batch failed with one error (the request as a whole failed). */
const failAll = (run: Run, items: ReadonlyArray<Cand>, e: CosError): Effect.Effect<void> =>
  Effect.suspend(() => {
    const code = errorCode(e)
    for (const c of items) failKey(run, c, code, e.message)
    const after = afterBatch(run, 0, items.length, undefined)
    return isFatal(e) ? Effect.zipRight(after, run.fail(e)) : after
  })

interface Applied {
  readonly deleted: number
  readonly failed: number
  readonly report: Array<Deletion.Deleted> | undefined
  /** Keys answered with a retryable error, to send again. */
  readonly retry: Array<Cand> | undefined
  /** Whether COS throttled any key of the batch. */
  readonly throttled: boolean
}

/**
 * A batch reply applied key by key: `outcomes[i]` is the answer for `items[i]` (the client matched the reply to
 * the keys sent), `undefined` for a key the reply did not name (not confirmed, so not deleted).
 */
const applyOutcomes = (run: Run, items: ReadonlyArray<Cand>, res: DeleteObjectsResult, attempts: number): Applied => {
  const report = run.r.options.onDeleted !== undefined ? [] as Array<Deletion.Deleted> : undefined
  const outcomes = res.outcomes
  const mayRetryKeys = attempts < run.r.maxAttempts && !run.stopping
  let deleted = 0
  let failed = 0
  let retry: Array<Cand> | undefined
  let throttledKeys = false
  for (let i = 0; i < items.length; i++) {
    const c = items[i]!
    const o = outcomes[i]
    if (o === undefined) {
      failKey(run, c, "NotConfirmed", "COS named this key neither deleted nor failed in its reply")
      failed++
    } else if (o._tag === "Deleted") {
      confirm(run, c, o.deleteMarker && c.versionId === undefined, report)
      deleted++
    } else if (mayRetryKeys && isRetryableCode(o.code)) {
      if (reasonOf(o.code, 0) === "Throttled") throttledKeys = true
      ;(retry ??= []).push(c)
    } else {
      failKey(run, c, o.code, o.message)
      failed++
    }
  }
  return { deleted, failed, report, retry, throttled: throttledKeys }
}

// ---------------------------------------------------------------------------------------------------------------
// sending
// ---------------------------------------------------------------------------------------------------------------

/** Deletes keys one by one (keys that cannot travel in XML, or a batch the client refused as a whole). */
const singles = (run: Run, items: ReadonlyArray<Cand>): Effect.Effect<void> =>
  Effect.forEach(items, (c) =>
    Effect.suspend(() => {
      if (run.stopping) {
        run.tally.skipped++
        return Effect.void
      }
      const problem = keyProblem(c.key)
      if (problem !== undefined) {
        failKey(run, c, "InvalidKey", problem)
        return afterBatch(run, 0, 1, undefined)
      }
      const report = run.r.options.onDeleted !== undefined ? [] as Array<Deletion.Deleted> : undefined
      const onSend = run.r.options.onSend
      // the array given to onSend, given again to onDeleted with the confirmation
      const sent = [c]
      return request(
        run,
        // Intent just before the request leaves: after the budget's wait, on every attempt.
        onSend === undefined
          ? run.governor.acquireWrite(1)
          : Effect.zipRight(run.governor.acquireWrite(1), onSend(sent)),
        run.client.deleteObject({ bucket: run.r.bucket, key: c.key, versionId: c.versionId }),
        run.governor.throttledWrite
      ).pipe(
        Effect.matchEffect({
          onSuccess: (res) => {
            confirm(run, c, res.deleteMarker && c.versionId === undefined, report)
            return afterBatch(run, 1, 0, report, sent)
          },
          onFailure: (e) => failAll(run, [c], e)
        }),
        Effect.onInterrupt(() => Effect.sync(() => failKey(run, c, "Interrupted", cutOff)))
      )
    }), { discard: true })

/**
 * One batch through rounds: each round acquires the write budget, sends the keys still pending and applies the
 * reply; a failed request or keys answered with a retryable error go again after the backoff. Keys not yet
 * accounted when the grace period cuts the batch off fail as `Interrupted`.
 */
const sendBatch = (run: Run, items: ReadonlyArray<Cand>): Effect.Effect<void> => {
  let open: ReadonlyArray<Cand> | undefined = items
  return Effect.gen(function*() {
    const driver = yield* Schedule.driver(backoff)
    const wait = Effect.ignore(driver.next(undefined))
    const onSend = run.r.options.onSend
    let attempts = 1
    let pending = items
    while (true) {
      yield* run.governor.acquireWrite(pending.length)
      if (run.stopping && attempts === 1) {
        open = undefined
        run.tally.skipped += pending.length
        return
      }
      const sent = yield* Effect.either(
        attempt(
          run,
          // Intent just before the request leaves: after the budget's wait and any backoff, on every round.
          onSend === undefined ? Effect.void : onSend(pending),
          run.client.deleteObjects({ bucket: run.r.bucket, objects: pending, quiet: run.r.quiet }),
          run.governor.throttledWrite
        )
      )
      if (Either.isLeft(sent)) {
        const e = sent.left
        if (mayRetry(run, e, attempts)) {
          run.tally.retries++
          yield* wait
          attempts++
          continue
        }
        open = undefined
        // The client refused the batch as a whole (a key it cannot send): try the keys one by one.
        if (e._tag === "CosInvalidRequest") return yield* singles(run, pending)
        return yield* failAll(run, pending, e)
      }
      const applied = applyOutcomes(run, pending, sent.right, attempts)
      open = applied.retry
      yield* afterBatch(run, applied.deleted, applied.failed, applied.report, pending)
      if (applied.retry === undefined) return
      run.tally.retries++
      if (applied.throttled) yield* throttled(run, run.governor.throttledWrite)
      yield* wait
      attempts++
      pending = applied.retry
    }
  }).pipe(Effect.onInterrupt(() =>
    Effect.sync(() => {
      if (open === undefined) return
      for (const c of open) failKey(run, c, "Interrupted", cutOff)
      open = undefined
    })
  ))
}

/**
 * One batch: keys that cannot travel in XML go one by one, the rest as one batch; every key accounted exactly once.
 *
 * @internal
 */
export const deleteBatch = (run: Run, batch: Array<Cand>): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (run.stopping) {
      run.tally.skipped += batch.length
      return batchOutcome
    }
    let safe = batch
    let unsafe: Array<Cand> | undefined
    for (let i = 0; i < batch.length; i++) {
      const c = batch[i]!
      if (!isXmlSafeKey(c.key) || (c.versionId !== undefined && !isXmlSafeKey(c.versionId))) {
        if (unsafe === undefined) {
          unsafe = []
          safe = batch.slice(0, i)
        }
        unsafe.push(c)
      } else if (unsafe !== undefined) safe.push(c)
    }
    const onStart = run.r.options.onBatchStart
    const start = onStart === undefined ? Effect.void : onStart(batch)
    const main = safe.length > 0 ? sendBatch(run, safe) : Effect.void
    const rest = unsafe === undefined ? Effect.void : singles(run, unsafe)
    return Effect.zipRight(start, Effect.zipRight(Effect.zipRight(main, rest), batchOutcome))
  }).pipe(Effect.withSpan("Deletion.deleteBatch", { attributes: { keys: batch.length } }))

/**
 * Aborts one incomplete upload (`target: "incompleteUploads"`): one write of the governor's budget, with the run's
 * retry. An upload already gone (404 NoSuchUpload: completed or aborted meanwhile) is skipped, not failed, and not
 * reported to `onDeleted`; one cut off at the end of the grace period fails as `Interrupted`, since nobody knows
 * whether COS aborted it.
 *
 * @internal
 */
export const abortUpload = (run: Run, u: MultipartUpload): Effect.Effect<void> =>
  Effect.suspend(() => {
    const t = run.tally
    if (run.stopping) {
      t.skipped++
      return Effect.void
    }
    return request(
      run,
      run.governor.acquireWrite(1),
      run.client.abortMultipartUpload({ bucket: run.r.bucket, key: u.key, uploadId: u.uploadId }),
      run.governor.throttledWrite
    ).pipe(
      Effect.onInterrupt(() => Effect.sync(() => t.failUpload(u, "Interrupted", cutOff))),
      Effect.matchEffect({
        onSuccess: () => {
          t.deleted++
          const hook = run.r.options.onDeleted
          return hook === undefined
            ? Effect.void
            : hook([{ key: u.key, uploadId: u.uploadId, deleteMarkerCreated: false }])
        },
        onFailure: (e) =>
          Effect.suspend(() => {
            if (e._tag === "CosServiceError" && e.code === "NoSuchUpload") {
              t.uploadsGone++
              t.skipped++
              return Effect.void
            }
            t.failUpload(u, errorCode(e), e.message)
            return isFatal(e) ? run.fail(e) : Effect.void
          })
      })
    )
  })
