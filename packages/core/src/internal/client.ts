/**
 * The COS client: one HTTP pipeline (URL, signing, per-attempt timeout, retry, clock-skew correction) and the
 * operations of CosClient.ts on top of it.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import type {
  BucketInput,
  CompleteMultipartUploadInput,
  CompleteMultipartUploadResult,
  CosClient,
  CreateMultipartUploadInput,
  DeletedEntry,
  DeleteErrorEntry,
  DeleteObjectResult,
  DeleteObjectsInput,
  DeleteObjectsResult,
  HeadBucketResult,
  HeadObjectInput,
  HeadObjectResult,
  ListError,
  ListMultipartUploadsInput,
  ListObjectsInput,
  ListObjectsStreamInput,
  ListPartsInput,
  ListVersionsInput,
  MultipartUpload,
  ObjectIdentifier,
  ObjectInput,
  ObjectSummary,
  Options,
  PutObjectInput,
  PutObjectResult,
  RequestError,
  UploadInput,
  UploadPartInput,
  VersionEntry
} from "../CosClient.js"
import {
  CosCredentialsError,
  CosDecodeError,
  CosInvalidRequest,
  CosServiceError,
  CosTimeoutError,
  CosTransportError,
  isRetryable,
  isThrottle
} from "../CosError.js"
import * as Credentials from "../Credentials.js"
import * as Signer from "../Signer.js"
import { bucketProblem, compareUtf8, isWellFormed, isXmlSafeKey, keyProblem, regionProblem } from "./keys.js"
import * as Pagination from "./pagination.js"
import * as Responses from "./responses.js"
import { retryAfterFailure } from "./retry.js"
import { onThrottled } from "./throttle.js"
import * as Xml from "./xml.js"

/** @internal */
export const tag = Context.GenericTag<CosClient>("@effect-cos/core/CosClient")

/** An answer read in full within one attempt. */
interface Raw {
  readonly status: number
  readonly headers: Headers.Headers
  readonly body: string
}

const op = {
  listObjects: "CosClient.listObjects",
  listObjectsStream: "CosClient.listObjectsStream",
  listObjectVersions: "CosClient.listObjectVersions",
  listObjectVersionsStream: "CosClient.listObjectVersionsStream",
  deleteObject: "CosClient.deleteObject",
  deleteObjects: "CosClient.deleteObjects",
  putObject: "CosClient.putObject",
  headObject: "CosClient.headObject",
  headBucket: "CosClient.headBucket",
  createMultipartUpload: "CosClient.createMultipartUpload",
  uploadPart: "CosClient.uploadPart",
  completeMultipartUpload: "CosClient.completeMultipartUpload",
  abortMultipartUpload: "CosClient.abortMultipartUpload",
  listMultipartUploads: "CosClient.listMultipartUploads",
  listMultipartUploadsStream: "CosClient.listMultipartUploadsStream",
  listParts: "CosClient.listParts",
  make: "CosClient.make"
} as const

/**
 * The entries of a paged listing from `start` on: each page's `items`, then the cursor `next` gives for the page after
 * it (none at the end; a broken one fails the stream, named `operation`).
 */
const pagedStream = <C, P, A>(
  operation: string,
  start: C,
  fetch: (cursor: C) => Effect.Effect<P, ListError>,
  items: (page: P) => ReadonlyArray<A>,
  next: (operation: string, page: P, cursor: C) => Either.Either<C | undefined, ListError>
): Stream.Stream<A, ListError> =>
  Stream.paginateChunkEffect<C, A, ListError, never>(start, (cursor) =>
    Effect.flatMap(fetch(cursor), (page) => {
      const after = next(operation, page, cursor)
      if (Either.isLeft(after)) return Effect.fail(after.left)
      return Effect.succeed([Chunk.unsafeFromArray(items(page)), Option.fromNullable(after.right)] as const)
    }))

const md5Base64 = (bytes: Uint8Array): string => createHash("md5").update(bytes).digest("base64")

const snippet = (body: string): string => (body.length > 300 ? body.slice(0, 300) + "…" : body)

const invalid = (operation: string, reason: string) => new CosInvalidRequest({ operation, reason })

// ---------------------------------------------------------------------------------------------------------------
// endpoint
// ---------------------------------------------------------------------------------------------------------------

/** Builds `<scheme>://<host>` for a bucket: the virtual host, or the `endpoint` override with its templates. */
const makeOrigin = (
  options: Options
): { readonly origin: (bucket: string) => string; readonly problem: string | undefined } => {
  const scheme = options.scheme ?? "https"
  const region = options.region
  const endpoint = options.endpoint
  if (endpoint === undefined) {
    return { origin: (bucket) => `${scheme}://${bucket}.cos.${region}.myqcloud.com`, problem: undefined }
  }
  const withScheme = /^[a-z][a-z\d+.-]*:\/\//i.test(endpoint) ? endpoint : `${scheme}://${endpoint}`
  const fill = (bucket: string) => {
    const dash = bucket.lastIndexOf("-")
    return withScheme.replace(/\{Bucket\}/g, bucket).replace(/\{Region\}/g, region)
      .replace(/\{BucketName\}/g, dash < 0 ? bucket : bucket.slice(0, dash))
      .replace(/\{AppId\}/g, dash < 0 ? "" : bucket.slice(dash + 1))
  }
  let problem: string | undefined
  try {
    const url = new URL(fill("examplebucket-1250000000"))
    if (url.protocol !== "http:" && url.protocol !== "https:") problem = "the endpoint must be an http(s) URL"
    else if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
      problem = "the endpoint must be an origin (scheme, host, port) without a path or query"
    } else if (url.username !== "" || url.password !== "") problem = "the endpoint must not carry user information"
  } catch {
    problem = `the endpoint ${JSON.stringify(endpoint)} is not a valid URL`
  }
  return { origin: (bucket) => new URL(fill(bucket)).origin, problem }
}

/** `?k=v&flag` with COS's strict encoder; `undefined` values are value-less parameters (`?delete`). */
const queryString = (params: ReadonlyArray<readonly [string, string | undefined]>): string => {
  if (params.length === 0) return ""
  let out = ""
  for (const [k, v] of params) {
    out += (out === "" ? "?" : "&") + Signer.encode(k) + (v === undefined ? "" : "=" + Signer.encode(v))
  }
  return out
}

