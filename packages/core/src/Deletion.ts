/**
 * The deletion engine: a stream of candidates, filtered, grouped into batches of up to 1000, deleted with bounded
 * concurrency under a throughput governor, with exact per-key outcomes.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { CosClient, ObjectIdentifier, ObjectSummary, VersionEntry } from "./CosClient.js"
import type { CosError } from "./CosError.js"
import * as internal from "./internal/deletion.js"
import * as glob from "./internal/glob.js"

/**
 * What to do on a versioned bucket (docs/protocol.md §6, §7):
 * - `current`: plain DELETE of current objects; on a versioned bucket this only adds delete markers.
 * - `all`: every version and every delete marker (a true purge).
 * - `noncurrent`: only noncurrent versions, aged from the moment they became noncurrent.
 * - `delete-markers`: only delete markers with no remaining versions.
 *
 * @since 0.1.0
 * @category models
 */
export type VersionsMode = "current" | "all" | "noncurrent" | "delete-markers"

/**
 * Every versions mode, in the order the docs list them: the one list the engine, the daemon's configuration and
 * the CLI's `--versions` accept.
 *
 * @since 0.2.0
 * @category models
 */
export const versionsModes: readonly ["current", "all", "noncurrent", "delete-markers"] = internal.versionsModes

/**
 * @since 0.1.0
 * @category models
 */
export interface Filters {
  /** Only keys under this prefix. An empty prefix (the whole bucket) needs `allowWholeBucket`. */
  readonly prefix: string
  /**
   * Glob patterns matched against the whole key; a key must match one of them, if any are given. `*` is any run of
   * characters but `/` (possibly empty), `?` one of them, `[...]` one character of the class; `**` as a whole
   * segment is any run of characters, `/` included (`logs/**` is everything under `logs/`); `{a,b}` alternatives.
   * Dotfiles, `.`/`..` segments and line terminators are matched like any other character (see {@link globRegExp}).
   */
  readonly include?: ReadonlyArray<string> | undefined
  /** Glob patterns (as for `include`); a key matching any of them is never deleted. */
  readonly exclude?: ReadonlyArray<string> | undefined
  /**
   * Only objects last modified before this bound: a duration counted back from the start of the run, or a date. A
   * string is read by `Units.parseAge` (`30d`, `1h30m`, `7 days`, `2026-01-31`, `2026-01-31T08:00:00+08:00`;
   * a date-time without a zone is refused), as in the daemon's rules and the CLI.
   */
  readonly olderThan?: Duration.DurationInput | Date | string | undefined
  /**
   * Only objects last modified after this bound (same forms as `olderThan`). With both, `newerThan`'s bound must be
   * before `olderThan`'s (else nothing could match, and the run is refused). Incomplete uploads are aged from
   * `Initiated`, noncurrent versions from when they became noncurrent; `keepLatest` ranks regardless of either.
   *
   * @since 0.2.0
   */
  readonly newerThan?: Duration.DurationInput | Date | string | undefined
  /** Only objects of at least this many bytes. */
  readonly minSize?: number | undefined
  /** Only objects of at most this many bytes. */
  readonly maxSize?: number | undefined
  readonly versions?: VersionsMode | undefined
  /**
   * Keep the `count` newest objects (by LastModified) under the prefix whatever their age; with `groupBy` (a regular
   * expression whose first capture group, or whole match, names the group) the newest `count` of each group. The
   * ranking counts every object (or version, in the versions modes) that passes the other filters (globs, sizes,
   * versions mode) but not `olderThan`; what is outside the newest `count` is then deleted if it also passes
   * `olderThan`. So 10 daily backups (0 to 9 days old) with `keepLatest: 7, olderThan: 2d` lose the 3 oldest.
   */
  readonly keepLatest?: { readonly count: number; readonly groupBy?: string | undefined } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly listed: number
  readonly matched: number
  readonly deleted: number
  readonly failed: number
  readonly throttled: number
  readonly elapsedMs: number
}

/**
 * A key (or version) the engine gave up on.
 *
 * @since 0.1.0
 * @category models
 */
export interface Failure {
  readonly key: string
  readonly versionId?: string | undefined
  /** The upload a failed abort named (`target: "incompleteUploads"`). @since 0.2.0 */
  readonly uploadId?: string | undefined
  readonly code: string
  readonly message: string
}

/**
 * A key the engine confirmed deleted, for audits.
 *
 * @since 0.1.0
 * @category models
 */
export interface Deleted {
  readonly key: string
  readonly versionId?: string | undefined
  /** The upload aborted (`target: "incompleteUploads"`); then nothing else of the key was touched. @since 0.2.0 */
  readonly uploadId?: string | undefined
  readonly size?: number | undefined
  /** The delete created a delete marker (current mode on a versioned bucket). */
  readonly deleteMarkerCreated: boolean
}

