/**
 * The deletion engine: listing stream -> selection (filters, keep-latest, maxDeletes) -> batches of up to 1000 ->
 * batch deletes with bounded concurrency under the governor -> a tally that becomes the Summary.
 *
 * The hot path works on arrays per page and per batch: one small object per selected key, no Effect per key.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import type {
  CosClient as Client,
  ListMultipartUploadsPage,
  ListObjectsPage,
  ListVersionsPage,
  MultipartUpload,
  ObjectIdentifier,
  ObjectSummary,
  VersionEntry
} from "../CosClient.js"
import { CosClient, isXmlSafeKey, keyProblem } from "../CosClient.js"
import type { CosError } from "../CosError.js"
import { CosDecodeError, CosInvalidRequest, isRetryable, isRetryableCode, isThrottle } from "../CosError.js"
import type * as Deletion from "../Deletion.js"
import type * as Governor from "../Governor.js"
import { nextUploadsCursor, type UploadsCursor } from "./client.js"
import { anyGlob, globProblem } from "./glob.js"
import { GovernorTag, unsafeMake as makeGovernor } from "./governor.js"
import { type ListedPage, listPages } from "./parallelList.js"
import { onThrottled } from "./throttle.js"

// ---------------------------------------------------------------------------------------------------------------
// metrics
// ---------------------------------------------------------------------------------------------------------------

/** @internal */
export const deletedKeys = Metric.counter("cos_deletion_deleted_keys_total", {
  description: "Keys (or versions) COS confirmed deleted",
  incremental: true
})
/** @internal */
export const failedKeys = Metric.counter("cos_deletion_failed_keys_total", {
  description: "Keys the deletion engine gave up on",
  incremental: true
})
/** @internal */
export const throttledRequests = Metric.counter("cos_deletion_throttled_total", {
  description: "Throttling answers (503 SlowDown) seen by the deletion engine",
  incremental: true
})

// ---------------------------------------------------------------------------------------------------------------
// filters
// ---------------------------------------------------------------------------------------------------------------

const enum Kind {
  Object = 0,
  Version = 1,
  Marker = 2
}

interface Predicates {
  readonly key: (key: string) => boolean
  /** Last-modified cutoff in ms (keys strictly older match), or undefined. */
  readonly cutoff: number | undefined
  readonly minSize: number | undefined
  readonly maxSize: number | undefined
}

const compileFilters = (filters: Deletion.Filters, now: number): Predicates => {
  const include = filters.include !== undefined && filters.include.length > 0 ? anyGlob(filters.include) : undefined
  const exclude = filters.exclude !== undefined && filters.exclude.length > 0 ? anyGlob(filters.exclude) : undefined
  const key = include === undefined && exclude === undefined
    ? () => true
    : (k: string) => (include === undefined || include(k)) && (exclude === undefined || !exclude(k))
  const olderThan = filters.olderThan
  const cutoff = olderThan === undefined
    ? undefined
    : olderThan instanceof Date
    ? olderThan.getTime()
    : now - Duration.toMillis(Duration.decode(olderThan))
  return { key, cutoff, minSize: filters.minSize, maxSize: filters.maxSize }
}

const sizeOk = (p: Predicates, size: number) =>
  (p.minSize === undefined || size >= p.minSize) && (p.maxSize === undefined || size <= p.maxSize)