/** The decoded query of a URL, split by hand: `+` is not a space for COS (docs/protocol.md §2). */
const parseQuery = (search: string): Array<[string, string]> => {
  if (search.length <= 1) return []
  const out: Array<[string, string]> = []
  for (const part of search.slice(1).split("&")) {
    if (part === "") continue
    const eq = part.indexOf("=")
    if (eq < 0) out.push([decodeURIComponent(part), ""])
    else out.push([decodeURIComponent(part.slice(0, eq)), decodeURIComponent(part.slice(eq + 1))])
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// answers
// ---------------------------------------------------------------------------------------------------------------

const statusCodes: Record<number, string> = {
  301: "MovedPermanently",
  302: "Found",
  304: "NotModified",
  307: "TemporaryRedirect",
  400: "BadRequest",
  401: "Unauthorized",
  403: "AccessDenied",
  405: "MethodNotAllowed",
  409: "Conflict",
  411: "MissingContentLength",
  412: "PreconditionFailed",
  416: "InvalidRange",
  429: "TooManyRequests",
  500: "InternalError",
  501: "NotImplemented",
  502: "BadGateway",
  503: "ServiceUnavailable",
  504: "GatewayTimeout"
}

/**
 * A clock-skew 403 with the server's time (docs/protocol.md §5: `<ServerTime>` or the `Date` header); caught by the
 * pipeline, which corrects its clock and retries once.
 */
class Skewed {
  readonly _tag = "Skewed"
  constructor(readonly error: CosServiceError, readonly serverTime: number) {}
}

const parseServerTime = (value: string | undefined): number | undefined => {
  if (value === undefined || value === "") return undefined
  if (/^\d+$/.test(value)) return Number(value) * 1000
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

const isSkewError = (error: CosServiceError): boolean => error.status === 403 && error.reason === "ClockSkew"

const decodeError = (operation: string, raw: Raw, detail: string) =>
  new CosDecodeError({
    operation,
    status: raw.status,
    contentType: raw.headers["content-type"],
    detail,
    bodySnippet: snippet(raw.body)
  })

const htmlDetail = (raw: Raw) =>
  `an HTML page (HTTP ${raw.status}), not an answer from COS: a proxy, gateway or wrong endpoint answered`

/** A non-2xx answer, or a 2xx whose body is an `<Error>` document, as a typed error. */
const failureFrom = (
  operation: string,
  raw: Raw,
  notFoundCode: string
): CosServiceError | CosDecodeError | Skewed => {
  const requestId = raw.headers["x-cos-request-id"]
  const traceId = raw.headers["x-cos-trace-id"]
  if (/^\s*$/.test(raw.body)) {
    // HEAD answers and some gateways send no body: derive the code from the status (docs/protocol.md §4 HEAD Object).
    const code = raw.status === 404 ? notFoundCode : statusCodes[raw.status] ?? `Http${raw.status}`
    return new CosServiceError({
      operation,
      status: raw.status,
      code,
      cosMessage: `HTTP ${raw.status} without a body`,
      requestId,
      traceId
    })
  }
  if (Xml.looksLikeHtml(raw.body, raw.headers["content-type"])) return decodeError(operation, raw, htmlDetail(raw))
  const parsed = Xml.parse(raw.body)
  if (parsed._tag === "Invalid") return decodeError(operation, raw, `the error answer is ${parsed.detail}`)
  if (parsed.root.name !== "Error") {
    return decodeError(operation, raw, `expected an <Error> document, got <${parsed.root.name}>`)
  }
  let body: Responses.ErrorBody
  try {
    body = Responses.errorBody(parsed.root)
  } catch (e) {
    if (e instanceof Responses.Malformed) return decodeError(operation, raw, e.detail)
    throw e
  }
  const error = new CosServiceError({
    operation,
    status: raw.status,
    code: body.Code,
    cosMessage: body.Message,
    requestId: body.RequestId ?? requestId,
    traceId: body.TraceId ?? traceId,
    resource: body.Resource
  })
  if (isSkewError(error)) {
    const serverTime = parseServerTime(body.ServerTime) ?? parseServerTime(raw.headers["date"])
    if (serverTime !== undefined) return new Skewed(error, serverTime)
  }
  return error
}

/**
 * Decodes a 2xx XML body: with the shape reader of the hot answers if there is one and it can, else with the fast
 * reader (general parser as fallback) and the typed decoder. A shape reader gives the decoder's value or none.
 */
const decodeBody = <A>(
  operation: string,
  raw: Raw,
  decoder: (root: Xml.XmlElement) => A,
  shape?: (body: string) => A | undefined
): Effect.Effect<A, CosDecodeError | CosServiceError> =>
  Effect.suspend(() => {
    if (/^\s*$/.test(raw.body)) return Effect.fail(decodeError(operation, raw, "the answer has an empty body"))
    if (Xml.looksLikeHtml(raw.body, raw.headers["content-type"])) {
      return Effect.fail(decodeError(operation, raw, htmlDetail(raw)))
    }
    if (shape !== undefined) {
      const value = shape(raw.body)
      if (value !== undefined) return Effect.succeed(value)
    }
    const parsed = Xml.parse(raw.body)
    if (parsed._tag === "Invalid") return Effect.fail(decodeError(operation, raw, `the answer is ${parsed.detail}`))
    // COS may put an <Error> document inside a 200 (docs/protocol.md §5).
    if (parsed.root.name === "Error") {
      const failure = failureFrom(operation, raw, "NoSuchKey")
      return Effect.fail(failure._tag === "Skewed" ? failure.error : failure)
    }
    try {
      return Effect.succeed(decoder(parsed.root))
    } catch (e) {
      if (e instanceof Responses.Malformed) return Effect.fail(decodeError(operation, raw, e.detail))
      throw e
    }
  })

const transportError = (operation: string, error: HttpClientError.HttpClientError): CosTransportError => {
  // Keep only the underlying cause: the HttpClientError holds the request, whose headers carry the signature and
  // possibly the security token.
  const cause = error.cause
  const detail = cause instanceof Error
    ? cause.message + (cause.cause instanceof Error ? ` (${cause.cause.message})` : "")
    : error.reason
  return new CosTransportError({ operation, reason: `${error.reason}: ${detail}`, cause })
}

// ---------------------------------------------------------------------------------------------------------------
// make
// ---------------------------------------------------------------------------------------------------------------

interface Prepared {
  readonly method: "GET" | "PUT" | "POST" | "DELETE" | "HEAD"
  readonly bucket: string
  /** Already encoded: `/`, or `Signer.encodeKeyPath(key)`. */
  readonly path: string
  readonly query?: ReadonlyArray<readonly [string, string | undefined]>
  readonly headers?: Record<string, string>
  readonly body?: { readonly bytes: Uint8Array; readonly contentType: string }
  /** Code for a body-less 404. */
  readonly notFound?: string
}

const withSecurityTokenRedacted = Effect.locallyWith(
  Headers.currentRedactedNames,
  (names) => [...names, "x-cos-security-token"]
)

/** @internal */
export const make = (options: Options): Effect.Effect<CosClient, CosInvalidRequest, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const region = options.region
    const regionIssue = regionProblem(region)
    if (regionIssue !== undefined) return yield* invalid(op.make, regionIssue)
    if (options.bucket !== undefined) {
      const issue = bucketProblem(options.bucket, region)
      if (issue !== undefined) return yield* invalid(op.make, issue)
    }
    const { origin, problem } = makeOrigin(options)
    if (problem !== undefined) return yield* invalid(op.make, problem)
    const attempts = Math.max(1, Math.floor(options.retry?.attempts ?? 4))
    const baseDelay = Duration.decode(options.retry?.baseDelay ?? Duration.millis(100))
    const maxDelay = Duration.decode(options.retry?.maxDelay ?? Duration.seconds(5))
    const timeout = Duration.decode(options.timeout ?? Duration.seconds(30))
    const timeoutMs = Duration.toMillis(timeout)
    const ttl = options.signatureTtlSeconds ?? 900
    if (!(ttl > 0)) return yield* invalid(op.make, "signatureTtlSeconds must be positive")
    const extraSignedHeaders = options.extraSignedHeaders ?? []
    const provider = options.credentials
    // Untyped callers pass `{ secretId, secretKey }` itself; without this they fail at the first request with
    // "yield* ... is not iterable". The message names neither value.
    if (typeof provider !== "object" || provider === null || !Effect.isEffect(provider.get)) {
      return yield* invalid(
        op.make,
        "credentials must be a Credentials provider (an object whose `get` is an Effect), such as " +
          "Credentials.fromStatic({ secretId, secretKey: Redacted.make(key) }) or Credentials.config()"
      )
    }

    const http = yield* HttpClient.HttpClient
    /** Milliseconds to add to the local clock, learnt from a RequestTimeTooSkewed answer. */
    const clockOffset = yield* Ref.make(0)

    // Signing reads Effect's Clock, so every retry signs again with a fresh key time.
    const sign = (request: HttpClientRequest.HttpClientRequest) =>
      Effect.gen(function*() {
        const credentials = yield* provider.get
        const now = (yield* Clock.currentTimeMillis) + (yield* Ref.get(clockOffset))
        const start = Math.floor(now / 1000) - 1
        const url = new URL(request.url)
        const headers: Record<string, string> = { ...request.headers, host: url.host }
        const authorization = Signer.authorization({
          method: request.method,
          path: decodeURIComponent(url.pathname),
          query: parseQuery(url.search),
          headers,
          extraSignedHeaders,
          keyTime: { start, end: start + 1 + ttl },
          secretId: credentials.secretId,
          secretKey: credentials.secretKey
        })
        let signed = HttpClientRequest.setHeader(request, "authorization", authorization)
        // Added after signing, as the Node and Go SDKs do (docs/protocol.md §2).
        if (credentials.securityToken !== undefined) {
          signed = HttpClientRequest.setHeader(
            signed,
            "x-cos-security-token",
            Redacted.value(credentials.securityToken)
          )
        }
        return signed
      })
    const client = HttpClient.mapRequestEffect(http, sign)

    const schedule = Schedule.exponential(baseDelay, 2).pipe(
      Schedule.jittered,
      Schedule.modifyDelay((_, delay) => Duration.min(delay, maxDelay)),
      Schedule.intersect(Schedule.recurs(attempts - 1))
    )
    // A 5xx whose body is not COS's (a gateway's HTML page) is worth another attempt too.
    const retryable = (error: RequestError) =>
      isRetryable(error) || (error._tag === "CosDecodeError" && error.status >= 500)

    /** One attempt: signed, sent, read in full within the timeout, non-2xx turned into a typed error. */
    const attempt = (operation: string, request: HttpClientRequest.HttpClientRequest, notFound: string) =>
      client.execute(request).pipe(
        Effect.flatMap((response) =>
          Effect.map(response.text, (body): Raw => ({ status: response.status, headers: response.headers, body }))
        ),
        Effect.catchTags({
          RequestError: (e) => Effect.fail(transportError(operation, e)),
          ResponseError: (e) => Effect.fail(transportError(operation, e))
        }),
        Effect.timeoutFail({ duration: timeout, onTimeout: () => new CosTimeoutError({ operation, timeoutMs }) }),
        Effect.flatMap((raw) =>
          raw.status >= 200 && raw.status < 300
            ? Effect.succeed(raw)
            : Effect.fail(failureFrom(operation, raw, notFound))
        )
      )

    /** On a clock-skew 403, learn the offset from the server's time and try once more (docs/protocol.md §5). */
    const attemptWithSkew = (operation: string, request: HttpClientRequest.HttpClientRequest, notFound: string) =>
      attempt(operation, request, notFound).pipe(
        Effect.catchTag("Skewed", (skewed) =>
          Clock.currentTimeMillis.pipe(
            Effect.flatMap((now) => Ref.set(clockOffset, skewed.serverTime - now)),
            Effect.zipRight(Effect.logDebug("COS clock skew corrected; retrying")),
            Effect.zipRight(attempt(operation, request, notFound)),
            Effect.catchTag("Skewed", (again) => Effect.fail(again.error))
          ))
      )

    const send = (operation: string, prepared: Prepared): Effect.Effect<Raw, RequestError> => {
      const url = origin(prepared.bucket) + prepared.path + queryString(prepared.query ?? [])
      let request = HttpClientRequest.make(prepared.method)(url)
      if (prepared.headers !== undefined) request = HttpClientRequest.setHeaders(request, prepared.headers)
      if (prepared.body !== undefined) {
        request = HttpClientRequest.bodyUint8Array(request, prepared.body.bytes, prepared.body.contentType)
      }
      return attemptWithSkew(operation, request, prepared.notFound ?? "NoSuchKey").pipe(
        Effect.tapError((e) => isThrottle(e) ? Effect.flatten(FiberRef.get(onThrottled)) : Effect.void),
        retryAfterFailure({ schedule, while: retryable }),
        withSecurityTokenRedacted
      )
    }

    // --- validation -------------------------------------------------------------------------------------------

    const validBuckets = new Set<string>()
    const bucketOf = (operation: string, input: BucketInput | undefined): Effect.Effect<string, CosInvalidRequest> => {
      const bucket = input?.bucket ?? options.bucket
      if (bucket === undefined) {
        return Effect.fail(invalid(operation, "no bucket given and the client has no default bucket"))
      }
      if (validBuckets.has(bucket)) return Effect.succeed(bucket)
      const issue = bucketProblem(bucket, region)
      if (issue !== undefined) return Effect.fail(invalid(operation, issue))
      if (validBuckets.size < 1000) validBuckets.add(bucket)
      return Effect.succeed(bucket)
    }
    const checkKey = (operation: string, key: string): Effect.Effect<void, CosInvalidRequest> => {
      const issue = keyProblem(key)
      return issue === undefined ? Effect.void : Effect.fail(invalid(operation, issue))
    }
    const checkText = (operation: string, name: string, value: string | undefined) =>
      value === undefined || isWellFormed(value)
        ? Effect.void
        : Effect.fail(invalid(operation, `${name} contains a lone UTF-16 surrogate (not valid Unicode)`))
    const checkMaxKeys = (operation: string, maxKeys: number | undefined) =>
      maxKeys === undefined || (Number.isInteger(maxKeys) && maxKeys >= 1 && maxKeys <= 1000)
        ? Effect.void
        : Effect.fail(invalid(operation, `maxKeys must be an integer from 1 to 1000, got ${maxKeys}`))

    // --- listing ----------------------------------------------------------------------------------------------

    const listObjects = Effect.fn(op.listObjects)(function*(input: ListObjectsInput = {}) {
      const bucket = yield* bucketOf(op.listObjects, input)
      yield* checkText(op.listObjects, "prefix", input.prefix)
      yield* checkText(op.listObjects, "marker", input.marker)
      yield* checkText(op.listObjects, "delimiter", input.delimiter)
      yield* checkMaxKeys(op.listObjects, input.maxKeys)
      const query: Array<readonly [string, string]> = []
      if (input.delimiter !== undefined) query.push(["delimiter", input.delimiter])
      // Always url-encoded: keys may hold characters XML 1.0 cannot carry (docs/protocol.md §3).
      query.push(["encoding-type", "url"])
      if (input.marker !== undefined && input.marker !== "") query.push(["marker", input.marker])
      if (input.maxKeys !== undefined) query.push(["max-keys", String(input.maxKeys)])
      if (input.prefix !== undefined && input.prefix !== "") query.push(["prefix", input.prefix])
      const raw = yield* send(op.listObjects, { method: "GET", bucket, path: "/", query, notFound: "NoSuchBucket" })
      return yield* decodeBody(op.listObjects, raw, Responses.listObjectsPage, Responses.listObjectsPageShape)
    })

    const listObjectsStream = (input: ListObjectsStreamInput = {}): Stream.Stream<ObjectSummary, ListError> => {
      const endBefore = input.endBefore
      const page = (marker: string | undefined) =>
        listObjects({ bucket: input.bucket, prefix: input.prefix, marker, maxKeys: input.maxKeys }).pipe(
          Effect.flatMap((page) => {
            let contents = page.contents
            let done = !page.isTruncated
            if (endBefore !== undefined) {
              const stop = contents.findIndex((o) => compareUtf8(o.key, endBefore) >= 0)
              if (stop >= 0) {
                contents = contents.slice(0, stop)
                done = true
              }
            }
            if (done) return Effect.succeed([Chunk.unsafeFromArray(contents), Option.none()] as const)
            const rule = Pagination.nextMarker(op.listObjectsStream, page, marker)
            if (Either.isLeft(rule)) return Effect.fail(rule.left)
            const next = rule.right
            if (next === undefined) return Effect.succeed([Chunk.unsafeFromArray(contents), Option.none()] as const)
            if (endBefore !== undefined && compareUtf8(next, endBefore) >= 0) {
              return Effect.succeed([Chunk.unsafeFromArray(contents), Option.none()] as const)
            }
            return Effect.succeed([Chunk.unsafeFromArray(contents), Option.some(next)] as const)
          })
        )
      return Stream.paginateChunkEffect(input.marker, page)
    }

    const listObjectVersions = Effect.fn(op.listObjectVersions)(function*(input: ListVersionsInput = {}) {
      const bucket = yield* bucketOf(op.listObjectVersions, input)
      yield* checkText(op.listObjectVersions, "prefix", input.prefix)
      yield* checkText(op.listObjectVersions, "keyMarker", input.keyMarker)
      yield* checkText(op.listObjectVersions, "versionIdMarker", input.versionIdMarker)
      yield* checkText(op.listObjectVersions, "delimiter", input.delimiter)
      yield* checkMaxKeys(op.listObjectVersions, input.maxKeys)
      const query: Array<readonly [string, string | undefined]> = [["versions", undefined]]
      if (input.delimiter !== undefined) query.push(["delimiter", input.delimiter])
      query.push(["encoding-type", "url"])
      if (input.keyMarker !== undefined && input.keyMarker !== "") query.push(["key-marker", input.keyMarker])
      if (input.maxKeys !== undefined) query.push(["max-keys", String(input.maxKeys)])
      if (input.prefix !== undefined && input.prefix !== "") query.push(["prefix", input.prefix])
      // An empty NextVersionIdMarker is sent back as `version-id-marker=` (docs/protocol.md §3).
      if (input.versionIdMarker !== undefined) query.push(["version-id-marker", input.versionIdMarker])
      const raw = yield* send(op.listObjectVersions, {
        method: "GET",
        bucket,
        path: "/",
        query,
        notFound: "NoSuchBucket"
      })
      return yield* decodeBody(op.listObjectVersions, raw, Responses.listVersionsPage)
    })

    const listObjectVersionsStream = (
      input: Omit<ListVersionsInput, "delimiter"> = {}
    ): Stream.Stream<VersionEntry, ListError> => {
      const start: Pagination.VersionsCursor = { keyMarker: input.keyMarker, versionIdMarker: input.versionIdMarker }
      const page = (cursor: Pagination.VersionsCursor) =>
        listObjectVersions({ bucket: input.bucket, prefix: input.prefix, maxKeys: input.maxKeys, ...cursor })
      return pagedStream(op.listObjectVersionsStream, start, page, (p) => p.versions, Pagination.nextVersionsCursor)
    }

    // --- deleting ---------------------------------------------------------------------------------------------

    const deleteObject = Effect.fn(op.deleteObject)(function*(input: ObjectInput) {
      const bucket = yield* bucketOf(op.deleteObject, input)
      yield* checkKey(op.deleteObject, input.key)
      yield* checkText(op.deleteObject, "versionId", input.versionId)
      const raw = yield* send(op.deleteObject, {
        method: "DELETE",
        bucket,
        path: Signer.encodeKeyPath(input.key),
        // "" is the version id listed by a bucket that never had versioning: plain DELETE (docs/protocol.md §3, §4).
        query: input.versionId === undefined || input.versionId === "" ? [] : [["versionId", input.versionId]],
        notFound: "NoSuchBucket"
      })
      const result: DeleteObjectResult = {
        versionId: raw.headers["x-cos-version-id"],
        deleteMarker: raw.headers["x-cos-delete-marker"] === "true"
      }
      return result
    })

    const deleteObjects = Effect.fn(op.deleteObjects)(function*(input: DeleteObjectsInput) {
      const bucket = yield* bucketOf(op.deleteObjects, input)
      const objects = input.objects
      if (objects.length === 0) return yield* invalid(op.deleteObjects, "a batch delete needs at least one key")
      if (objects.length > 1000) {
        return yield* invalid(op.deleteObjects, `a batch delete takes at most 1000 keys, got ${objects.length}`)
      }
      const quiet = input.quiet === true
      let xml = `<Delete><Quiet>${quiet}</Quiet>`
      for (const o of objects) {
        const issue = keyProblem(o.key)
        if (issue !== undefined) return yield* invalid(op.deleteObjects, issue)
        if (!isXmlSafeKey(o.key)) {
          return yield* invalid(
            op.deleteObjects,
            `the object key ${JSON.stringify(o.key.slice(0, 80))} holds a character that cannot travel in the ` +
              `XML body of a batch delete (a control character, CR or LF); delete it with deleteObject`
          )
        }
        xml += `<Object><Key>${Xml.escapeText(o.key)}</Key>`
        if (o.versionId !== undefined && o.versionId !== "") {
          if (!isXmlSafeKey(o.versionId)) {
            return yield* invalid(op.deleteObjects, "a versionId holds a character that cannot travel in XML")
          }
          xml += `<VersionId>${Xml.escapeText(o.versionId)}</VersionId>`
        }
        xml += "</Object>"
      }
      xml += "</Delete>"
      const bytes = Buffer.from(xml, "utf8")
      const raw = yield* send(op.deleteObjects, {
        method: "POST",
        bucket,
        path: "/",
        query: [["delete", undefined]],
        headers: { "content-md5": md5Base64(bytes) },
        body: { bytes, contentType: "application/xml" },
        notFound: "NoSuchBucket"
      })
      const reply = yield* decodeBody(op.deleteObjects, raw, Responses.deleteResult, Responses.deleteResultShape)
      return batchOutcome(objects, reply, quiet)
    })

    // --- objects ----------------------------------------------------------------------------------------------

    /** Storage class and `x-cos-meta-*` headers of a new object (PUT Object, Initiate Multipart Upload). */
    const objectHeaders = (
      operation: string,
      input: {
        readonly storageClass?: string | undefined
        readonly metadata?: Readonly<Record<string, string>> | undefined
      }
    ): Effect.Effect<Record<string, string>, CosInvalidRequest> => {
      const headers: Record<string, string> = {}
      if (input.storageClass !== undefined) headers["x-cos-storage-class"] = input.storageClass
      for (const [name, value] of Object.entries(input.metadata ?? {})) {
        if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
          return Effect.fail(invalid(operation, `metadata name ${JSON.stringify(name)} is not a valid header name`))
        }
        if (!/^[\x20-\x7E\t]*$/.test(value)) {
          return Effect.fail(invalid(operation, `metadata ${name} must be printable ASCII`))
        }
        headers[`x-cos-meta-${name.toLowerCase()}`] = value
      }
      return Effect.succeed(headers)
    }

    const putObject = Effect.fn(op.putObject)(function*(input: PutObjectInput) {
      const bucket = yield* bucketOf(op.putObject, input)
      yield* checkKey(op.putObject, input.key)
      const bytes = typeof input.body === "string" ? Buffer.from(input.body, "utf8") : input.body
      const headers = yield* objectHeaders(op.putObject, input)
      headers["content-md5"] = md5Base64(bytes)
      if (input.forbidOverwrite === true) headers["x-cos-forbid-overwrite"] = "true"
      const raw = yield* send(op.putObject, {
        method: "PUT",
        bucket,
        path: Signer.encodeKeyPath(input.key),
        headers,
        body: { bytes, contentType: input.contentType ?? "application/octet-stream" },
        notFound: "NoSuchBucket"
      })
      const result: PutObjectResult = {
        etag: raw.headers["etag"] ?? "",
        versionId: raw.headers["x-cos-version-id"]
      }
      return result
    })

    const headObject = Effect.fn(op.headObject)(function*(input: HeadObjectInput) {
      const bucket = yield* bucketOf(op.headObject, input)
      yield* checkKey(op.headObject, input.key)
      yield* checkText(op.headObject, "versionId", input.versionId)
      const headers: Record<string, string> = {}
      if (input.ifMatch !== undefined) headers["if-match"] = input.ifMatch
      if (input.ifNoneMatch !== undefined) headers["if-none-match"] = input.ifNoneMatch
      if (input.ifModifiedSince !== undefined) headers["if-modified-since"] = input.ifModifiedSince.toUTCString()
      if (input.ifUnmodifiedSince !== undefined) headers["if-unmodified-since"] = input.ifUnmodifiedSince.toUTCString()
      const raw = yield* send(op.headObject, {
        method: "HEAD",
        bucket,
        path: Signer.encodeKeyPath(input.key),
        query: input.versionId === undefined ? [] : [["versionId", input.versionId]],
        headers,
        notFound: "NoSuchKey"
      })
      const h = raw.headers
      const lastModified = Date.parse(h["last-modified"] ?? "")
      const contentLength = Number(h["content-length"] ?? "0")
      if (Number.isNaN(lastModified)) {
        return yield* decodeError(op.headObject, raw, "the answer has no valid Last-Modified header")
      }
      const metadata: Record<string, string> = {}
      for (const name in h) {
        if (name.startsWith("x-cos-meta-")) metadata[name.slice("x-cos-meta-".length)] = h[name]!
      }
      const result: HeadObjectResult = {
        contentLength: Number.isFinite(contentLength) ? contentLength : 0,
        contentType: h["content-type"],
        etag: h["etag"] ?? "",
        lastModified: new Date(lastModified),
        versionId: h["x-cos-version-id"],
        // COS sends x-cos-storage-class only for non-STANDARD objects (docs/protocol.md §4 HEAD Object).
        storageClass: h["x-cos-storage-class"] || "STANDARD",
        metadata
      }
      return result
    })

    const headBucket = Effect.fn(op.headBucket)(function*(input: BucketInput = {}) {
      const bucket = yield* bucketOf(op.headBucket, input)
      const raw = yield* send(op.headBucket, { method: "HEAD", bucket, path: "/", notFound: "NoSuchBucket" })
      const result: HeadBucketResult = { region: raw.headers["x-cos-bucket-region"] }
      return result
    })

    // --- multipart uploads (docs/protocol.md "Multipart uploads") ---------------------------------------------

    const checkUpload = (operation: string, input: UploadInput) =>
      Effect.zipRight(
        checkKey(operation, input.key),
        typeof input.uploadId === "string" && input.uploadId !== "" && isXmlSafeKey(input.uploadId)
          ? Effect.void
          : Effect.fail(invalid(operation, "uploadId must be a non-empty string of printable characters"))
      )

    const createMultipartUpload = Effect.fn(op.createMultipartUpload)(function*(input: CreateMultipartUploadInput) {
      const bucket = yield* bucketOf(op.createMultipartUpload, input)
      yield* checkKey(op.createMultipartUpload, input.key)
      const headers = yield* objectHeaders(op.createMultipartUpload, input)
      if (input.contentType !== undefined) headers["content-type"] = input.contentType
      const raw = yield* send(op.createMultipartUpload, {
        method: "POST",
        bucket,
        path: Signer.encodeKeyPath(input.key),
        query: [["uploads", undefined]],
        headers,
        body: { bytes: new Uint8Array(0), contentType: input.contentType ?? "application/octet-stream" },
        notFound: "NoSuchBucket"
      })
      const result = yield* decodeBody(op.createMultipartUpload, raw, Responses.initiateResult)
      // The answer's Key is informative; the upload belongs to the key the request named.
      return { ...result, bucket: result.bucket || bucket, key: input.key }
    })

    const checkPartNumber = (operation: string, n: number) =>
      Number.isInteger(n) && n >= 1 && n <= 10_000
        ? Effect.void
        : Effect.fail(invalid(operation, `partNumber must be an integer from 1 to 10000, got ${n}`))

    const uploadPart = Effect.fn(op.uploadPart)(function*(input: UploadPartInput) {
      const bucket = yield* bucketOf(op.uploadPart, input)
      yield* checkUpload(op.uploadPart, input)
      yield* checkPartNumber(op.uploadPart, input.partNumber)
      const bytes = typeof input.body === "string" ? Buffer.from(input.body, "utf8") : input.body
      const raw = yield* send(op.uploadPart, {
        method: "PUT",
        bucket,
        path: Signer.encodeKeyPath(input.key),
        query: [["partNumber", String(input.partNumber)], ["uploadId", input.uploadId]],
        headers: { "content-md5": md5Base64(bytes) },
        body: { bytes, contentType: "application/octet-stream" },
        notFound: "NoSuchUpload"
      })
      const etag = raw.headers["etag"]
      if (etag === undefined || etag === "") {
        return yield* decodeError(op.uploadPart, raw, "the answer has no ETag header")
      }
      return { etag }
    })

    const completeMultipartUpload = Effect.fn(op.completeMultipartUpload)(
      function*(input: CompleteMultipartUploadInput) {
        const bucket = yield* bucketOf(op.completeMultipartUpload, input)
        yield* checkUpload(op.completeMultipartUpload, input)
        if (input.parts.length === 0) {
          return yield* invalid(op.completeMultipartUpload, "a completion needs at least one part")
        }
        let xml = "<CompleteMultipartUpload>"
        for (const p of input.parts) {
          yield* checkPartNumber(op.completeMultipartUpload, p.partNumber)
          if (!isXmlSafeKey(p.etag)) {
            return yield* invalid(op.completeMultipartUpload, "an ETag holds a character that cannot travel in XML")
          }
          // Quoted as Upload Part returned it; the Node SDK adds the quotes when a caller dropped them.
          const etag = p.etag.startsWith("\"") ? p.etag : `"${p.etag}"`
          xml += `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${Xml.escapeText(etag)}</ETag></Part>`
        }
        xml += "</CompleteMultipartUpload>"
        const bytes = Buffer.from(xml, "utf8")
        const raw = yield* send(op.completeMultipartUpload, {
          method: "POST",
          bucket,
          path: Signer.encodeKeyPath(input.key),
          query: [["uploadId", input.uploadId]],
          headers: { "content-md5": md5Base64(bytes) },
          body: { bytes, contentType: "application/xml" },
          notFound: "NoSuchUpload"
        })
        // COS answers 200 at once and sends whitespace while it assembles the object, so the document (an <Error>
        // too, which decodeBody turns into its typed error) comes after it; an XML declaration there would not
        // parse, so the whitespace goes first.
        const result = yield* decodeBody(
          op.completeMultipartUpload,
          { ...raw, body: raw.body.trimStart() },
          Responses.completeResult
        )
        const out: CompleteMultipartUploadResult = {
          ...result,
          key: input.key,
          versionId: raw.headers["x-cos-version-id"]
        }
        return out
      }
    )

    const abortMultipartUpload = Effect.fn(op.abortMultipartUpload)(function*(input: UploadInput) {
      const bucket = yield* bucketOf(op.abortMultipartUpload, input)
      yield* checkUpload(op.abortMultipartUpload, input)
      yield* send(op.abortMultipartUpload, {
        method: "DELETE",
        bucket,
        path: Signer.encodeKeyPath(input.key),
        query: [["uploadId", input.uploadId]],
        notFound: "NoSuchUpload"
      })
    })

    const listMultipartUploads = Effect.fn(op.listMultipartUploads)(function*(input: ListMultipartUploadsInput = {}) {
      const bucket = yield* bucketOf(op.listMultipartUploads, input)
      yield* checkText(op.listMultipartUploads, "prefix", input.prefix)
      yield* checkText(op.listMultipartUploads, "delimiter", input.delimiter)
      yield* checkText(op.listMultipartUploads, "keyMarker", input.keyMarker)
      yield* checkText(op.listMultipartUploads, "uploadIdMarker", input.uploadIdMarker)
      const max = input.maxUploads
      if (max !== undefined && !(Number.isInteger(max) && max >= 1 && max <= 1000)) {
        return yield* invalid(op.listMultipartUploads, `maxUploads must be an integer from 1 to 1000, got ${max}`)
      }
      const query: Array<readonly [string, string | undefined]> = [["uploads", undefined]]
      if (input.delimiter !== undefined && input.delimiter !== "") query.push(["delimiter", input.delimiter])
      // Always url-encoded, as for GET Bucket: keys may hold characters XML 1.0 cannot carry.
      query.push(["encoding-type", "url"])
      const keyMarker = input.keyMarker ?? ""
      if (keyMarker !== "") {
        query.push(["key-marker", keyMarker])
        // COS ignores upload-id-marker without key-marker.
        if (input.uploadIdMarker !== undefined && input.uploadIdMarker !== "") {
          query.push(["upload-id-marker", input.uploadIdMarker])
        }
      }
      if (max !== undefined) query.push(["max-uploads", String(max)])
      if (input.prefix !== undefined && input.prefix !== "") query.push(["prefix", input.prefix])
      const raw = yield* send(op.listMultipartUploads, {
        method: "GET",
        bucket,
        path: "/",
        query,
        notFound: "NoSuchBucket"
      })
      return yield* decodeBody(op.listMultipartUploads, raw, Responses.listUploadsPage)
    })

    const listMultipartUploadsStream = (
      input: Omit<ListMultipartUploadsInput, "delimiter"> = {}
    ): Stream.Stream<MultipartUpload, ListError> => {
      const start: Pagination.UploadsCursor = {
        keyMarker: input.keyMarker ?? "",
        uploadIdMarker: input.keyMarker ? input.uploadIdMarker ?? "" : ""
      }
      const page = (cursor: Pagination.UploadsCursor) =>
        listMultipartUploads({ bucket: input.bucket, prefix: input.prefix, maxUploads: input.maxUploads, ...cursor })
      return pagedStream(op.listMultipartUploadsStream, start, page, (p) => p.uploads, Pagination.nextUploadsCursor)
    }

    const listParts = Effect.fn(op.listParts)(function*(input: ListPartsInput) {
      const bucket = yield* bucketOf(op.listParts, input)
      yield* checkUpload(op.listParts, input)
      const query: Array<readonly [string, string | undefined]> = [["uploadId", input.uploadId]]
      query.push(["encoding-type", "url"])
      if (input.maxParts !== undefined) {
        if (!(Number.isInteger(input.maxParts) && input.maxParts >= 1 && input.maxParts <= 1000)) {
          return yield* invalid(op.listParts, `maxParts must be an integer from 1 to 1000, got ${input.maxParts}`)
        }
        query.push(["max-parts", String(input.maxParts)])
      }
      if (input.partNumberMarker !== undefined) {
        if (!(Number.isInteger(input.partNumberMarker) && input.partNumberMarker >= 0)) {
          return yield* invalid(op.listParts, `partNumberMarker must be an integer >= 0, got ${input.partNumberMarker}`)
        }
        query.push(["part-number-marker", String(input.partNumberMarker)])
      }
      const raw = yield* send(op.listParts, {
        method: "GET",
        bucket,
        path: Signer.encodeKeyPath(input.key),
        query,
        notFound: "NoSuchUpload"
      })
      return yield* decodeBody(op.listParts, raw, Responses.listPartsPage)
    })

    const service: CosClient = {
      region,
      defaultBucket: options.bucket,
      listObjects,
      listObjectsStream,
      listObjectVersions,
      listObjectVersionsStream,
      deleteObject,
      deleteObjects,
      putObject,
      headObject,
      headBucket,
      createMultipartUpload,
      uploadPart,
      completeMultipartUpload,
      abortMultipartUpload,
      listMultipartUploads,
      listMultipartUploadsStream,
      listParts
    }
    return service
  })

