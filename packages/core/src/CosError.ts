/**
 * Errors of COS operations, one class per failure kind (docs/protocol.md §5).
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

/**
 * COS answered with an error: the `<Error>` body decoded (docs/protocol.md §5), or a body-less 4xx/5xx (HEAD) with a
 * code derived from the status (`NoSuchKey`/`NoSuchBucket` for 404, `AccessDenied` for 403, ...).
 *
 * @since 0.1.0
 * @category errors
 */
export class CosServiceError extends Schema.TaggedError<CosServiceError>()("CosServiceError", {
  operation: Schema.String,
  status: Schema.Number,
  code: Schema.String,
  /** COS's own `<Message>` text. */
  cosMessage: Schema.String,
  requestId: Schema.optional(Schema.String),
  traceId: Schema.optional(Schema.String),
  resource: Schema.optional(Schema.String)
}) {
  /**
   * The kind of failure, from the code and the status (see {@link reasonOf}); `retryable`, `throttled`, `fatal` and
   * `configuration` derive from it.
   *
   * @since 0.2.0
   */
  get reason(): CosServiceErrorReason {
    return reasonOf(this.code, this.status, this.cosMessage)
  }

  /**
   * Whether the same request may succeed if sent again: throttling and server errors (5xx, `InternalError`,
   * `ServiceUnavailable`, `RequestTimeout`; docs/protocol.md §5 "Retry rules").
   *
   * @since 0.1.0
   */
  get retryable(): boolean {
    return isRetryableReason(this.reason)
  }

  /**
   * COS asked to slow down (503, `SlowDown`): the deletion governor cuts its rate.
   *
   * @since 0.2.0
   */
  get throttled(): boolean {
    return this.reason === "Throttled"
  }

  /**
   * Whether sending more requests of the same kind is pointless: access denied, wrong credentials, no such
   * bucket, a skewed clock. A deletion run stops on such an error (docs/protocol.md §5).
   *
   * @since 0.2.0
   */
  get fatal(): boolean {
    return fatalReasons.has(this.reason)
  }

  /**
   * Whether the error points at the caller's settings rather than at COS or at permissions: wrong credentials, a
   * bucket that does not exist. The CLI exits 2 on these.
   *
   * @since 0.2.0
   */
  get configuration(): boolean {
    return this.reason === "InvalidCredentials" || this.reason === "NoSuchBucket"
  }

  override get message(): string {
    const id = this.requestId === undefined ? "" : ` (request id ${this.requestId})`
    return `${this.operation}: COS answered ${this.status} ${this.code}: ${this.cosMessage}${id}`
  }
}

/**
 * What a COS error answer means, computed once from its code and status by {@link reasonOf}:
 * - `Throttled`: 503 or `SlowDown` (COS has no 429, docs/protocol.md §5);
 * - `ClockSkew`: `RequestTimeTooSkewed`, or `AccessDenied` "request has expired";
 * - `InvalidCredentials`: `InvalidAccessKeyId`, `SignatureDoesNotMatch`;
 * - `AccessDenied`: `AccessDenied` or any other 403;
 * - `NoSuchBucket`: `NoSuchBucket`, `InvalidBucketName`;
 * - `NoSuchKey`: `NoSuchKey`;
 * - `Server`: other 5xx, `InternalError`, `ServiceUnavailable`, `RequestTimeout`;
 * - `Other`: anything else (a bad request, a precondition, ...).
 *
 * @since 0.2.0
 * @category errors
 */
export type CosServiceErrorReason =
  | "Throttled"
  | "ClockSkew"
  | "InvalidCredentials"
  | "AccessDenied"
  | "NoSuchBucket"
  | "NoSuchKey"
  | "Server"
  | "Other"

/**
 * The reason of a COS error answer from its code and HTTP status (0 for a per-key `<Error>` inside a 200 batch
 * reply, which has no status of its own) and, to tell an expired signature from a denial, its message.
 *
 * @since 0.2.0
 * @category errors
 */
export const reasonOf = (code: string, status: number, cosMessage = ""): CosServiceErrorReason => {
  if (code === "SlowDown" || status === 503) return "Throttled"
  switch (code) {
    case "RequestTimeTooSkewed":
      return "ClockSkew"
    case "InvalidAccessKeyId":
    case "SignatureDoesNotMatch":
      return "InvalidCredentials"
    case "AccessDenied":
      return /request has expired/i.test(cosMessage) ? "ClockSkew" : "AccessDenied"
    case "NoSuchBucket":
    case "InvalidBucketName":
      return "NoSuchBucket"
    case "NoSuchKey":
      return "NoSuchKey"
    case "InternalError":
    case "ServiceUnavailable":
    case "RequestTimeout":
      return "Server"
  }
  if (status === 403) return "AccessDenied"
  return status >= 500 ? "Server" : "Other"
}