/** @internal */
export const matcher = (filters: Deletion.Filters, now: number): Deletion.Matcher => {
  const p = compileFilters(filters, now)
  const prefix = filters.prefix
  const mode = filters.versions ?? "current"
  const keyOk = (k: string) => k.startsWith(prefix) && p.key(k)
  return {
    key: keyOk,
    object: (o) => keyOk(o.key) && (p.cutoff === undefined || o.lastModified.getTime() < p.cutoff) && sizeOk(p, o.size),
    version: (v, context) => {
      if (!keyOk(v.key)) return false
      switch (mode) {
        case "current":
          return v.isLatest && v._tag === "Version" &&
            (p.cutoff === undefined || v.lastModified.getTime() < p.cutoff) && sizeOk(p, v.size)
        case "all":
          return (p.cutoff === undefined || v.lastModified.getTime() < p.cutoff) &&
            (v._tag === "DeleteMarker" || sizeOk(p, v.size))
        case "noncurrent": {
          if (v._tag !== "Version" || v.isLatest) return false
          const since = context?.noncurrentSince?.getTime() ?? now
          return (p.cutoff === undefined || since < p.cutoff) && sizeOk(p, v.size)
        }
        case "delete-markers":
          return v._tag === "DeleteMarker" && context?.keyHasVersions === false &&
            (p.cutoff === undefined || v.lastModified.getTime() < p.cutoff)
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// candidates, segments and checkpoints
// ---------------------------------------------------------------------------------------------------------------

/**
 * A listed interval `(lo, hi]` of keys: once every candidate in it is handled, a checkpoint may pass `hi`.
 * `hi === undefined`: to the end of the listing.
 */
interface Seg {
  readonly lo: string
  hi: string | undefined
  /** Candidates not yet handled. */
  pending: number
  closed: boolean
}

/** A key (or version) selected for deletion. Doubles as the ObjectIdentifier sent to COS. */
interface Cand {
  readonly key: string
  readonly versionId: string | undefined
  readonly size: number
  readonly lastModified: number
  readonly kind: Kind
  readonly seg: Seg | undefined
  /**
   * Passes `olderThan`. With `keepLatest`, candidates that pass every other filter are listed too (they count in
   * the ranking of the newest) but only aged ones are ever deleted; without it, every candidate is aged.
   */
  readonly aged: boolean
}

/** Advances a checkpoint over the completed intervals that chain from the start. */
class Checkpoints {
  frontier: string | undefined
  reported: string | undefined
  private readonly done = new Map<string, Seg>()
  constructor(start: string) {
    this.frontier = start
  }
  complete(seg: Seg): void {
    this.done.set(seg.lo, seg)
    let f = this.frontier
    while (f !== undefined) {
      const s = this.done.get(f)
      if (s === undefined) break
      this.done.delete(f)
      f = s.hi
    }
    this.frontier = f
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the tally
// ---------------------------------------------------------------------------------------------------------------

class Tally {
  listed = 0
  matched = 0
  matchedBytes = 0
  deleted = 0
  bytes = 0
  failed = 0
  readonly failures: Array<Deletion.Failure> = []
  skipped = 0
  kept = 0
  readonly sample: Array<string> = []
  objects = 0
  versions = 0
  deleteMarkers = 0
  deleteMarkersCreated = 0
  requests = 0
  retries = 0
  throttled = 0
  firstRequestAt: number | undefined = undefined
  lastRequestAt: number | undefined = undefined
  startedAt = 0
  stoppedBy: "maxDeletes" | "interrupted" | "failed" | undefined = undefined
  readonly notes = new Set<string>()
  constructor(readonly sampleSize: number) {}

  fail(c: Cand, code: string, message: string): void {
    this.failed++
    if (this.failures.length < this.sampleSize) {
      this.failures.push({ key: c.key, versionId: c.versionId, code, message })
    }
  }
}

const label = (c: { readonly key: string; readonly versionId?: string | undefined }) =>
  c.versionId === undefined ? c.key : `${c.key} [version ${c.versionId}]`

// ---------------------------------------------------------------------------------------------------------------
// selection: filters, keep-latest, maxDeletes, batching (synchronous, per page)
// ---------------------------------------------------------------------------------------------------------------

interface KeepLatest {
  readonly count: number
  readonly group: (key: string) => string
  readonly heaps: Map<string, Array<Cand>>
}

/** Turns pages of candidates into full batches. */
class Selector {
  private batch: Array<Cand> = []
  private sent = 0
  capReached = false
  constructor(
    private readonly tally: Tally,
    private readonly batchSize: number,
    private readonly maxDeletes: number | undefined,
    private readonly keep: KeepLatest | undefined,
    private readonly dryRun: boolean,
    private readonly onSegDone: (seg: Seg) => void
  ) {}

  /**
   * Accounts one selected candidate: counted as matched, then skipped (over `maxDeletes`) or batched, so that in
   * the end `matched = deleted + failed + skipped`.
   */
  private take(c: Cand, out: Array<Array<Cand>>): void {
    const t = this.tally
    t.matched++
    t.matchedBytes += c.size
    if (c.kind === Kind.Object) t.objects++
    else if (c.kind === Kind.Version) t.versions++
    else t.deleteMarkers++
    if (this.capReached || (this.maxDeletes !== undefined && this.sent >= this.maxDeletes)) {
      this.capReached = true
      t.stoppedBy = "maxDeletes"
      t.skipped++
      return
    }
    this.sent++
    if (t.sample.length < t.sampleSize) t.sample.push(label(c))
    if (this.dryRun) {
      this.handled(c)
      return
    }
    this.batch.push(c)
    if (this.batch.length >= this.batchSize) {
      out.push(this.batch)
      this.batch = []
    }
  }

  private handled(c: Cand): void {
    const seg = c.seg
    if (seg !== undefined && --seg.pending === 0 && seg.closed) this.onSegDone(seg)
  }

  /** Offers candidates through keep-latest: the newest `count` per group are held back until the end. */
  private offer(c: Cand, out: Array<Array<Cand>>): void {
    const keep = this.keep
    if (keep === undefined) return this.take(c, out)
    const g = keep.group(c.key)
    let heap = keep.heaps.get(g)
    if (heap === undefined) {
      heap = []
      keep.heaps.set(g, heap)
    }
    // `heap` is sorted newest first and holds at most `count` candidates.
    if (heap.length < keep.count) {
      insertNewestFirst(heap, c)
      return
    }
    const oldest = heap[heap.length - 1]!
    if (newer(c, oldest)) {
      heap.pop()
      insertNewestFirst(heap, c)
      this.outranked(oldest, out)
    } else {
      this.outranked(c, out)
    }
  }

  /** Not among the newest `count`: deleted if it also passes `olderThan`, else left alone (not selected). */
  private outranked(c: Cand, out: Array<Array<Cand>>): void {
    if (c.aged) this.take(c, out)
    else this.handled(c)
  }

  /** Takes one listed portion: its candidates were counted into `seg.pending` by the caller. */
  push(cands: ReadonlyArray<Cand>, seg: Seg | undefined): Array<Array<Cand>> {
    const out: Array<Array<Cand>> = []
    for (let i = 0; i < cands.length; i++) this.offer(cands[i]!, out)
    if (seg !== undefined) {
      seg.closed = true
      if (seg.pending === 0) this.onSegDone(seg)
    }
    return out
  }

  /** End of the listing: kept candidates are handled; the last partial batch goes out. */
  finish(stopping: boolean): Array<Array<Cand>> {
    const out: Array<Array<Cand>> = []
    if (this.keep !== undefined) {
      for (const heap of this.keep.heaps.values()) {
        for (const c of heap) {
          if (c.aged) this.tally.kept++
          this.handled(c)
        }
      }
      this.keep.heaps.clear()
    }
    if (this.batch.length > 0) {
      if (stopping) this.tally.skipped += this.batch.length
      else out.push(this.batch)
      this.batch = []
    }
    return out
  }
}

const newer = (a: Cand, b: Cand) =>
  a.lastModified > b.lastModified || (a.lastModified === b.lastModified && a.key > b.key)

const insertNewestFirst = (heap: Array<Cand>, c: Cand) => {
  let i = heap.length
  heap.push(c)
  while (i > 0 && newer(c, heap[i - 1]!)) {
    heap[i] = heap[i - 1]!
    i--
  }
  heap[i] = c
}

const makeKeepLatest = (k: Deletion.Filters["keepLatest"]): KeepLatest | undefined => {
  if (k === undefined || !(k.count > 0)) return undefined
  const groupBy = k.groupBy
  if (groupBy === undefined) return { count: k.count, group: () => "", heaps: new Map() }
  const re = new RegExp(groupBy)
  return {
    count: k.count,
    // Keys the expression does not match share one group: they are still protected.
    group: (key) => {
      const m = re.exec(key)
      return m === null ? "" : "\u0001" + (m[1] ?? m[0])
    },
    heaps: new Map()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// versions: per-key state across pages
// ---------------------------------------------------------------------------------------------------------------

/**
 * Selects versions page by page. A key's versions may span pages, and the next page is asked for with the last
 * version listed as `version-id-marker` (docs/protocol.md §3), so a key's versions are only released for deletion once
 * the listing has moved past the key: the marker version still exists when the next page is requested. Segments
 * (for checkpoints) end on key boundaries, at most one per page.
 */
class VersionsSelector {
  private key: string | undefined = undefined
  private prevLastModified: Date | undefined = undefined
  private hasVersions = false
  /**
   * Selected entries of the current key with whether they pass `olderThan` (in delete-markers mode: its markers,
   * decided at the end of the key).
   */
  private entries: Array<{ readonly v: VersionEntry; readonly aged: boolean }> = []
  private seg: Seg
  constructor(
    private readonly mode: Deletion.VersionsMode,
    /** Every filter (but `olderThan` when `keepLatest` ranks entries regardless of age). */
    private readonly match: Deletion.Matcher,
    /** Every filter. */
    private readonly aged: Deletion.Matcher,
    startAfter: string
  ) {
    this.seg = { lo: startAfter, hi: undefined, pending: 0, closed: false }
  }

  /** The current key is complete: its selected entries become candidates of the open segment. */
  private endKey(out: Array<Cand>): void {
    const seg = this.seg
    const ctx = this.mode === "delete-markers" ? { keyHasVersions: this.hasVersions } : undefined
    for (const e of this.entries) {
      const v = e.v
      if (ctx !== undefined && !this.match.version(v, ctx)) continue
      seg.pending++
      out.push({
        key: v.key,
        // An empty VersionId: versioning was never enabled (docs/protocol.md §3), the key has this one version, and a
        // plain delete removes it; `versionId=` (empty) would address no version and delete nothing.
        versionId: v.versionId === "" ? undefined : v.versionId,
        size: v._tag === "Version" ? v.size : 0,
        lastModified: v.lastModified.getTime(),
        kind: v._tag === "Version" ? Kind.Version : Kind.Marker,
        seg,
        aged: ctx !== undefined ? this.aged.version(v, ctx) : e.aged
      })
    }
    this.entries = []
  }

  /** The candidates of the keys this page completed, with their segment (if any key was completed). */
  page(entries: ReadonlyArray<VersionEntry>, last: boolean): { cands: Array<Cand>; seg: Seg } | undefined {
    const out: Array<Cand> = []
    let completed: string | undefined
    for (const v of entries) {
      if (v.key !== this.key) {
        if (this.key !== undefined) {
          this.endKey(out)
          completed = this.key
        }
        this.key = v.key
        this.prevLastModified = undefined
        this.hasVersions = false
      }
      if (v._tag === "Version") this.hasVersions = true
      switch (this.mode) {
        case "all":
          if (this.match.version(v)) this.entries.push({ v, aged: this.aged.version(v) })
          break
        case "noncurrent": {
          const ctx = { noncurrentSince: this.prevLastModified }
          if (this.match.version(v, ctx)) this.entries.push({ v, aged: this.aged.version(v, ctx) })
          break
        }
        case "delete-markers":
          if (v._tag === "DeleteMarker") this.entries.push({ v, aged: false })
          break
        case "current":
          break
      }
      this.prevLastModified = v.lastModified
    }
    const seg = this.seg
    if (last) {
      if (this.key !== undefined) this.endKey(out)
      return { cands: out, seg }
    }
    if (completed === undefined) return undefined
    seg.hi = completed
    this.seg = { lo: completed, hi: undefined, pending: 0, closed: false }
    return { cands: out, seg }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the run
// ---------------------------------------------------------------------------------------------------------------

interface Resolved {
  readonly bucket: string | undefined
  readonly concurrency: number
  readonly listConcurrency: number
  readonly batchSize: number
  readonly maxDeletes: number | undefined
  readonly dryRun: boolean
  readonly quiet: boolean
  readonly maxAttempts: number
  readonly gracePeriod: Duration.Duration
  readonly sampleSize: number
  readonly progressInterval: Duration.Duration
  readonly options: Deletion.RunOptions
}

const fatalCodes: ReadonlySet<string> = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "RequestTimeTooSkewed",
  "NoSuchBucket",
  "InvalidBucketName"
])

/** Errors after which sending more requests is pointless: the run stops (docs/protocol.md §5). */
const isFatal = (e: CosError): boolean =>
  e._tag === "CosCredentialsError" || (e._tag === "CosServiceError" && (fatalCodes.has(e.code) || e.status === 403))

const errorCode = (e: CosError): string => (e._tag === "CosServiceError" ? e.code : e._tag)

const invalid = (reason: string) => new CosInvalidRequest({ operation: "Deletion.purge", reason })

const resolve = (options: Deletion.RunOptions): Effect.Effect<Resolved, CosInvalidRequest> => {
  const int = (name: string, v: number | undefined, def: number, min: number, max: number) => {
    const n = v ?? def
    if (!Number.isInteger(n) || n < min || n > max) {
      throw invalid(`${name} must be an integer from ${min} to ${max}, got ${v}`)
    }
    return n
  }
  return Effect.try({
    try: (): Resolved => ({
      bucket: options.bucket,
      concurrency: int("concurrency", options.concurrency, 8, 1, 1000),
      listConcurrency: int("listConcurrency", options.listConcurrency, 1, 1, 256),
      batchSize: int("batchSize", options.batchSize, 1000, 1, 1000),
      maxDeletes: options.maxDeletes === undefined
        ? undefined
        : int("maxDeletes", options.maxDeletes, 0, 0, Number.MAX_SAFE_INTEGER),
      dryRun: options.dryRun === true,
      quiet: options.quiet === true,
      maxAttempts: int("maxAttempts", options.maxAttempts, 10, 1, 100),
      gracePeriod: Duration.decode(options.gracePeriod ?? Duration.seconds(10)),
      sampleSize: int("sampleSize", options.sampleSize, 20, 0, 100_000),
      progressInterval: Duration.decode(options.progressInterval ?? Duration.seconds(1)),
      options
    }),
    catch: (e) => (e instanceof CosInvalidRequest ? e : invalid(String(e)))
  })
}

/** Exponential backoff with jitter: 100 ms, 200 ms, ... capped at 10 s, on Effect's Clock. */
const backoff = (attempt: number) =>
  Effect.flatMap(
    Random.nextRange(0.5, 1.5),
    (j) => Effect.sleep(Duration.millis(Math.min(10_000, 100 * Math.pow(2, attempt - 1)) * j))
  )

class Run {
  readonly tally: Tally
  stopping = false
  /** The error that ended the run (a listing failure, or a delete error that makes going on pointless). */
  fatal: unknown = undefined
  readonly stop: Deferred.Deferred<void>
  readonly checkpoints: Checkpoints | undefined
  private readonly checkpointLock = Effect.unsafeMakeSemaphore(1)

  constructor(
    readonly client: Client,
    readonly governor: Governor.Governor,
    readonly r: Resolved,
    stop: Deferred.Deferred<void>,
    startAfter: string | undefined,
    withCheckpoints: boolean
  ) {
    this.tally = new Tally(r.sampleSize)
    this.stop = stop
    this.checkpoints = withCheckpoints && r.options.onCheckpoint !== undefined
      ? new Checkpoints(startAfter ?? "")
      : undefined
  }

  readonly segDone = (seg: Seg): void => {
    this.checkpoints?.complete(seg)
  }

  /** Reports the checkpoint if it moved; serialised so reports never go backwards. */
  readonly reportCheckpoint: Effect.Effect<void> = Effect.suspend(() => {
    const cp = this.checkpoints
    const hook = this.r.options.onCheckpoint
    if (cp === undefined || hook === undefined || cp.frontier === cp.reported) return Effect.void
    return this.checkpointLock.withPermits(1)(Effect.suspend(() => {
      const f = cp.frontier
      if (f === undefined || f === "" || f === cp.reported) return Effect.void
      cp.reported = f
      return hook(f)
    }))
  })

  requestStop(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (!this.stopping) {
        this.stopping = true
        if (this.tally.stoppedBy === undefined) this.tally.stoppedBy = "interrupted"
      }
      return Deferred.succeed(this.stop, undefined)
    })
  }

  private markRequest = Effect.map(Clock.currentTimeMillis, (now) => {
    const t = this.tally
    t.requests++
    if (t.firstRequestAt === undefined) t.firstRequestAt = now
    t.lastRequestAt = now
  })

  private markDone = Effect.map(Clock.currentTimeMillis, (now) => {
    this.tally.lastRequestAt = now
  })

  /**
   * Whether to send a failed request again. The client has retried already (a few quick attempts); on top of that,
   * throttling is retried up to `maxAttempts` with growing backoff, so it slows the run down without failing it,
   * while other retryable failures (5xx, transport) get at most 3 more rounds.
   */
  private mayRetry(e: CosError, attempt: number): boolean {
    if (this.stopping || !isRetryable(e)) return false
    return attempt < (isThrottle(e) ? this.r.maxAttempts : Math.min(3, this.r.maxAttempts))
  }

  private countThrottle = Effect.zipRight(
    Effect.sync(() => this.tally.throttled++),
    Metric.increment(throttledRequests)
  )

  /**
   * Sends, counting every throttling answer the server sent: the client reports each one through `onThrottled`, on
   * every attempt (the ones it retries included); a client that does not (a test double) is counted by its final
   * error.
   */
  private counted<A>(send: Effect.Effect<A, CosError>): Effect.Effect<A, CosError> {
    return Effect.suspend(() => {
      let reported = 0
      return Effect.locally(send, onThrottled, Effect.zipRight(Effect.sync(() => reported++), this.countThrottle)).pipe(
        Effect.tapError((e) => (isThrottle(e) && reported === 0 ? this.countThrottle : Effect.void))
      )
    })
  }

  /** One request with the engine's own retry on top of the client's: throttling slows the run, never fails it. */
  request<A>(
    send: Effect.Effect<A, CosError>,
    throttled: Effect.Effect<void>
  ): Effect.Effect<A, CosError> {
    const loop = (attempt: number): Effect.Effect<A, CosError> =>
      Effect.zipRight(this.markRequest, this.counted(send)).pipe(
        Effect.tap(() => this.markDone),
        Effect.catchAll((e) => {
          const retry = this.mayRetry(e, attempt)
          return Effect.zipRight(
            Effect.zipRight(this.markDone, isThrottle(e) ? throttled : Effect.void),
            retry
              ? Effect.zipRight(
                Effect.zipRight(Effect.sync(() => this.tally.retries++), backoff(attempt)),
                Effect.suspend(() => loop(attempt + 1))
              )
              : Effect.fail(e)
          )
        })
      )
    return loop(1)
  }

  listObjects(prefix: string, marker: string | undefined): Effect.Effect<ListObjectsPage, CosError> {
    return Effect.zipRight(
      this.governor.acquireList,
      this.request(
        this.client.listObjects({ bucket: this.r.bucket, prefix, marker, maxKeys: 1000 }),
        this.governor.throttledList
      )
    )
  }

  listVersions(
    prefix: string,
    keyMarker: string | undefined,
    versionIdMarker: string | undefined
  ): Effect.Effect<ListVersionsPage, CosError> {
    return Effect.zipRight(
      this.governor.acquireList,
      this.request(
        this.client.listObjectVersions({ bucket: this.r.bucket, prefix, keyMarker, versionIdMarker, maxKeys: 1000 }),
        this.governor.throttledList
      )
    )
  }

  // --- outcomes ------------------------------------------------------------------------------------------------

  private handled(c: Cand): void {
    const seg = c.seg
    if (seg !== undefined && --seg.pending === 0 && seg.closed) this.segDone(seg)
  }

  private confirm(
    c: Cand,
    markerCreated: boolean,
    report: Array<Deletion.Deleted> | undefined
  ): void {
    const t = this.tally
    t.deleted++
    t.bytes += c.size
    if (markerCreated) t.deleteMarkersCreated++
    report?.push({ key: c.key, versionId: c.versionId, size: c.size, deleteMarkerCreated: markerCreated })
    this.handled(c)
  }

  private failKey(c: Cand, code: string, message: string): void {
    this.tally.fail(c, code, message)
    this.handled(c)
  }

  private afterBatch(deleted: number, failed: number, report: Array<Deletion.Deleted> | undefined) {
    const hook = this.r.options.onDeleted
    return Effect.zipRight(
      Effect.zipRight(
        countOnBatchSpan(deleted, failed),
        Effect.zipRight(
          deleted > 0 ? Metric.incrementBy(deletedKeys, deleted) : Effect.void,
          failed > 0 ? Metric.incrementBy(failedKeys, failed) : Effect.void
        )
      ),
      Effect.zipRight(
        hook !== undefined && report !== undefined && report.length > 0 ? hook(report) : Effect.void,
        this.reportCheckpoint
      )
    )
  }

  private onFatal(e: CosError): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.fatal === undefined) this.fatal = e
      if (this.tally.stoppedBy === undefined) this.tally.stoppedBy = "failed"
      return this.requestStop()
    })
  }

  /** Deletes keys one by one (keys that cannot travel in XML, or a batch COS refused as a whole). */
  private singles(items: ReadonlyArray<Cand>): Effect.Effect<void> {
    return Effect.forEach(items, (c) =>
      Effect.suspend(() => {
        if (this.stopping) {
          this.tally.skipped++
          return Effect.void
        }
        const problem = keyProblem(c.key)
        if (problem !== undefined) {
          this.failKey(c, "InvalidKey", problem)
          return this.afterBatch(0, 1, undefined)
        }
        const report = this.r.options.onDeleted !== undefined ? [] as Array<Deletion.Deleted> : undefined
        const onSend = this.r.options.onSend
        const send = this.client.deleteObject({ bucket: this.r.bucket, key: c.key, versionId: c.versionId })
        return Effect.zipRight(
          this.governor.acquireWrite(1),
          this.request(
            onSend === undefined ? send : Effect.zipRight(onSend([c]), send),
            this.governor.throttledWrite
          ).pipe(
            Effect.matchEffect({
              onSuccess: (res) => {
                this.confirm(c, res.deleteMarker && c.versionId === undefined, report)
                return this.afterBatch(1, 0, report)
              },
              onFailure: (e) => {
                this.failKey(c, errorCode(e), e.message)
                return Effect.zipRight(this.afterBatch(0, 1, undefined), isFatal(e) ? this.onFatal(e) : Effect.void)
              }
            }),
            Effect.onInterrupt(() =>
              Effect.sync(() => this.failKey(c, "Interrupted", "cut off at the end of the grace period: not confirmed"))
            )
          )
        )
      }), { discard: true })
  }

  /** One batch: sent, per-key errors retried as smaller batches, every key accounted exactly once. */
  deleteBatch(batch: Array<Cand>): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.stopping) {
        this.tally.skipped += batch.length
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
      const onStart = this.r.options.onBatchStart
      const start = onStart === undefined ? Effect.void : onStart(batch)
      const main = safe.length > 0 ? this.sendBatch(safe, 1) : Effect.void
      const rest = unsafe === undefined ? Effect.void : this.singles(unsafe)
      return Effect.zipRight(start, Effect.zipRight(Effect.zipRight(main, rest), batchOutcome))
    }).pipe(Effect.withSpan("Deletion.deleteBatch", { attributes: { keys: batch.length } }))
  }

  private sendBatch(items: Array<Cand>, attempt: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      let open = true // items not yet accounted, for the grace-period cut-off
      return Effect.zipRight(
        this.governor.acquireWrite(items.length),
        Effect.suspend(() => {
          if (this.stopping && attempt === 1) {
            open = false
            this.tally.skipped += items.length
            return Effect.void
          }
          const onSend = this.r.options.onSend
          return Effect.zipRight(
            onSend === undefined ? this.markRequest : Effect.zipRight(onSend(items), this.markRequest),
            this.counted(this.client.deleteObjects({ bucket: this.r.bucket, objects: items, quiet: this.r.quiet }))
          ).pipe(
            Effect.tap(() => this.markDone),
            Effect.matchEffect({
              onFailure: (e) => {
                open = false
                return Effect.zipRight(this.markDone, this.batchFailed(items, attempt, e))
              },
              onSuccess: (res) => {
                open = false
                return this.batchAnswered(items, attempt, res)
              }
            })
          )
        })
      ).pipe(Effect.onInterrupt(() =>
        Effect.sync(() => {
          if (!open) return
          open = false
          for (const c of items) this.failKey(c, "Interrupted", "cut off at the end of the grace period: not confirmed")
        })
      ))
    })
  }

  private batchFailed(items: Array<Cand>, attempt: number, e: CosError): Effect.Effect<void> {
    // (counted as throttled where it was sent: `counted`)
    const pre = isThrottle(e) ? this.governor.throttledWrite : Effect.void
    if (this.mayRetry(e, attempt)) {
      return Effect.zipRight(
        pre,
        Effect.zipRight(
          Effect.zipRight(Effect.sync(() => this.tally.retries++), backoff(attempt)),
          this.sendBatch(items, attempt + 1)
        )
      )
    }
    if (e._tag === "CosInvalidRequest") {
      // The client refused the batch as a whole (a key it cannot send): try the keys one by one.
      return this.singles(items)
    }
    return Effect.zipRight(
      pre,
      Effect.suspend(() => {
        const code = errorCode(e)
        for (const c of items) this.failKey(c, code, e.message)
        return Effect.zipRight(this.afterBatch(0, items.length, undefined), isFatal(e) ? this.onFatal(e) : Effect.void)
      })
    )
  }

  private batchAnswered(
    items: Array<Cand>,
    attempt: number,
    res: {
      readonly deleted: ReadonlyArray<
        { readonly key: string; readonly versionId?: string | undefined; readonly deleteMarker: boolean }
      >
      readonly errors: ReadonlyArray<
        {
          readonly key: string
          readonly versionId?: string | undefined
          readonly code: string
          readonly message: string
        }
      >
      readonly missing: ReadonlyArray<ObjectIdentifier>
    }
  ): Effect.Effect<void> {
    return Effect.suspend(() => {
      const report = this.r.options.onDeleted !== undefined ? [] as Array<Deletion.Deleted> : undefined
      const n = items.length
      let deleted = 0
      let failed = 0
      let retry: Array<Cand> | undefined
      let throttledKeys = 0
      const deletedEntries = res.deleted
      if (
        res.errors.length === 0 && res.missing.length === 0 && deletedEntries.length === n &&
        inOrder(items, deletedEntries)
      ) {
        // The common case: every key confirmed, in the order sent.
        for (let i = 0; i < n; i++) {
          const c = items[i]!
          this.confirm(c, deletedEntries[i]!.deleteMarker && c.versionId === undefined, report)
        }
        deleted = n
      } else {
        const byId = new Map<string, Cand>()
        const dups: Array<Cand> = []
        for (const c of items) {
          const id = identity(c.key, c.versionId)
          if (byId.has(id)) dups.push(c)
          else byId.set(id, c)
        }
        const find = (key: string, versionId: string | undefined) => {
          const id = identity(key, versionId)
          let c = byId.get(id)
          if (c !== undefined) {
            byId.delete(id)
            return c
          }
          if (versionId !== undefined) {
            c = byId.get(key)
            if (c !== undefined) byId.delete(key)
          }
          return c
        }
        for (const d of deletedEntries) {
          const c = find(d.key, d.versionId)
          if (c === undefined) continue // an entry for a key not sent: ignored, never counted
          this.confirm(c, d.deleteMarker && c.versionId === undefined, report)
          deleted++
        }
        for (const e of res.errors) {
          const c = find(e.key, e.versionId)
          if (c === undefined) continue
          if (isRetryableCode(e.code) && attempt < this.r.maxAttempts && !this.stopping) {
            if (e.code === "SlowDown") throttledKeys++
            ;(retry ??= []).push(c)
          } else {
            this.failKey(c, e.code, e.message)
            failed++
          }
        }
        // Sent but named nowhere in a non-quiet reply: not confirmed, so not deleted.
        for (const c of byId.values()) {
          this.failKey(c, "NotConfirmed", "COS named this key neither deleted nor failed in its reply")
          failed++
        }
        if (dups.length > 0) (retry ??= []).push(...dups)
      }
      const after = this.afterBatch(deleted, failed, report)
      if (retry === undefined) return after
      const again = retry
      this.tally.retries++
      const throttle = throttledKeys > 0
        ? Effect.zipRight(
          Effect.sync(() => this.tally.throttled++),
          Effect.zipRight(this.governor.throttledWrite, Metric.increment(throttledRequests))
        )
        : Effect.void
      return Effect.zipRight(
        after,
        Effect.zipRight(throttle, Effect.zipRight(backoff(attempt), this.sendBatch(again, attempt + 1)))
      )
    })
  }

  progress(): Effect.Effect<Deletion.Progress> {
    return Effect.map(Clock.currentTimeMillis, (now) => {
      const t = this.tally
      return {
        listed: t.listed,
        matched: t.matched,
        deleted: t.deleted,
        failed: t.failed,
        throttled: t.throttled,
        elapsedMs: now - t.startedAt
      }
    })
  }

  summary(bucket: string, prefix: string, versions: Deletion.VersionsMode): Deletion.Summary {
    const t = this.tally
    const notes = Array.from(t.notes)
    if (t.deleteMarkersCreated > 0) {
      notes.push(
        `versioned bucket: ${t.deleteMarkersCreated} deletes only added delete markers (the data is kept as ` +
          `noncurrent versions); use versions mode "all" or "noncurrent" to remove it`
      )
    }
    if (t.kept > 0) notes.push(`kept the ${t.kept} newest matching keys (keepLatest)`)
    return {
      dryRun: this.r.dryRun,
      bucket,
      prefix,
      versions,
      listed: t.listed,
      matched: t.matched,
      matchedBytes: t.matchedBytes,
      deleted: t.deleted,
      bytes: t.bytes,
      failed: t.failed,
      failures: t.failures.slice(),
      skipped: t.skipped,
      kept: t.kept,
      sample: t.sample.slice(),
      breakdown: { objects: t.objects, versions: t.versions, deleteMarkers: t.deleteMarkers },
      deleteMarkersCreated: t.deleteMarkersCreated,
      requests: t.requests,
      retries: t.retries,
      throttled: t.throttled,
      durationMs: t.firstRequestAt === undefined || t.lastRequestAt === undefined
        ? 0
        : t.lastRequestAt - t.firstRequestAt,
      stoppedBy: t.stoppedBy,
      notes
    }
  }
}