/** `""` (the version id of a bucket that never had versioning, docs/protocol.md §3) is the same as none. */
const identity = (key: string, versionId: string | undefined) =>
  versionId === undefined || versionId === "" ? key : `${key}\u0000${versionId}`

const sameVersion = (sent: string | undefined, named: string | undefined) =>
  named === undefined || named === "" ? sent === undefined || sent === "" : named === sent

/** Whether `named` answers `sent` key for key, in order (the common reply). */
const inOrder = (sent: ReadonlyArray<ObjectIdentifier>, named: ReadonlyArray<DeletedEntry>): boolean => {
  for (let i = 0; i < sent.length; i++) {
    const o = sent[i]!
    const d = named[i]!
    if (o.key !== d.key) return false
    // COS echoes VersionId only if it was sent (docs/protocol.md §4).
    if (d.versionId !== undefined && !sameVersion(o.versionId, d.versionId)) return false
  }
  return true
}

/**
 * Per-key outcome of a batch, aligned with the keys sent: quiet replies list only failures, so every other key sent
 * was deleted; non-quiet replies must name every key, and a key named in neither list is `missing` (docs/protocol.md §4).
 *
 * @internal
 */
export const batchOutcome = (
  sent: ReadonlyArray<ObjectIdentifier>,
  reply: Responses.DeleteReply,
  quiet: boolean
): DeleteObjectsResult => {
  const n = sent.length
  if (!quiet && reply.errors.length === 0 && reply.deleted.length === n && inOrder(sent, reply.deleted)) {
    return { deleted: reply.deleted, errors: reply.errors, missing: [], outcomes: reply.deleted }
  }
  if (quiet && reply.errors.length === 0 && reply.deleted.length === 0) {
    const deleted: Array<DeletedEntry> = new Array(n)
    for (let i = 0; i < n; i++) {
      const o = sent[i]!
      deleted[i] = { _tag: "Deleted", key: o.key, versionId: o.versionId, deleteMarker: false }
    }
    return { deleted, errors: reply.errors, missing: [], outcomes: deleted }
  }
  const outcomes: Array<DeletedEntry | DeleteErrorEntry | undefined> = new Array(n).fill(undefined)
  /** Indexes of the keys sent and not yet answered, by identity. */
  const pending = new Map<string, Array<number>>()
  for (let i = 0; i < n; i++) {
    const o = sent[i]!
    const id = identity(o.key, o.versionId)
    const same = pending.get(id)
    if (same === undefined) pending.set(id, [i])
    else same.push(i)
  }
  const answer = (id: string, entry: DeletedEntry | DeleteErrorEntry): boolean => {
    const group = pending.get(id)
    if (group === undefined) return false
    pending.delete(id)
    for (const i of group) outcomes[i] = entry
    return true
  }
  const settle = (entry: DeletedEntry | DeleteErrorEntry) => {
    if (answer(identity(entry.key, entry.versionId), entry)) return
    // COS echoes VersionId only if it was sent; should it leave it out, the entry answers that key's pending
    // versioned requests, and an entry with one answers the key's plain request.
    if (entry.versionId === undefined || entry.versionId === "") {
      const versioned = entry.key + "\u0000"
      for (const id of Array.from(pending.keys())) {
        if (id.startsWith(versioned)) answer(id, entry)
      }
    } else {
      answer(entry.key, entry)
    }
  }
  for (const e of reply.errors) settle(e)
  for (const d of reply.deleted) settle(d)
  if (quiet) {
    const deleted: Array<DeletedEntry> = [...reply.deleted]
    for (const group of pending.values()) {
      for (const i of group) {
        const o = sent[i]!
        const entry: DeletedEntry = { _tag: "Deleted", key: o.key, versionId: o.versionId, deleteMarker: false }
        outcomes[i] = entry
        deleted.push(entry)
      }
    }
    return { deleted, errors: reply.errors, missing: [], outcomes }
  }
  const missing: Array<ObjectIdentifier> = []
  for (const group of pending.values()) for (const i of group) missing.push(sent[i]!)
  return { deleted: reply.deleted, errors: reply.errors, missing, outcomes }
}

