/**
 * The wiring: options checked, the run made, a source chosen, and the pipeline (listing -> selection -> batches ->
 * bounded-concurrency deletes) run in a fiber of its own under the run's lifecycle. Incomplete uploads
 * (`target: "incompleteUploads"`) take their own pipeline (listing -> selection -> one abort per upload) under the
 * same lifecycle.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { CosClient as Client, ObjectIdentifier } from "../../CosClient.js"
import { CosClient } from "../../CosClient.js"
import type { CosError } from "../../CosError.js"
import type * as Deletion from "../../Deletion.js"
import { GovernorTag, unsafeMake as makeGovernor } from "../governor.js"
import { abortUpload, deleteBatch } from "./batches.js"
import { type KeepLatest, makeKeepLatest } from "./filters.js"
import { bucketOf, checkFilters, checkUploadFilters, checkWindow, resolve, type Resolved, targetOf } from "./options.js"
import { Run } from "./run.js"
import { Selector, UploadsSelector } from "./selection.js"
import {
  callerSource,
  objectsSource,
  type Portion,
  type UploadsPortion,
  uploadsSource,
  versionsSource
} from "./sources.js"
import { progress, summary } from "./tally.js"

/**
 * `Stream.runDrain(Stream.mapEffect(stream, f, { concurrency, unordered: true }))` with one fiber per element: the
 * same back-pressure (the next element is pulled, then waits for a free slot), the first failure of `f` interrupts
 * the others and fails the drain, and interrupting the drain interrupts every `f` in flight. `Stream.mapEffect` runs
 * each element as a stream of its own (a channel executor, a scope, a latch and two races: about 500 fiber-runtime
 * operations per batch); here an element costs a semaphore permit and one fiber.
 */
const drainUnordered = <A, E, R, R2>(
  stream: Stream.Stream<A, E, R>,
  concurrency: number,
  f: (a: A) => Effect.Effect<void, never, R2>
): Effect.Effect<void, E, R | R2> =>
  Effect.scoped(Effect.gen(function*() {
    const slots = yield* Effect.makeSemaphore(concurrency)
    const running = yield* FiberSet.make<void, never>()
    const feed = Stream.runForEach(
      stream,
      (a) => Effect.zipRight(slots.take(1), FiberSet.run(running, Effect.ensuring(f(a), slots.release(1))))
    )
    // all permits back: every element's `f` has ended
    yield* Effect.raceFirst(Effect.zipRight(feed, slots.take(concurrency)), FiberSet.join(running))
  }))

/** listing -> selection -> batches -> bounded-concurrency deletes. */
const pipeline = <E>(run: Run, source: Stream.Stream<Portion, E>, keep: KeepLatest | undefined) => {
  const r = run.r
  const selector = new Selector(run, keep)
  const batches = source.pipe(
    // A listing failure (after retries) stops the run like a stop signal: the batches in flight finish, the rest is
    // skipped, and the run then fails with the error.
    Stream.catchAll((e) => Stream.execute(run.fail(e))),
    Stream.interruptWhen(Deferred.await(run.stopped)),
    Stream.takeWhile(() => !run.capped && !run.stopping),
    Stream.mapEffect((p) => {
      run.tally.listed += p.listed
      const out = selector.push(p.cands, p.seg)
      return Effect.as(run.reportCheckpoint, out)
    }),
    Stream.concat(Stream.suspend(() => Stream.succeed(selector.finish()))),
    Stream.flattenIterables
  )
  const drained = r.dryRun
    ? Stream.runDrain(batches)
    : drainUnordered(batches, r.concurrency, (b) => deleteBatch(run, b))
  return Effect.zipRight(drained, run.reportCheckpoint)
}

/** Incomplete uploads: listing -> selection -> one abort per upload, at bounded concurrency. */
const uploadsPipeline = (run: Run, source: Stream.Stream<UploadsPortion, CosError>) => {
  const selector = new UploadsSelector(run)
  return source.pipe(
    // As in `pipeline`: a listing failure stops the run like a stop signal, then the run fails with the error.
    Stream.catchAll((e) => Stream.execute(run.fail(e))),
    Stream.interruptWhen(Deferred.await(run.stopped)),
    Stream.takeWhile(() => !run.capped && !run.stopping),
    Stream.map((p) => {
      run.tally.listed += p.listed
      return selector.push(p.uploads)
    }),
    Stream.flattenIterables,
    (uploads) => drainUnordered(uploads, run.r.concurrency, (u) => abortUpload(run, u))
  )
}