/**
 * How a run deletes: everything but the filters. These are the options of `deleteKeys`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Overrides the client's default bucket. */
  readonly bucket?: string | undefined
  /** Batch deletes in flight. Default 8. */
  readonly concurrency?: number | undefined
  /**
   * Listing requests in flight (> 1 splits the key range; versions are split between keys, so every version of a
   * key is listed by one range). Incomplete uploads are listed with one request at a time. Default 1.
   */
  readonly listConcurrency?: number | undefined
  /** Keys per batch delete, 1–1000. Default 1000. */
  readonly batchSize?: number | undefined
  /** Stop before deleting more than this many keys (`stoppedBy: "maxDeletes"`). */
  readonly maxDeletes?: number | undefined
  /** Plan only: list and filter, send no delete request. */
  readonly dryRun?: boolean | undefined
  /** Permit an empty prefix. */
  readonly allowWholeBucket?: boolean | undefined
  /**
   * Send batch deletes with `<Quiet>true</Quiet>`: COS then names only failures (smaller replies), and cannot say
   * which deletes created delete markers. Default false: every key is confirmed by name.
   */
  readonly quiet?: boolean | undefined
  /**
   * Write budget in keys per second (every key of a batch counts, docs/protocol.md §5). Default by region (see
   * `Governor.defaultWriteBudget`). Ignored when a `Governor` is provided in the context (a shared budget).
   */
  readonly writeBudget?: number | undefined
  /** Listing requests per second. Default 1000. Ignored when a `Governor` is in the context. */
  readonly listBudget?: number | undefined
  /**
   * Attempts per request or key, the first included, on top of the client's own retries: throttling and other
   * retryable answers are retried with exponential backoff until then. Default 10.
   */
  readonly maxAttempts?: number | undefined
  /** After a stop, how long batches in flight may take to finish; then they are cut off. Default 10 s. */
  readonly gracePeriod?: Duration.DurationInput | undefined
  /** Keys kept in the sample of the plan and of failures. Default 20. */
  readonly sampleSize?: number | undefined
  /** Resume a listing after this key (exclusive), from a checkpoint. */
  readonly startAfter?: string | undefined
  /**
   * When this effect completes, stop gracefully: no more listing, batches not yet sent are skipped, batches in
   * flight finish within `gracePeriod`, and the run returns its summary with `stoppedBy: "interrupted"`. (Interrupting
   * the fiber running the purge does the same, but then the summary only reaches `onSummary`.)
   */
  readonly stopSignal?: Effect.Effect<void> | undefined
  /** Called with progress every `progressInterval` (default 1 s), and once at the end. */
  readonly onProgress?: ((progress: Progress) => Effect.Effect<void>) | undefined
  readonly progressInterval?: Duration.DurationInput | undefined
  /**
   * Called before a batch is sent, with what it holds: lets a caller record intent durably before the delete.
   */
  readonly onBatchStart?: ((batch: ReadonlyArray<ObjectIdentifier>) => Effect.Effect<void>) | undefined
  /**
   * Called immediately before each delete request is sent (after the write budget's wait and any backoff), once per
   * attempt, with the keys that request carries: a caller that records intent here knows that a key whose intent
   * is recorded may have been deleted by this run, and a key without one was not.
   */
  readonly onSend?: ((objects: ReadonlyArray<ObjectIdentifier>) => Effect.Effect<void>) | undefined
  /**
   * Called with every batch of confirmed deletions, in the order COS confirmed them. `sent` is the very array the
   * request's `onSend` was given (the same object, so a caller can find what it recorded for that request; every
   * key confirmed is one of its keys, and `deleted.length === sent.length` when COS confirmed all of them); absent
   * for aborted uploads, which have no `onSend`.
   */
  readonly onDeleted?:
    | ((deleted: ReadonlyArray<Deleted>, sent?: ReadonlyArray<ObjectIdentifier> | undefined) => Effect.Effect<void>)
    | undefined
  /**
   * Called with the keys (or uploads) that failed, batch by batch as their outcomes are known (every one of them,
   * not only the summary's sample; those cut off by the grace period at the end of the run).
   *
   * @since 0.2.0
   */
  readonly onFailed?: ((failures: ReadonlyArray<Failure>) => Effect.Effect<void>) | undefined
  /**
   * Called with a listing position: every candidate at or before this key has been handled (deleted, failed, or
   * kept by `keepLatest`), so a run restarted with `startAfter` set to it loses nothing. It advances as batches
   * settle, key by key (inside a listed page too; for versions, only past keys whose versions are all handled). Keys
   * not sent (after `maxDeletes` or a stop) hold it back. Not called by `deleteKeys`.
   */
  readonly onCheckpoint?: ((afterKey: string) => Effect.Effect<void>) | undefined
  /**
   * Called once with the final summary, whatever the ending: success, a failure (the effect then fails with the
   * error), a stop, or interruption of the caller's fiber.
   */
  readonly onSummary?: ((summary: Summary) => Effect.Effect<void>) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PurgeOptions extends Filters, RunOptions {
  /**
   * What the run removes. `objects` (the default): the keys (or versions) the filters select. `incompleteUploads`:
   * multipart uploads that were started and never completed, whose parts are billed as storage but listed nowhere
   * else. They are listed with List Multipart Uploads, selected by `prefix`, `include`/`exclude` and `olderThan`
   * (counted from `Initiated`, as COS lifecycle's AbortIncompleteMultipartUpload counts), and each is aborted: one
   * write request per upload under the same governor, with the same `maxDeletes` (uploads), dry run, stop handling
   * and summary (`matched`, `deleted` and `skipped` then count uploads; `breakdown.objects` too). `onDeleted`
   * receives every aborted upload with its `uploadId`. `minSize`, `maxSize`, `keepLatest` and versions modes other
   * than `current` are refused; `onBatchStart` and `onCheckpoint` are not called. Completed objects are never
   * touched. See docs/protocol.md "Multipart uploads".
   *
   * @since 0.2.0
   */
  readonly target?: Target | undefined
  /**
   * Stop before deleting more than this many bytes (listed sizes; `stoppedBy: "maxDeleteSize"`): the key that would
   * cross the cap and everything after it are left (`skipped`, and `left` in the summary), so the bytes sent never
   * exceed it. Refused for incomplete uploads (they have no size).
   *
   * @since 0.2.0
   */
  readonly maxDeleteSize?: number | undefined
}

