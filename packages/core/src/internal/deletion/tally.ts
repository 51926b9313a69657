/**
 * What a run counts, the metrics it feeds, and the progress and summary made from the counts.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import type { MultipartUpload } from "../../CosClient.js"
import type * as Deletion from "../../Deletion.js"
import type { Cand } from "./segments.js"

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
// the tally
// ---------------------------------------------------------------------------------------------------------------

/** @internal */
export class Tally {
  listed = 0
  matched = 0
  matchedBytes = 0
  deleted = 0
  bytes = 0
  failed = 0
  readonly failures: Array<Deletion.Failure> = []
  skipped = 0
  /** Keys and bytes a cap left in place (matched, not sent). */
  capLeft = 0
  capLeftBytes = 0
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
  /** Incomplete uploads already gone when aborted (NoSuchUpload), counted as skipped. */
  uploadsGone = 0
  readonly notes = new Set<string>()
  /** Failures not yet handed to the caller's `onFailed` (only kept when there is one), every one of them. */
  readonly unreported: Array<Deletion.Failure> | undefined
  constructor(readonly sampleSize: number, reportFailures = false) {
    this.unreported = reportFailures ? [] : undefined
  }

  fail(c: { readonly key: string; readonly versionId: string | undefined }, code: string, message: string): void {
    this.failed++
    if (this.failures.length < this.sampleSize || this.unreported !== undefined) {
      const f: Deletion.Failure = { key: c.key, versionId: c.versionId, code, message }
      if (this.failures.length < this.sampleSize) this.failures.push(f)
      this.unreported?.push(f)
    }
  }

  /** An abort of an incomplete upload failed. */
  failUpload(u: MultipartUpload, code: string, message: string): void {
    this.failed++
    if (this.failures.length < this.sampleSize || this.unreported !== undefined) {
      const f: Deletion.Failure = { key: u.key, uploadId: u.uploadId, code, message }
      if (this.failures.length < this.sampleSize) this.failures.push(f)
      this.unreported?.push(f)
    }
  }

  /** The failures since the last call, for `onFailed` (none without one). */
  takeUnreported(): ReadonlyArray<Deletion.Failure> {
    if (this.unreported === undefined || this.unreported.length === 0) return []
    return this.unreported.splice(0, this.unreported.length)
  }

  /** A request goes out. */
  requestSent(now: number): void {
    this.requests++
    if (this.firstRequestAt === undefined) this.firstRequestAt = now
    this.lastRequestAt = now
  }

  /** A request got its answer (or failed). */
  requestDone(now: number): void {
    this.lastRequestAt = now
  }
}

/** @internal */
export const label = (c: Cand) => c.versionId === undefined ? c.key : `${c.key} [version ${c.versionId}]`

/** @internal */
export const uploadLabel = (u: MultipartUpload) => `${u.key} [upload ${u.uploadId}]`

/** @internal */
export const progress = (t: Tally, now: number): Deletion.Progress => ({
  listed: t.listed,
  matched: t.matched,
  deleted: t.deleted,
  failed: t.failed,
  throttled: t.throttled,
  elapsedMs: now - t.startedAt
})

/** @internal */
export const summary = (
  t: Tally,
  info: {
    readonly dryRun: boolean
    readonly bucket: string
    readonly prefix: string
    readonly versions: Deletion.VersionsMode
    readonly stoppedBy: Deletion.Summary["stoppedBy"]
    readonly capped?: string | undefined
    /** Set for incomplete uploads only: an objects summary has no `target`. */
    readonly target?: "incompleteUploads" | undefined
  }
): Deletion.Summary => {
  const notes = Array.from(t.notes)
  if (t.uploadsGone > 0) {
    notes.push(
      `${t.uploadsGone} uploads were already gone when aborted (NoSuchUpload: completed or aborted meanwhile); ` +
        "counted as skipped"
    )
  }
  if (t.deleteMarkersCreated > 0) {
    notes.push(
      `versioned bucket: ${t.deleteMarkersCreated} deletes only added delete markers (the data is kept as ` +
        `noncurrent versions); use versions mode "all" or "noncurrent" to remove it`
    )
  }
  if (t.kept > 0) notes.push(`kept the ${t.kept} newest matching keys (keepLatest)`)
  return {
    dryRun: info.dryRun,
    bucket: info.bucket,
    prefix: info.prefix,
    versions: info.versions,
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
    stoppedBy: info.stoppedBy,
    ...(info.capped === undefined ? {} : { left: { keys: t.capLeft, bytes: t.capLeftBytes } }),
    notes,
    ...(info.target === undefined ? {} : { target: info.target })
  }
}