/**
 * Runs the pipeline in a fiber of its own so that a stop (the caller's `stopSignal`, or interruption of the caller's
 * fiber) ends the listing, lets the batches in flight finish within the grace period, and still accounts for every
 * key: the summary goes to `onSummary` in every case and is returned unless the caller interrupted.
 *
 * The pipeline and its helpers are daemon fibers: a child fiber would receive the caller's interruption at once
 * (Effect interrupts a fiber's children as soon as the fiber itself is interrupted) and cut off the batches in
 * flight. Instead, the caller's interruption requests a stop, and this fiber (uninterruptible meanwhile) waits for
 * the pipeline, which the grace timer interrupts if the batches in flight outlast `gracePeriod`. Every daemon fiber
 * is awaited or interrupted before this returns.
 */
const execute = <E>(
  run: Run,
  work: Effect.Effect<void, E>,
  info: {
    readonly bucket: string
    readonly prefix: string
    readonly versions: Deletion.VersionsMode
    readonly target?: "incompleteUploads" | undefined
  }
): Effect.Effect<Deletion.Summary, E | CosError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const o = run.r.options
      run.tally.startedAt = yield* Clock.currentTimeMillis
      const helpers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      const fiber = yield* Effect.forkDaemon(restore(work))
      const onProgress = o.onProgress
      const report = Effect.flatMap(Clock.currentTimeMillis, (now) => onProgress!(progress(run.tally, now)))
      if (onProgress !== undefined) {
        helpers.push(
          yield* Effect.forkDaemon(
            restore(Effect.repeat(Effect.delay(report, run.r.progressInterval), Schedule.forever))
          )
        )
      }
      if (o.stopSignal !== undefined) {
        helpers.push(yield* Effect.forkDaemon(restore(Effect.zipRight(o.stopSignal, run.requestStop()))))
      }
      // After a stop, the batches in flight get the grace period; then they are cut off (keys: "Interrupted").
      helpers.push(
        yield* Effect.forkDaemon(restore(
          Effect.zipRight(
            Deferred.await(run.stopped),
            Effect.zipRight(Effect.sleep(run.r.gracePeriod), Fiber.interrupt(fiber))
          )
        ))
      )
      let exit = yield* Effect.exit(restore(Fiber.join(fiber)))
      let callerInterrupted = false
      if (Exit.isFailure(exit) && Cause.isInterrupted(exit.cause) && Option.isNone(yield* Fiber.poll(fiber))) {
        callerInterrupted = true
        yield* run.requestStop()
        exit = yield* Fiber.await(fiber)
      }
      for (const h of helpers) yield* Fiber.interrupt(h)
      // failures of keys cut off by the grace period (or of the last upload aborts) are handed over here
      yield* Effect.exit(run.reportFailures)
      const result = summary(run.tally, { dryRun: run.r.dryRun, ...info, stoppedBy: run.stoppedBy, capped: run.capped })
      if (onProgress !== undefined) yield* Effect.exit(report)
      if (o.onSummary !== undefined) yield* Effect.exit(o.onSummary(result))
      if (callerInterrupted) return yield* Effect.interrupt
      if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) return yield* Effect.failCause(exit.cause)
      if (run.error !== undefined) return yield* Effect.fail(run.error as E | CosError)
      return result
    })
  )

const governorFor = (client: Client, options: Deletion.RunOptions) =>
  Effect.map(Effect.serviceOption(GovernorTag), (g) =>
    Option.getOrElse(g, () =>
      makeGovernor({
        region: client.region,
        writeBudget: options.writeBudget,
        listBudget: options.listBudget
      })))

/** The end of a run, on the `Deletion.purge` span: its counts and how it ended. */
const annotateSummary = (s: Deletion.Summary) =>
  Effect.annotateCurrentSpan({
    listed: s.listed,
    matched: s.matched,
    deleted: s.deleted,
    failed: s.failed,
    skipped: s.skipped,
    outcome: s.failed > 0 ? "failed" : s.stoppedBy ?? "completed"
  })