const identity = (key: string, versionId: string | undefined) =>
  versionId === undefined ? key : `${key}\u0000${versionId}`

const inOrder = (
  items: ReadonlyArray<Cand>,
  deleted: ReadonlyArray<{ readonly key: string; readonly versionId?: string | undefined }>
): boolean => {
  for (let i = 0; i < items.length; i++) {
    const c = items[i]!
    const d = deleted[i]!
    if (c.key !== d.key) return false
    if (d.versionId !== undefined && d.versionId !== c.versionId) return false
  }
  return true
}

// ---------------------------------------------------------------------------------------------------------------
// sources
// ---------------------------------------------------------------------------------------------------------------

/** Listed candidates with the segment they complete (its bounds final, its candidates all here). */
interface Portion {
  readonly cands: ReadonlyArray<Cand>
  readonly seg: Seg | undefined
  readonly listed: number
}

const objectsSource = (
  run: Run,
  filters: Deletion.Filters,
  now: number,
  keep: KeepLatest | undefined
): Stream.Stream<Portion, CosError> => {
  const p = compileFilters(filters, now)
  const startAfter = run.r.options.startAfter
  const cutoff = p.cutoff
  // keepLatest ranks every object that passes the other filters, aged or not (Deletion.Filters.keepLatest).
  const ranked = keep !== undefined
  const checkSize = p.minSize !== undefined || p.maxSize !== undefined
  const keyOk = p.key
  return listPages({
    prefix: filters.prefix,
    startAfter,
    concurrency: run.r.listConcurrency,
    fetch: (marker) => run.listObjects(filters.prefix, marker)
  }).pipe(Stream.map((page: ListedPage): Portion => {
    const contents = page.contents
    const seg: Seg = { lo: page.lo, hi: page.hi, pending: 0, closed: false }
    const cands: Array<Cand> = []
    for (let i = 0; i < contents.length; i++) {
      const o: ObjectSummary = contents[i]!
      const lastModified = o.lastModified.getTime()
      const aged = cutoff === undefined || lastModified < cutoff
      if (!aged && !ranked) continue
      if (checkSize && !sizeOk(p, o.size)) continue
      if (!keyOk(o.key)) continue
      cands.push({
        key: o.key,
        versionId: undefined,
        size: o.size,
        // keepLatest ranks candidates by this, with or without olderThan.
        lastModified,
        kind: Kind.Object,
        seg,
        aged
      })
    }
    seg.pending = cands.length
    return { cands, seg, listed: contents.length }
  }))
}