/**
 * What a purge removes: objects, or incomplete multipart uploads (see {@link PurgeOptions.target}).
 *
 * @since 0.2.0
 * @category models
 */
export type Target = "objects" | "incompleteUploads"

/**
 * The plan of a dry run (or the first part of a real run's summary).
 *
 * @since 0.1.0
 * @category models
 */
export interface PlanBreakdown {
  readonly objects: number
  readonly versions: number
  readonly deleteMarkers: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly dryRun: boolean
  readonly bucket: string
  readonly prefix: string
  readonly versions: VersionsMode
  readonly listed: number
  /**
   * Keys (or versions) that passed the filters. After a real run, `matched = deleted + failed + skipped`; in a dry
   * run, `matched - skipped` keys would be deleted.
   */
  readonly matched: number
  /** Bytes of the matched keys. */
  readonly matchedBytes: number
  readonly deleted: number
  /** Bytes of the keys confirmed deleted. */
  readonly bytes: number
  readonly failed: number
  /** A capped sample of failures. */
  readonly failures: ReadonlyArray<Failure>
  /** Matched keys not sent (over `maxDeletes`, or left at a stop). */
  readonly skipped: number
  /**
   * Keys that passed every filter, `olderThan` included, but were kept by `keepLatest` as among the newest (0 or
   * absent without it). Newest keys younger than `olderThan` are counted neither here nor in `matched`.
   */
  readonly kept?: number | undefined
  /** A capped sample of matched keys. */
  readonly sample: ReadonlyArray<string>
  readonly breakdown: PlanBreakdown
  /** Delete markers created by deletes in `current` mode on a versioned bucket. */
  readonly deleteMarkersCreated: number
  readonly requests: number
  readonly retries: number
  readonly throttled: number
  /** From the first request to the last. */
  readonly durationMs: number
  /**
   * Why the run stopped early, if it did: a cap (`maxDeletes`, `maxDeleteSize`), `interrupted` (a stop signal or the caller's interruption), or
   * `failed` (an error ended the run: a 403, a refused connection, a DNS failure; the run then fails with it).
   */
  readonly stoppedBy?: "maxDeletes" | "maxDeleteSize" | "interrupted" | "failed" | undefined
  /**
   * Set when a cap (`maxDeletes`, `maxDeleteSize`) stopped the run: the matched keys the cap left in place and their
   * bytes. @since 0.2.0
   */
  readonly left?: { readonly keys: number; readonly bytes: number } | undefined
  /** `incompleteUploads` when the run aborted uploads; absent (objects) otherwise. @since 0.2.0 */
  readonly target?: Target | undefined
  /** Human-readable notes (e.g. "versioned bucket: current mode adds delete markers"). */
  readonly notes: ReadonlyArray<string>
}

/**
 * Context for the version predicate of a {@link Matcher}.
 *
 * @since 0.1.0
 * @category filters
 */