/** @internal */
export const purge = (options: Deletion.PurgeOptions): Effect.Effect<Deletion.Summary, CosError, CosClient> =>
  Effect.gen(function*() {
    const r = yield* resolve(options)
    const { mode, prefix } = yield* checkFilters(options)
    if ((yield* targetOf(options)) === "incompleteUploads") return yield* purgeUploads(options, r)
    const keep = yield* makeKeepLatest(options.keepLatest)
    const client = yield* CosClient
    const bucket = yield* bucketOf(options, client.defaultBucket)
    const governor = yield* governorFor(client, options)
    const now = yield* Clock.currentTimeMillis
    yield* checkWindow(options, now)
    const stopped = yield* Deferred.make<void>()
    const run = new Run(client, governor, { ...r, bucket }, stopped, options.startAfter, true)
    const source = mode === "current"
      ? objectsSource(run, options, now, keep)
      : versionsSource(run, options, mode, now, keep)
    yield* Effect.annotateCurrentSpan({ bucket, versions: mode })
    return yield* execute(run, pipeline(run, source, keep), { bucket, prefix, versions: mode }).pipe(
      Effect.tap(annotateSummary)
    )
  }).pipe(
    Effect.withSpan("Deletion.purge", { attributes: { prefix: options.prefix, dryRun: options.dryRun === true } })
  )

/**
 * `purge` with `target: "incompleteUploads"`: lists open uploads under the prefix, selects them with the key filters
 * and `olderThan` on `Initiated`, and aborts each one with the run's governor, retries, stop handling, progress and
 * summary (tagged `target: "incompleteUploads"`). No checkpoints: the listing always starts from the prefix.
 */
const purgeUploads = (
  options: Deletion.PurgeOptions,
  r: Omit<Resolved, "bucket">
): Effect.Effect<Deletion.Summary, CosError, CosClient> =>
  Effect.gen(function*() {
    yield* checkUploadFilters(options)
    const client = yield* CosClient
    const bucket = yield* bucketOf(options, client.defaultBucket)
    const governor = yield* governorFor(client, options)
    const now = yield* Clock.currentTimeMillis
    yield* checkWindow(options, now)
    const stopped = yield* Deferred.make<void>()
    const run = new Run(client, governor, { ...r, bucket }, stopped, undefined, false)
    const notes = run.tally.notes
    if (r.listConcurrency > 1) notes.add("incomplete uploads are listed sequentially")
    if (options.startAfter !== undefined && options.startAfter !== "") {
      notes.add("startAfter is ignored for incomplete uploads: the listing starts from the prefix")
    }
    const source = uploadsSource(run, options, now)
    yield* Effect.annotateCurrentSpan({ bucket, target: "incompleteUploads" })
    return yield* execute(run, uploadsPipeline(run, source), {
      bucket,
      prefix: options.prefix,
      versions: "current",
      target: "incompleteUploads"
    }).pipe(Effect.tap(annotateSummary))
  })

type Keys<E, R> = Stream.Stream<ObjectIdentifier & { readonly size?: number | undefined }, E, R>

/** @internal */
export const deleteKeys: {
  (
    options?: Deletion.RunOptions
  ): <E, R>(keys: Keys<E, R>) => Effect.Effect<Deletion.Summary, CosError | E, CosClient | R>
  <E, R>(keys: Keys<E, R>, options?: Deletion.RunOptions): Effect.Effect<Deletion.Summary, CosError | E, CosClient | R>
} = dual(
  (args) => Stream.StreamTypeId in Object(args[0]),
  <E, R>(keys: Keys<E, R>, options: Deletion.RunOptions = {}) => deleteStream(keys, options)
)

const deleteStream = <E, R>(
  keys: Keys<E, R>,
  options: Deletion.RunOptions
): Effect.Effect<Deletion.Summary, CosError | E, CosClient | R> =>
  Effect.gen(function*() {
    const r = yield* resolve({ ...options, maxDeleteSize: undefined })
    const client = yield* CosClient
    const bucket = yield* bucketOf(options, client.defaultBucket)
    const governor = yield* governorFor(client, options)
    const stopped = yield* Deferred.make<void>()
    const run = new Run(client, governor, { ...r, bucket }, stopped, undefined, false)
    const context = yield* Effect.context<R>()
    const source = Stream.provideContext(callerSource(run, keys), context)
    return yield* execute(run, pipeline(run, source, undefined), { bucket, prefix: "", versions: "current" })
  }).pipe(Effect.withSpan("Deletion.deleteKeys"))
