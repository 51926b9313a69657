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
   * Whether the same request may succeed if sent again: 5xx, `SlowDown`, `ServiceUnavailable`, `InternalError`
   * (docs/protocol.md §5 "Retry rules").
   *
   * @since 0.1.0
   */
  get retryable(): boolean {
    return this.status >= 500 || retryableCodes.has(this.code)
  }

  override get message(): string {
    const id = this.requestId === undefined ? "" : ` (request id ${this.requestId})`
    return `${this.operation}: COS answered ${this.status} ${this.code}: ${this.cosMessage}${id}`
  }
}

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

const retryableCodes: ReadonlySet<string> = new Set([
  "SlowDown",
  "ServiceUnavailable",
  "InternalError",
  "RequestTimeout"
])

/**
 * Whether a per-key `<Error>` code inside a 200 batch-delete reply is worth sending again.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRetryableCode = (code: string): boolean => retryableCodes.has(code)

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
  Predicate.hasProperty(error, "_tag") && error._tag === "CosServiceError" &&
  ((error as CosServiceError).code === "SlowDown" || (error as CosServiceError).status === 503)
