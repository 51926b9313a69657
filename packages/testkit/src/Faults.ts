/**
 * Faults the fake can inject: latency, error rates, scripted failures, per-key errors inside a batch-delete reply,
 * and COS-like quotas (docs/protocol.md §5 "Documented limits") answered with 503 `SlowDown`.
 *
 * @since 0.1.0
 */

/**
 * The operations the fake tells apart (for per-operation faults, quotas, counters and the request log).
 *
 * @since 0.1.0
 * @category models
 */
export type Operation =
  | "ListObjects"
  | "ListObjectVersions"
  | "HeadBucket"
  | "GetBucketVersioning"
  | "PutBucketVersioning"
  | "PutObject"
  | "GetObject"
  | "HeadObject"
  | "DeleteObject"
  | "DeleteObjects"
  | "CreateMultipartUpload"
  | "UploadPart"
  | "CompleteMultipartUpload"
  | "AbortMultipartUpload"
  | "ListMultipartUploads"
  | "ListParts"
  | "Unknown"

/**
 * What an injected fault does:
 * - `SlowDown`: 503 `SlowDown` (COS's throttling answer, docs/protocol.md §5);
 * - `ServiceUnavailable`: 503 `ServiceUnavailable`;
 * - `InternalError`: 500 `InternalError`;
 * - `Reset`: the connection is destroyed without an answer (in-process: a transport failure);
 * - `Timeout`: no answer ever (the client's timeout has to fire).
 *
 * @since 0.1.0
 * @category models
 */
export type Fault = "SlowDown" | "ServiceUnavailable" | "InternalError" | "Reset" | "Timeout"

/**
 * Latency and random faults of one operation. Rates are probabilities in [0, 1] per request, tried in the order
 * listed; their sum should not exceed 1.
 *
 * @since 0.1.0
 * @category models
 */
export interface OperationFaults {
  /** Fixed delay before answering, in ms (Effect's `Clock`: in-process under `TestClock` it waits for the test). */
  readonly latencyMs?: number | undefined
  /** Extra uniform random delay in [0, jitterMs). */
  readonly jitterMs?: number | undefined
  readonly slowDownRate?: number | undefined
  readonly internalErrorRate?: number | undefined
  readonly resetRate?: number | undefined
  readonly timeoutRate?: number | undefined
}

/**
 * Per-bucket quotas as token buckets (capacity = rate × `burstSeconds`). A request that exceeds one gets 503
 * `SlowDown` and consumes nothing. A batch costing more than the capacity is admitted when the bucket is full and
 * leaves it in debt, so large batches still pass at the average rate.
 *
 * @since 0.1.0
 * @category models
 */
export interface Quotas {
  /** GET Bucket and GET ?versions requests per second per bucket (COS: 1 000). */
  readonly listPerSecond?: number | undefined
  /** POST ?delete requests per second per bucket (COS: 300). */
  readonly batchDeletePerSecond?: number | undefined
  /**
   * Writes per second per bucket, where PUT and DELETE count 1 and every key of a batch delete counts 1
   * (COS: 30 000 in mainland public regions, 3 000 elsewhere).
   */
  readonly writeKeysPerSecond?: number | undefined
  /** GET and HEAD Object requests per second per bucket (COS: 30 000 in mainland public regions). */
  readonly readPerSecond?: number | undefined
  /** Default 1. */
  readonly burstSeconds?: number | undefined
}

/**
 * A scripted fault: `FailRequest` fails the `n`-th request the fake receives (1-based, counted over all
 * operations, including the ones that fail); `FailNext` fails the next `count` requests of `operation`
 * (`"*"` for any).
 *
 * @since 0.1.0
 * @category models
 */
export type Scripted =
  | { readonly _tag: "FailRequest"; readonly n: number; readonly fault: Fault }
  | { readonly _tag: "FailNext"; readonly operation: Operation | "*"; readonly count: number; readonly fault: Fault }

/**
 * The whole fault configuration. Empty means a perfect COS.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  /** Applies to every operation; `operations` entries override it field by field. */
  readonly all?: OperationFaults | undefined
  readonly operations?: Partial<Record<Operation, OperationFaults>> | undefined
  /**
   * Probability that a key in a batch delete is reported as `<Error>` with code `InternalError` inside a 200
   * reply (and left in place).
   */
  readonly batchKeyErrorRate?: number | undefined
  readonly quotas?: Quotas | undefined
  /**
   * Listing pages (objects and versions) hold at most this many entries, whatever `max-keys` asks: a small bucket
   * then spans many pages, and a key's versions many of them, as a large one does.
   *
   * @since 0.2.0
   */
  readonly listPageSize?: number | undefined
  readonly script?: ReadonlyArray<Scripted> | undefined
  /** Seed of the fake's random generator (default 42), so runs repeat. */
  readonly seed?: number | undefined
}

/**
 * No faults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: Config = {}

/**
 * COS's documented quotas for a bucket in a mainland public region (docs/protocol.md §5).
 *
 * @since 0.1.0
 * @category constructors
 */
export const cosQuotas: Quotas = {
  listPerSecond: 1000,
  batchDeletePerSecond: 300,
  writeKeysPerSecond: 30_000,
  readPerSecond: 30_000
}

/**
 * Fails the `n`-th request (1-based).
 *
 * @since 0.1.0
 * @category constructors
 */
export const failRequest = (n: number, fault: Fault = "InternalError"): Scripted => ({ _tag: "FailRequest", n, fault })

/**
 * Fails the next `count` requests of an operation (`"*"` for any).
 *
 * @since 0.1.0
 * @category constructors
 */
export const failNext = (operation: Operation | "*", count: number, fault: Fault = "InternalError"): Scripted => ({
  _tag: "FailNext",
  operation,
  count,
  fault
})