// ---------------------------------------------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------------------------------------------

/**
 * Options of `layerConfig`: anything given here is used as is; region, bucket, endpoint, scheme and credentials
 * not given are read from configuration under `names` (defaults `COS_REGION`, `COS_BUCKET`, `COS_ENDPOINT`,
 * `COS_SCHEME`, `COS_SECRET_ID`, `COS_SECRET_KEY`, `COS_SECURITY_TOKEN`).
 *
 * @internal
 */
export interface ConfigOptions extends Partial<Options> {
  readonly names?: {
    readonly region?: string
    readonly bucket?: string
    readonly endpoint?: string
    readonly scheme?: string
    readonly secretId?: string
    readonly secretKey?: string
    readonly securityToken?: string
  }
}

/** @internal */
export const layer = (options: Options): Layer.Layer<CosClient, CosInvalidRequest, HttpClient.HttpClient> =>
  Layer.effect(tag, make(options))

const optionalConfig = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((s) => s !== "")),
    Effect.map(Option.getOrUndefined),
    Effect.mapError(() => invalid(op.make, `the configuration value ${name} is invalid`))
  )

/** @internal */
export const layerConfig = (
  options: ConfigOptions = {}
): Layer.Layer<CosClient, CosInvalidRequest | CosCredentialsError, HttpClient.HttpClient> =>
  Layer.effect(
    tag,
    Effect.gen(function*() {
      const names = options.names ?? {}
      const regionName = names.region ?? "COS_REGION"
      const region = options.region ?? (yield* optionalConfig(regionName))
      if (region === undefined) {
        return yield* invalid(op.make, `no region: the environment variable ${regionName} is not set`)
      }
      const bucket = options.bucket ?? (yield* optionalConfig(names.bucket ?? "COS_BUCKET"))
      const endpoint = options.endpoint ?? (yield* optionalConfig(names.endpoint ?? "COS_ENDPOINT"))
      const schemeName = names.scheme ?? "COS_SCHEME"
      const scheme = options.scheme ?? (yield* optionalConfig(schemeName))
      if (scheme !== undefined && scheme !== "http" && scheme !== "https") {
        return yield* invalid(op.make, `${schemeName} must be http or https`)
      }
      const credentials = options.credentials ?? (yield* Credentials.fromConfig({
        ...(names.secretId === undefined ? {} : { secretId: names.secretId }),
        ...(names.secretKey === undefined ? {} : { secretKey: names.secretKey }),
        ...(names.securityToken === undefined ? {} : { securityToken: names.securityToken })
      }))
      return yield* make({ ...options, region, bucket, endpoint, scheme, credentials })
    })
  )