const isRetryableReason = (reason: CosServiceErrorReason) => reason === "Throttled" || reason === "Server"

const fatalReasons: ReadonlySet<CosServiceErrorReason> = new Set<CosServiceErrorReason>([
  "ClockSkew",
  "InvalidCredentials",
  "AccessDenied",
  "NoSuchBucket"
])

/**
 * The request never got an HTTP answer: connection refused or reset, DNS failure, socket closed mid-body.
 *
 * @since 0.1.0
 * @category errors
 */
export class CosTransportError extends Schema.TaggedError<CosTransportError>()("CosTransportError", {
  operation: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `${this.operation}: request failed before COS answered: ${this.reason}`
  }
}

/**
 * No complete answer within the configured timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class CosTimeoutError extends Schema.TaggedError<CosTimeoutError>()("CosTimeoutError", {
  operation: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return `${this.operation}: no answer from COS within ${this.timeoutMs} ms`
  }
}

/**
 * An answer that is not what COS sends: an HTML page from a proxy, truncated or invalid XML, a missing field.
 *
 * @since 0.1.0
 * @category errors
 */
export class CosDecodeError extends Schema.TaggedError<CosDecodeError>()("CosDecodeError", {
  operation: Schema.String,
  status: Schema.Number,
  contentType: Schema.optional(Schema.String),
  detail: Schema.String,
  /** The first few hundred characters of the body, for diagnosis. */
  bodySnippet: Schema.String
}) {
  override get message(): string {
    const type = this.contentType === undefined ? "" : ` (${this.contentType})`
    return `${this.operation}: could not read the ${this.status} answer${type}: ${this.detail}`
  }
}

/**
 * The request was refused before anything was sent: an invalid bucket, region or key, an empty or oversized
 * batch, a missing bucket.
 *
 * @since 0.1.0
 * @category errors
 */
export class CosInvalidRequest extends Schema.TaggedError<CosInvalidRequest>()("CosInvalidRequest", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.operation}: ${this.reason}`
  }
}

/**
 * Credentials could not be obtained (a missing environment variable, a failed refresh).
 *
 * @since 0.1.0
 * @category errors
 */
export class CosCredentialsError extends Schema.TaggedError<CosCredentialsError>()("CosCredentialsError", {
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `COS credentials unavailable: ${this.reason}`
  }
}

/**
 * Any error a request to COS can end in.
 *
 * @since 0.1.0
 * @category errors
 */
export type CosRequestError =
  | CosServiceError
  | CosTransportError
  | CosTimeoutError
  | CosDecodeError
  | CosCredentialsError

/**
 * @since 0.1.0
 * @category errors
 */
export type CosError = CosRequestError | CosInvalidRequest

/**
 * Whether a per-key `<Error>` code inside a 200 batch-delete reply is worth sending again.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRetryableCode = (code: string): boolean => isRetryableReason(reasonOf(code, 0))

/**
 * Whether an error may go away if the same request is sent again: 5xx and throttling answers, transport failures
 * and timeouts. Authentication, validation and decode errors never are.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRetryable = (error: unknown): boolean => {
  if (!Predicate.hasProperty(error, "_tag")) return false
  switch (error._tag) {
    case "CosServiceError":
      return (error as CosServiceError).retryable
    case "CosTransportError":
    case "CosTimeoutError":
      return true
    default:
      return false
  }
}

/**
 * Whether a service error is COS throttling (503 `SlowDown`), which the deletion governor answers by slowing down.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isThrottle = (error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") && error._tag === "CosServiceError" && (error as CosServiceError).throttled

/**
 * Whether an error makes going on pointless (see `CosServiceError.fatal`); credentials that cannot be obtained are.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isFatal = (error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") &&
  (error._tag === "CosCredentialsError" || (error._tag === "CosServiceError" && (error as CosServiceError).fatal))

/**
 * Whether an error points at the caller's settings (see `CosServiceError.configuration`): a request refused before
 * sending, credentials that cannot be obtained or that COS does not know, a bucket that does not exist.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isConfiguration = (error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") &&
  (error._tag === "CosInvalidRequest" || error._tag === "CosCredentialsError" ||
    (error._tag === "CosServiceError" && (error as CosServiceError).configuration))