const versionsSource = (
  run: Run,
  filters: Deletion.Filters,
  mode: Deletion.VersionsMode,
  now: number,
  keep: KeepLatest | undefined
): Stream.Stream<Portion, CosError> => {
  const startAfter = run.r.options.startAfter
  const aged = matcher(filters, now)
  // keepLatest ranks every entry that passes the other filters, aged or not (Deletion.Filters.keepLatest).
  const ranked = keep !== undefined && filters.olderThan !== undefined
    ? matcher({ ...filters, olderThan: undefined }, now)
    : aged
  const selector = new VersionsSelector(mode, ranked, aged, startAfter ?? "")
  type State = { readonly keyMarker: string | undefined; readonly versionIdMarker: string | undefined }
  return Stream.paginateChunkEffect<State, Portion, CosError, never>(
    { keyMarker: startAfter, versionIdMarker: undefined },
    (s) =>
      Effect.map(run.listVersions(filters.prefix, s.keyMarker, s.versionIdMarker), (page) => {
        const last = !page.isTruncated || page.nextKeyMarker === undefined
        const done = selector.page(page.versions, last)
        const portion: Portion = done === undefined
          ? { cands: [], seg: undefined, listed: page.versions.length }
          : { cands: done.cands, seg: done.seg, listed: page.versions.length }
        return [
          Chunk.of(portion),
          last
            ? Option.none()
            : Option.some({ keyMarker: page.nextKeyMarker, versionIdMarker: page.nextVersionIdMarker })
        ]
      })
  ).pipe(Stream.buffer({ capacity: 2 })) // the next page is listed while this one is deleted
}