export interface VersionContext {
  /**
   * `noncurrent` mode: when the version became noncurrent, at the latest (the LastModified of the next newer entry
   * listed; `olderThan` counts from it, `newerThan` from the version's own LastModified).
   */
  readonly noncurrentSince?: Date | undefined
  /** `delete-markers` mode: whether the key has any version left (markers of such keys are never selected). */
  readonly keyHasVersions?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category filters
 */
export interface Matcher {
  /** Prefix and include/exclude globs. */
  readonly key: (key: string) => boolean
  /** A current object (GET Bucket entry) against every filter but `keepLatest`. */
  readonly object: (o: ObjectSummary) => boolean
  /** A version or delete marker against the filters and the versions mode. */
  readonly version: (v: VersionEntry, context?: VersionContext) => boolean
}

/**
 * Lists what the filters select under a prefix and deletes it (or plans it, in dry-run).
 *
 * Fails with `CosInvalidRequest` for bad options (an empty prefix without `allowWholeBucket`, say) before any
 * request; with the listing's error if listing fails after retries; with the error of a delete that makes going on
 * pointless (403 AccessDenied, NoSuchBucket, bad credentials). Batches in flight finish first, and the exact summary
 * reaches `onSummary` in every case. Per-key failures do not fail the effect: they are counted in the summary.
 *
 * @since 0.1.0
 * @category deletion
 */
export const purge: (options: PurgeOptions) => Effect.Effect<Summary, CosError, CosClient> = internal.purge

/**
 * Aborts the incomplete multipart uploads the filters select: `purge` with `target: "incompleteUploads"` (see
 * {@link PurgeOptions.target}). Completed objects are never touched.
 *
 * @since 0.2.0
 * @category deletion
 */
export const abortIncompleteUploads = (
  options: Omit<PurgeOptions, "target" | "versions" | "minSize" | "maxSize" | "keepLatest">
): Effect.Effect<Summary, CosError, CosClient> => internal.purge({ ...options, target: "incompleteUploads" })

/**
 * Deletes a user-supplied stream of keys (or versions): batched, governed, exact. Pipeable, the stream first:
 * `keys.pipe(Deletion.deleteKeys({ concurrency: 8 }))` or `Deletion.deleteKeys(keys, options)`.
 *
 * @since 0.1.0
 * @category deletion
 */
export const deleteKeys: {
  /**
   * @since 0.2.0
   * @category deletion
   */
  (options?: RunOptions): <E, R>(
    keys: Stream.Stream<ObjectIdentifier & { readonly size?: number | undefined }, E, R>
  ) => Effect.Effect<Summary, CosError | E, CosClient | R>
  /**
   * @since 0.1.0
   * @category deletion
   */
  <E, R>(
    keys: Stream.Stream<ObjectIdentifier & { readonly size?: number | undefined }, E, R>,
    options?: RunOptions
  ): Effect.Effect<Summary, CosError | E, CosClient | R>
} = internal.deleteKeys

/**
 * The ranges `purge` and `deleteKeys` accept for their integer run options (bounds included); a value outside is
 * refused with a `CosInvalidRequest` before any request. For front ends that check their input up front (the
 * daemon's config and CLI do).
 *
 * @since 0.2.0
 * @category options
 */
export const runOptionBounds: {
  readonly concurrency: { readonly min: number; readonly max: number }
  readonly listConcurrency: { readonly min: number; readonly max: number }
  readonly batchSize: { readonly min: number; readonly max: number }
} = internal.runOptionBounds

/**
 * The filter predicates, exposed for tests and for the daemon's plan view. `now` is the instant `olderThan`
 * durations count back from.
 *
 * @since 0.1.0
 * @category filters
 */
export const matcher: (filters: Filters, now: number) => Matcher = internal.matcher

/**
 * The regular expression an include/exclude glob compiles to (matched against the whole key). picomatch syntax,
 * compiled so that every character of a key counts: dotfiles and `.`/`..` segments are matched by `*` and `**`,
 * line terminators (\n, \r, U+2028, U+2029) too, and a trailing `*` does not swallow a final `/`. Throws on a
 * pattern that cannot be compiled.
 *
 * @since 0.1.0
 * @category filters
 */
export const globRegExp: (pattern: string) => RegExp = glob.globRegExp

/**
 * Why `purge` would refuse an include/exclude glob (empty, or not compilable by {@link globRegExp}), or undefined when
 * it takes it: for front ends that check their input before any request (the daemon's CLI does).
 *
 * @since 0.2.0
 * @category filters
 */
export const globProblem: (pattern: string) => string | undefined = glob.globProblem

/**
 * Keys COS confirmed deleted, over all runs of this process.
 *
 * @since 0.1.0
 * @category metrics
 */
export const deletedKeysCounter = internal.deletedKeys

/**
 * Throttling answers (503 SlowDown) seen by deletion runs of this process.
 *
 * @since 0.1.0
 * @category metrics
 */
export const throttledCounter = internal.throttledRequests