// ---------------------------------------------------------------------------------------------------------------
// pipeline and lifecycle
// ---------------------------------------------------------------------------------------------------------------

/** listing -> selection -> batches -> bounded-concurrency deletes. */
const pipeline = <E>(run: Run, source: Stream.Stream<Portion, E>, keep: KeepLatest | undefined) => {
  const r = run.r
  const selector = new Selector(run.tally, r.batchSize, r.maxDeletes, keep, r.dryRun, run.segDone)
  const batches = source.pipe(
    // A listing failure (after retries) stops the run like a stop signal: the batches in flight finish, the rest is
    // skipped, and the run then fails with the error.
    Stream.catchAll((e) =>
      Stream.execute(Effect.suspend(() => {
        if (run.fatal === undefined) run.fatal = e
        if (run.tally.stoppedBy === undefined) run.tally.stoppedBy = "failed"
        return run.requestStop()
      }))
    ),
    Stream.interruptWhen(Deferred.await(run.stop)),
    Stream.takeWhile(() => !selector.capReached && !run.stopping),
    Stream.mapEffect((p) => {
      run.tally.listed += p.listed
      const out = selector.push(p.cands, p.seg)
      return Effect.as(run.reportCheckpoint, out)
    }),
    Stream.concat(Stream.suspend(() => Stream.succeed(selector.finish(run.stopping)))),
    Stream.flattenIterables
  )
  const drained = r.dryRun
    ? Stream.runDrain(batches)
    : Stream.runDrain(
      Stream.mapEffect(batches, (b) => run.deleteBatch(b), { concurrency: r.concurrency, unordered: true })
    )
  return Effect.zipRight(drained, run.reportCheckpoint)
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
  info: { readonly bucket: string; readonly prefix: string; readonly versions: Deletion.VersionsMode }
): Effect.Effect<Deletion.Summary, E | CosError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const o = run.r.options
      run.tally.startedAt = yield* Clock.currentTimeMillis
      const helpers: Array<Fiber.RuntimeFiber<unknown, unknown>> = []
      const fiber = yield* Effect.forkDaemon(restore(work))
      const onProgress = o.onProgress
      if (onProgress !== undefined) {
        const tick = Effect.flatMap(Effect.suspend(() => run.progress()), onProgress)
        helpers.push(
          yield* Effect.forkDaemon(restore(Effect.repeat(Effect.delay(tick, run.r.progressInterval), Schedule.forever)))
        )
      }
      if (o.stopSignal !== undefined) {
        helpers.push(yield* Effect.forkDaemon(restore(Effect.zipRight(o.stopSignal, run.requestStop()))))
      }
      // After a stop, the batches in flight get the grace period; then they are cut off (keys: "Interrupted").
      helpers.push(
        yield* Effect.forkDaemon(restore(
          Effect.zipRight(
            Deferred.await(run.stop),
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
      const summary = run.summary(info.bucket, info.prefix, info.versions)
      if (onProgress !== undefined) yield* Effect.exit(Effect.flatMap(run.progress(), onProgress))
      if (o.onSummary !== undefined) yield* Effect.exit(o.onSummary(summary))
      if (callerInterrupted) return yield* Effect.interrupt
      if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) return yield* Effect.failCause(exit.cause)
      if (run.fatal !== undefined) return yield* Effect.fail(run.fatal as E | CosError)
      return summary
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

/** @internal */
export const purge = (options: Deletion.PurgeOptions): Effect.Effect<Deletion.Summary, CosError, CosClient> =>
  Effect.gen(function*() {
    const r = yield* resolve(options)
    const prefix = options.prefix
    if (typeof prefix !== "string") return yield* invalid("a prefix is required")
    if (prefix === "" && options.allowWholeBucket !== true) {
      return yield* invalid(
        "an empty prefix selects every key of the bucket; set allowWholeBucket (--allow-whole-bucket) to mean it"
      )
    }
    const mode = options.versions ?? "current"
    if (!["current", "all", "noncurrent", "delete-markers"].includes(mode)) {
      return yield* invalid(`unknown versions mode ${JSON.stringify(mode)}`)
    }
    if (options.olderThan instanceof Date && Number.isNaN(options.olderThan.getTime())) {
      return yield* invalid("olderThan is an invalid date")
    }
    for (const [name, globs] of [["include", options.include], ["exclude", options.exclude]] as const) {
      for (const g of globs ?? []) {
        const problem = globProblem(g)
        if (problem !== undefined) return yield* invalid(`${name} glob ${JSON.stringify(g)} is not valid: ${problem}`)
      }
    }
    for (const [name, v] of [["minSize", options.minSize], ["maxSize", options.maxSize]] as const) {
      if (v !== undefined && !(v >= 0)) return yield* invalid(`${name} must be a number of bytes >= 0, got ${v}`)
    }
    if (
      options.keepLatest !== undefined && !(Number.isInteger(options.keepLatest.count) && options.keepLatest.count >= 0)
    ) {
      return yield* invalid(`keepLatest.count must be an integer >= 0, got ${options.keepLatest.count}`)
    }
    const target = options.target ?? "objects"
    if (target === "incompleteUploads") return yield* purgeUploads(options, r)
    if (target !== "objects") return yield* invalid(`unknown target ${JSON.stringify(target)}`)
    const keep = yield* Effect.try({
      try: () => makeKeepLatest(options.keepLatest),
      catch: (e) => invalid(`keepLatest.groupBy is not a valid regular expression: ${(e as Error).message}`)
    })
    const client = yield* CosClient
    const bucket = options.bucket ?? client.defaultBucket
    if (bucket === undefined) return yield* invalid("no bucket: name one in the options or in the client")
    const governor = yield* governorFor(client, options)
    const now = yield* Clock.currentTimeMillis
    const stop = yield* Deferred.make<void>()
    const run = new Run(client, governor, { ...r, bucket }, stop, options.startAfter, true)
    if (mode !== "current" && r.listConcurrency > 1) {
      run.tally.notes.add("versions are listed sequentially: listConcurrency applies to current objects only")
    }
    const source = mode === "current"
      ? objectsSource(run, options, now, keep)
      : versionsSource(run, options, mode, now, keep)
    yield* Effect.annotateCurrentSpan({ bucket, versions: mode })
    return yield* execute(run, pipeline(run, source, keep), { bucket, prefix, versions: mode }).pipe(
      Effect.tap((s) =>
        Effect.annotateCurrentSpan({
          listed: s.listed,
          matched: s.matched,
          deleted: s.deleted,
          failed: s.failed,
          skipped: s.skipped,
          outcome: s.failed > 0 ? "failed" : s.stoppedBy ?? "completed"
        })
      )
    )
  }).pipe(
    Effect.withSpan("Deletion.purge", { attributes: { prefix: options.prefix, dryRun: options.dryRun === true } })
  )

/** @internal */
export const deleteKeys = <E, R>(
  keys: Stream.Stream<ObjectIdentifier & { readonly size?: number | undefined }, E, R>,
  options: Deletion.RunOptions = {}
): Effect.Effect<Deletion.Summary, CosError | E, CosClient | R> =>
  Effect.gen(function*() {
    const r = yield* resolve(options)
    const client = yield* CosClient
    const bucket = options.bucket ?? client.defaultBucket
    if (bucket === undefined) return yield* invalid("no bucket: name one in the options or in the client")
    const governor = yield* governorFor(client, options)
    const stop = yield* Deferred.make<void>()
    const run = new Run(client, governor, { ...r, bucket }, stop, undefined, false)
    const context = yield* Effect.context<R>()
    const source: Stream.Stream<Portion, E> = keys.pipe(
      Stream.mapChunks((chunk) => {
        const cands: Array<Cand> = []
        for (const k of chunk) {
          const hasVersion = k.versionId !== undefined
          // Caller-supplied keys are checked here, so one bad key fails alone instead of its whole batch.
          const problem = typeof k.key === "string" ? keyProblem(k.key) : "an object key must be a string"
          if (problem !== undefined) {
            run.tally.matched++
            run.tally.fail(
              {
                key: String(k.key),
                versionId: k.versionId,
                size: 0,
                lastModified: 0,
                kind: Kind.Object,
                seg: undefined,
                aged: true
              },
              "InvalidKey",
              problem
            )
            continue
          }
          cands.push({
            key: k.key,
            versionId: k.versionId,
            size: k.size ?? 0,
            lastModified: 0,
            kind: hasVersion ? Kind.Version : Kind.Object,
            seg: undefined,
            aged: true
          })
        }
        return Chunk.of<Portion>({ cands, seg: undefined, listed: cands.length })
      }),
      Stream.provideContext(context)
    )
    return yield* execute(run, pipeline(run, source, undefined), { bucket, prefix: "", versions: "current" })
  }).pipe(Effect.withSpan("Deletion.deleteKeys"))

// ---------------------------------------------------------------------------------------------------------------
// incomplete multipart uploads (docs/protocol.md "Multipart uploads")
// ---------------------------------------------------------------------------------------------------------------

const uploadLabel = (u: MultipartUpload) => `${u.key} [upload ${u.uploadId}]`

/**
 * `purge` with `target: "incompleteUploads"`: lists open uploads under the prefix (page by page, under the listing
 * budget), selects them with the same key filters and `olderThan` on `Initiated`, and aborts each one (one write of
 * the governor's budget per upload) with the run's retries, stop handling, progress and summary. An upload already
 * gone when aborted (404 NoSuchUpload: completed or aborted meanwhile) is counted as skipped, with a note, and not
 * reported to `onDeleted`.
 */
const purgeUploads = (
  options: Deletion.PurgeOptions,
  resolved: Resolved
): Effect.Effect<Deletion.Summary, CosError, CosClient> =>
  Effect.gen(function*() {
    const refuse = (field: string) =>
      invalid(`${field} does not apply to incomplete uploads (they have no size, versions or ranking); remove it`)
    if (options.versions !== undefined && options.versions !== "current") return yield* refuse("versions")
    if (options.minSize !== undefined) return yield* refuse("minSize")
    if (options.maxSize !== undefined) return yield* refuse("maxSize")
    if (options.keepLatest !== undefined) return yield* refuse("keepLatest")
    const client = yield* CosClient
    const bucket = options.bucket ?? client.defaultBucket
    if (bucket === undefined) return yield* invalid("no bucket: name one in the options or in the client")
    const governor = yield* governorFor(client, options)
    const now = yield* Clock.currentTimeMillis
    const stop = yield* Deferred.make<void>()
    const onSummary = options.onSummary
    const tagged = (s: Deletion.Summary): Deletion.Summary => ({ ...s, target: "incompleteUploads" })
    const runOptions: Deletion.PurgeOptions = {
      ...options,
      onSummary: onSummary === undefined ? undefined : (s) => onSummary(tagged(s))
    }
    const run = new Run(client, governor, { ...resolved, bucket, options: runOptions }, stop, undefined, false)
    const t = run.tally
    if (resolved.listConcurrency > 1) t.notes.add("incomplete uploads are listed sequentially")
    if (options.startAfter !== undefined && options.startAfter !== "") {
      t.notes.add("startAfter is ignored for incomplete uploads: the listing starts from the prefix")
    }
    // The filters without sizes: `olderThan` counts from Initiated, as COS lifecycle's AbortIncompleteMultipartUpload.
    const match = matcher(
      { prefix: options.prefix, include: options.include, exclude: options.exclude, olderThan: options.olderThan },
      now
    )
    const prefix = options.prefix
    const page = (cursor: UploadsCursor) =>
      Effect.zipRight(
        governor.acquireList,
        run.request(
          client.listMultipartUploads({
            bucket,
            prefix: prefix === "" ? undefined : prefix,
            keyMarker: cursor.keyMarker,
            uploadIdMarker: cursor.uploadIdMarker
          }),
          governor.throttledList
        )
      ).pipe(Effect.flatMap((p: ListMultipartUploadsPage) => {
        const next = nextUploadsCursor(p, cursor)
        if (typeof next === "string") {
          return Effect.fail(
            new CosDecodeError({ operation: "Deletion.purge", status: 200, detail: next, bodySnippet: "" })
          )
        }
        return Effect.succeed(
          [Chunk.unsafeFromArray(p.uploads), next === undefined ? Option.none() : Option.some(next)] as const
        )
      }))

    let sent = 0
    let capReached = false
    let alreadyGone = 0
    const select = (u: MultipartUpload): boolean => {
      t.listed++
      if (!match.object({ key: u.key, lastModified: u.initiated, etag: "", size: 0, storageClass: u.storageClass })) {
        return false
      }
      t.matched++
      t.objects++
      if (capReached || (resolved.maxDeletes !== undefined && sent >= resolved.maxDeletes)) {
        capReached = true
        t.stoppedBy = "maxDeletes"
        t.skipped++
        return false
      }
      sent++
      if (t.sample.length < t.sampleSize) t.sample.push(uploadLabel(u))
      return !resolved.dryRun
    }

    const fail = (u: MultipartUpload, code: string, message: string) =>
      Effect.sync(() => {
        t.failed++
        if (t.failures.length < t.sampleSize) t.failures.push({ key: u.key, uploadId: u.uploadId, code, message })
      })

    const abort = (u: MultipartUpload): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (run.stopping) {
          t.skipped++
          return Effect.void
        }
        return Effect.zipRight(
          governor.acquireWrite(1),
          run.request(
            client.abortMultipartUpload({ bucket, key: u.key, uploadId: u.uploadId }),
            governor.throttledWrite
          )
        ).pipe(
          // Cut off after the grace period: counted failed, since nobody knows whether COS aborted it.
          Effect.onInterrupt(() => fail(u, "Interrupted", "the run was cut off before COS answered")),
          Effect.matchCauseEffect({
            onSuccess: () => {
              t.deleted++
              const report = options.onDeleted
              return report === undefined
                ? Effect.void
                : report([{ key: u.key, uploadId: u.uploadId, deleteMarkerCreated: false }])
            },
            onFailure: (cause) => {
              if (Cause.isInterruptedOnly(cause)) return Effect.void // counted by onInterrupt
              const e = Cause.squash(cause) as CosError
              if (e._tag === "CosServiceError" && e.code === "NoSuchUpload") {
                return Effect.sync(() => {
                  alreadyGone++
                  t.skipped++
                })
              }
              const failed = fail(u, errorCode(e), e.message)
              if (!isFatal(e)) return failed
              return Effect.zipRight(
                failed,
                Effect.suspend(() => {
                  if (run.fatal === undefined) run.fatal = e
                  return run.requestStop()
                })
              )
            }
          })
        )
      })

    const work = Stream.paginateChunkEffect<UploadsCursor, MultipartUpload, CosError, never>(
      { keyMarker: "", uploadIdMarker: "" },
      page
    ).pipe(
      Stream.catchAll((e) =>
        Stream.execute(Effect.suspend(() => {
          if (run.fatal === undefined) run.fatal = e
          return run.requestStop()
        }))
      ),
      Stream.interruptWhen(Deferred.await(run.stop)),
      Stream.takeWhile(() => !capReached && !run.stopping),
      Stream.filter(select),
      Stream.mapEffect(abort, { concurrency: resolved.concurrency, unordered: true }),
      Stream.runDrain,
      Effect.ensuring(Effect.sync(() => {
        if (alreadyGone > 0) {
          t.notes.add(
            `${alreadyGone} uploads were already gone when aborted (NoSuchUpload: completed or aborted meanwhile); ` +
              "counted as skipped"
          )
        }
      }))
    )
    const summary = yield* execute(run, work, { bucket, prefix, versions: "current" })
    return tagged(summary)
  })
