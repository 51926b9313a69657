/**
 * The COS client: every operation the toolkit needs, as typed Effects over `@effect/platform`'s HttpClient.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Stream from "effect/Stream"
import type { CosCredentialsError, CosInvalidRequest, CosRequestError } from "./CosError.js"
import type * as Credentials from "./Credentials.js"
import * as internal from "./internal/client.js"
import * as keys from "./internal/keys.js"

// ---------------------------------------------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 4 (the official SDKs' 3 retries). */
  readonly attempts?: number
  /** First backoff delay; it doubles each attempt, with jitter. Default 100 ms. */
  readonly baseDelay?: Duration.DurationInput
  /** Upper bound of one backoff delay. Default 5 s. */
  readonly maxDelay?: Duration.DurationInput
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `ap-beijing`, `ap-guangzhou`, ... (docs/protocol.md §1). Validated against `^[a-z\d-]+$`. */
  readonly region: string
  /** Default bucket (`<BucketName>-<APPID>`) for operations that do not name one. */
  readonly bucket?: string | undefined
  readonly credentials: Credentials.CredentialsProvider
  /** `https` (default) or `http`. */
  readonly scheme?: "https" | "http" | undefined
  /**
   * Send every request to this origin instead of `<bucket>.cos.<region>.myqcloud.com`: a custom domain or a local
   * server such as `http://127.0.0.1:9000`. The Host sent and signed is this endpoint's host. A `{Bucket}` or
   * `{Region}` template in it is replaced, like the SDK's `Domain` option.
   */
  readonly endpoint?: string | undefined
  /** Time allowed for one attempt, response body included. Default 30 s. */
  readonly timeout?: Duration.DurationInput | undefined
  readonly retry?: RetryOptions | undefined
  /** Extra header names to sign besides the SDKs' set (e.g. `["date"]`). */
  readonly extraSignedHeaders?: ReadonlyArray<string> | undefined
  /** Seconds a signature stays valid. Default 900, like the Node SDK. */
  readonly signatureTtlSeconds?: number | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface BucketInput {
  /** Overrides the client's default bucket. */
  readonly bucket?: string | undefined
}

/**
 * One `<Contents>` entry of GET Bucket, fields URL-decoded.
 *
 * @since 0.1.0
 * @category models
 */
export interface ObjectSummary {
  readonly key: string
  readonly lastModified: Date
  readonly etag: string
  readonly size: number
  readonly storageClass: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListObjectsInput extends BucketInput {
  readonly prefix?: string | undefined
  readonly delimiter?: string | undefined
  /** Exclusive start key. */
  readonly marker?: string | undefined
  /** 1–1000; default 1000. */
  readonly maxKeys?: number | undefined
}

/**
 * One page of GET Bucket (docs/protocol.md §3), with every url-encoded field decoded.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListObjectsPage {
  readonly name: string
  readonly prefix: string
  readonly marker: string
  readonly maxKeys: number
  readonly delimiter?: string | undefined
  readonly isTruncated: boolean
  /** Present whenever the page is truncated (COS sends it even without a delimiter). */
  readonly nextMarker?: string | undefined
  readonly contents: ReadonlyArray<ObjectSummary>
  readonly commonPrefixes: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListObjectsStreamInput extends BucketInput {
  readonly prefix?: string | undefined
  /** Exclusive start key. */
  readonly marker?: string | undefined
  /** Exclusive end key: the stream stops before the first key `>= endBefore` (UTF-8 byte order). */
  readonly endBefore?: string | undefined
  readonly maxKeys?: number | undefined
}

/**
 * A version or a delete marker, as listed by GET Bucket versions (docs/protocol.md §3).
 *
 * @since 0.1.0
 * @category models
 */
export type VersionEntry = ObjectVersion | DeleteMarkerEntry

/**
 * @since 0.1.0
 * @category models
 */
export interface ObjectVersion {
  readonly _tag: "Version"
  readonly key: string
  /** `"null"` for objects written while versioning was off or suspended; `""` if never enabled. */
  readonly versionId: string
  readonly isLatest: boolean
  readonly lastModified: Date
  readonly etag: string
  readonly size: number
  readonly storageClass: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeleteMarkerEntry {
  readonly _tag: "DeleteMarker"
  readonly key: string
  readonly versionId: string
  readonly isLatest: boolean
  readonly lastModified: Date
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListVersionsInput extends BucketInput {
  readonly prefix?: string | undefined
  readonly delimiter?: string | undefined
  readonly keyMarker?: string | undefined
  readonly versionIdMarker?: string | undefined
  readonly maxKeys?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListVersionsPage {
  readonly name: string
  readonly prefix: string
  readonly keyMarker: string
  readonly versionIdMarker: string
  readonly maxKeys: number
  readonly delimiter?: string | undefined
  readonly isTruncated: boolean
  readonly nextKeyMarker?: string | undefined
  readonly nextVersionIdMarker?: string | undefined
  /** Versions and delete markers in listing order: by key, newest first per key. */
  readonly versions: ReadonlyArray<VersionEntry>
  readonly commonPrefixes: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ObjectInput extends BucketInput {
  readonly key: string
  readonly versionId?: string | undefined
}

/**
 * HEAD Object with optional conditions (docs/protocol.md §4): a failed `ifNoneMatch`/`ifModifiedSince` fails with
 * `CosServiceError` code `NotModified` (304), a failed `ifMatch`/`ifUnmodifiedSince` with `PreconditionFailed` (412).
 *
 * @since 0.1.0
 * @category models
 */
export interface HeadObjectInput extends ObjectInput {
  readonly ifMatch?: string | undefined
  readonly ifNoneMatch?: string | undefined
  readonly ifModifiedSince?: Date | undefined
  readonly ifUnmodifiedSince?: Date | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeleteObjectResult {
  /** `x-cos-version-id`: the version removed, or the delete marker created. */
  readonly versionId?: string | undefined
  /** A delete marker was created (versioned, no versionId) or removed (versionId of a marker). */
  readonly deleteMarker: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ObjectIdentifier {
  readonly key: string
  /** `""` (what a bucket that never had versioning lists) is sent as no version id. */
  readonly versionId?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeleteObjectsInput extends BucketInput {
  /** 1 to 1000 keys. */
  readonly objects: ReadonlyArray<ObjectIdentifier>
  /** With quiet, COS lists only failures; the client then reports every other key as deleted. Default false. */
  readonly quiet?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeletedEntry {
  readonly _tag: "Deleted"
  readonly key: string
  readonly versionId?: string | undefined
  readonly deleteMarker: boolean
  readonly deleteMarkerVersionId?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeleteErrorEntry {
  readonly _tag: "Error"
  readonly key: string
  readonly versionId?: string | undefined
  readonly code: string
  readonly message: string
}

/**
 * Per-key outcome of a batch delete.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeleteObjectsResult {
  readonly deleted: ReadonlyArray<DeletedEntry>
  readonly errors: ReadonlyArray<DeleteErrorEntry>
  /**
   * Keys sent but named neither in `<Deleted>` nor in `<Error>` of a non-quiet reply. They are not deleted as far
   * as anyone can tell; callers must count them as failed.
   */
  readonly missing: ReadonlyArray<ObjectIdentifier>
  /**
   * The answer for each key sent, aligned with `objects`: `outcomes[i]` is the `Deleted` or `Error` entry for
   * `objects[i]`, or `undefined` for a key a non-quiet reply did not name. Keys sent twice share their entry.
   * A version id of `""` (the one version of a key in a bucket that never had versioning) is the same as none.
   */
  readonly outcomes: ReadonlyArray<DeletedEntry | DeleteErrorEntry | undefined>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PutObjectInput extends BucketInput {
  readonly key: string
  readonly body: Uint8Array | string
  readonly contentType?: string | undefined
  /** `x-cos-forbid-overwrite: true`: 409 `FileAlreadyExists` if the key exists. */
  readonly forbidOverwrite?: boolean | undefined
  readonly storageClass?: string | undefined
  /** `x-cos-meta-*` headers, names without the prefix. */
  readonly metadata?: Readonly<Record<string, string>> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PutObjectResult {
  readonly etag: string
  readonly versionId?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HeadObjectResult {
  readonly contentLength: number
  readonly contentType?: string | undefined
  readonly etag: string
  readonly lastModified: Date
  readonly versionId?: string | undefined
  readonly storageClass: string
  readonly metadata: Readonly<Record<string, string>>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HeadBucketResult {
  readonly region?: string | undefined
}

// ---------------------------------------------------------------------------------------------------------------
// multipart uploads (docs/protocol.md "Multipart uploads")
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.2.0
 * @category models
 */
export interface CreateMultipartUploadInput extends BucketInput {
  readonly key: string
  /** The final object's Content-Type. */
  readonly contentType?: string | undefined
  readonly storageClass?: string | undefined
  /** `x-cos-meta-*` headers of the final object, names without the prefix. */
  readonly metadata?: Readonly<Record<string, string>> | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface CreateMultipartUploadResult {
  readonly bucket: string
  readonly key: string
  readonly uploadId: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface UploadInput extends BucketInput {
  readonly key: string
  readonly uploadId: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface UploadPartInput extends UploadInput {
  /** 1–10000. Sending a number again replaces that part. */
  readonly partNumber: number
  /** At least 1 MiB except for the last part (checked by COS at completion). */
  readonly body: Uint8Array | string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface UploadPartResult {
  /** Quoted, as in the `ETag` header; what `completeMultipartUpload` needs back. */
  readonly etag: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface CompletedPart {
  readonly partNumber: number
  /** As returned by `uploadPart` (quotes are added if missing). */
  readonly etag: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface CompleteMultipartUploadInput extends UploadInput {
  /** Every part, ascending and without gaps from 1 (COS refuses gaps with `InvalidPart`). */
  readonly parts: ReadonlyArray<CompletedPart>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface CompleteMultipartUploadResult {
  readonly location: string
  readonly bucket: string
  readonly key: string
  /** `"<hex>-<part count>"`. */
  readonly etag: string
  readonly versionId?: string | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface ListMultipartUploadsInput extends BucketInput {
  readonly prefix?: string | undefined
  readonly delimiter?: string | undefined
  /** Alone: uploads of keys after this one. With `uploadIdMarker`: also this key's uploads with a larger id. */
  readonly keyMarker?: string | undefined
  /** Ignored by COS without `keyMarker`. */
  readonly uploadIdMarker?: string | undefined
  /** 1–1000; default 1000. */
  readonly maxUploads?: number | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Principal {
  readonly id: string
  readonly displayName: string
}

/**
 * One incomplete upload, fields URL-decoded.
 *
 * @since 0.2.0
 * @category models
 */
export interface MultipartUpload {
  readonly key: string
  readonly uploadId: string
  /** Upper-cased (COS sends `STANDARD` or `Standard`). */
  readonly storageClass: string
  readonly initiated: Date
  readonly initiator?: Principal | undefined
  readonly owner?: Principal | undefined
}

/**
 * One page of List Multipart Uploads, with every url-encoded field decoded.
 *
 * @since 0.2.0
 * @category models
 */
export interface ListMultipartUploadsPage {
  readonly bucket: string
  readonly prefix: string
  readonly delimiter?: string | undefined
  readonly keyMarker: string
  readonly uploadIdMarker: string
  readonly maxUploads: number
  readonly isTruncated: boolean
  readonly nextKeyMarker?: string | undefined
  readonly nextUploadIdMarker?: string | undefined
  /** By key (UTF-8 byte order), then by upload id: a key's uploads oldest first. */
  readonly uploads: ReadonlyArray<MultipartUpload>
  readonly commonPrefixes: ReadonlyArray<string>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface ListPartsInput extends UploadInput {
  /** 1–1000; default 1000. */
  readonly maxParts?: number | undefined
  /** Exclusive: parts after this number. */
  readonly partNumberMarker?: number | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Part {
  readonly partNumber: number
  readonly lastModified: Date
  readonly etag: string
  readonly size: number
}

/**
 * @since 0.2.0
 * @category models
 */
export interface ListPartsPage {
  readonly bucket: string
  readonly key: string
  readonly uploadId: string
  readonly storageClass: string
  readonly partNumberMarker: number
  readonly nextPartNumberMarker?: number | undefined
  readonly maxParts: number
  readonly isTruncated: boolean
  /** Ascending part numbers. */
  readonly parts: ReadonlyArray<Part>
}

// ---------------------------------------------------------------------------------------------------------------
// error unions
// ---------------------------------------------------------------------------------------------------------------

/**
 * What any signed request can fail with once sent: `CosError.CosRequestError` (declared there), under the name the
 * operation families below build on. Each family's union is declared once, here, and used by the implementation.
 *
 * @since 0.1.0
 * @category errors
 */
export type RequestError = CosRequestError

/**
 * @since 0.1.0
 * @category errors
 */
export type ListError = RequestError | CosInvalidRequest

/**
 * @since 0.1.0
 * @category errors
 */
export type DeleteError = RequestError | CosInvalidRequest

/**
 * HEAD/PUT: body-less errors are decoded from the status.
 *
 * @since 0.1.0
 * @category errors
 */
export type ObjectError = RequestError | CosInvalidRequest

/**
 * Multipart calls: an unknown, completed or aborted upload id fails with `CosServiceError` code `NoSuchUpload`
 * (404); completion with `EntityTooSmall`, `InvalidPart` or `InvalidPartOrder` (400), possibly inside a 200.
 *
 * @since 0.2.0
 * @category errors
 */
export type MultipartError = RequestError | CosInvalidRequest

// ---------------------------------------------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface CosClient {
  readonly region: string
  readonly defaultBucket: string | undefined
  readonly listObjects: (input?: ListObjectsInput) => Effect.Effect<ListObjectsPage, ListError>
  /** Every object under a prefix, page after page (NextMarker), as one stream. */
  readonly listObjectsStream: (input?: ListObjectsStreamInput) => Stream.Stream<ObjectSummary, ListError>
  readonly listObjectVersions: (input?: ListVersionsInput) => Effect.Effect<ListVersionsPage, ListError>
  readonly listObjectVersionsStream: (
    input?: Omit<ListVersionsInput, "delimiter">
  ) => Stream.Stream<VersionEntry, ListError>
  readonly deleteObject: (input: ObjectInput) => Effect.Effect<DeleteObjectResult, DeleteError>
  readonly deleteObjects: (input: DeleteObjectsInput) => Effect.Effect<DeleteObjectsResult, DeleteError>
  readonly putObject: (input: PutObjectInput) => Effect.Effect<PutObjectResult, ObjectError>
  /** A missing key (404, no body) fails with `CosServiceError` code `NoSuchKey`. */
  readonly headObject: (input: HeadObjectInput) => Effect.Effect<HeadObjectResult, ObjectError>
  readonly headBucket: (input?: BucketInput) => Effect.Effect<HeadBucketResult, ObjectError>
  /** @since 0.2.0 */
  readonly createMultipartUpload: (
    input: CreateMultipartUploadInput
  ) => Effect.Effect<CreateMultipartUploadResult, MultipartError>
  /** @since 0.2.0 */
  readonly uploadPart: (input: UploadPartInput) => Effect.Effect<UploadPartResult, MultipartError>
  /** An `<Error>` inside the 200 fails like a 4xx. @since 0.2.0 */
  readonly completeMultipartUpload: (
    input: CompleteMultipartUploadInput
  ) => Effect.Effect<CompleteMultipartUploadResult, MultipartError>
  /** A second abort fails with `NoSuchUpload`: callers cleaning up count that as already gone. @since 0.2.0 */
  readonly abortMultipartUpload: (input: UploadInput) => Effect.Effect<void, MultipartError>
  /** @since 0.2.0 */
  readonly listMultipartUploads: (
    input?: ListMultipartUploadsInput
  ) => Effect.Effect<ListMultipartUploadsPage, ListError>
  /**
   * Every incomplete upload under a prefix, page after page (NextKeyMarker + NextUploadIdMarker). A truncated page
   * without both markers, or with markers that do not advance, fails with `CosDecodeError`. @since 0.2.0
   */
  readonly listMultipartUploadsStream: (
    input?: Omit<ListMultipartUploadsInput, "delimiter">
  ) => Stream.Stream<MultipartUpload, ListError>
  /** @since 0.2.0 */
  readonly listParts: (input: ListPartsInput) => Effect.Effect<ListPartsPage, MultipartError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const CosClient: Context.Tag<CosClient, CosClient> = internal.tag

/**
 * Whether a key can be sent in the XML body of a batch delete: no control characters other than tab (CR and LF
 * included, since an XML parser normalises line ends), no lone surrogates, no U+FFFE/U+FFFF. Other keys must be
 * deleted one by one with `deleteObject`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isXmlSafeKey: (key: string) => boolean = keys.isXmlSafeKey

/**
 * Compares keys in UTF-8 byte order, the order COS lists them (docs/protocol.md §3); JavaScript's `<` compares UTF-16
 * code units, which differs for characters above U+FFFF.
 *
 * @since 0.1.0
 * @category ordering
 */
export const compareKeys: (a: string, b: string) => number = keys.compareUtf8

/**
 * Why an object key cannot be sent (empty, over 850 UTF-8 bytes, `.`/`..`, a leading `/`, a lone surrogate), or
 * `undefined` if it can (docs/protocol.md §1).
 *
 * @since 0.1.0
 * @category predicates
 */
export const keyProblem: (key: string) => string | undefined = keys.keyProblem

/**
 * Builds a client over the HttpClient in context. Fails with `CosInvalidRequest` on an invalid region, bucket or
 * endpoint before any request.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<CosClient, CosInvalidRequest, HttpClient.HttpClient> =
  internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: (options: Options) => Layer.Layer<CosClient, CosInvalidRequest, HttpClient.HttpClient> =
  internal.layer

/**
 * Options of {@link layerConfig}.
 *
 * @since 0.1.0
 * @category models
 */
export type ConfigOptions = internal.ConfigOptions

const isWrapped = (config: unknown): boolean =>
  Config.isConfig(config) ||
  (typeof config === "object" && config !== null && Object.values(config).some((v) => Config.isConfig(v)))

/**
 * A client from configuration, in two shapes.
 *
 * - `layerConfig(config)` with a `Config` per option (`Config.Config.Wrap<Options>`, the shape of
 *   `@effect/sql-pg`'s `PgClient.layerConfig`): `Config.unwrap`, then `make`. A missing or malformed setting fails
 *   the layer with a `ConfigError` naming it; nothing is defaulted behind your back. For example
 *   `CosClient.layerConfig({ region: Config.string("COS_REGION"), credentials: Credentials.config() })`.
 * - `layerConfig(options?)` with plain values: reads region, bucket, endpoint, scheme and credentials from
 *   configuration (`COS_REGION`, `COS_BUCKET`, `COS_ENDPOINT`, `COS_SCHEME`, `COS_SECRET_ID`, `COS_SECRET_KEY`,
 *   `COS_SECURITY_TOKEN` by default); options given explicitly win. A missing region fails with
 *   `CosInvalidRequest`, missing credentials with `CosCredentialsError`, both naming the variable.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: {
  /**
   * @since 0.2.0
   * @category layers
   */
  (
    config: Config.Config.Wrap<Options>
  ): Layer.Layer<CosClient, ConfigError.ConfigError | CosInvalidRequest, HttpClient.HttpClient>
  /**
   * @since 0.1.0
   * @category layers
   */
  (options?: ConfigOptions): Layer.Layer<CosClient, CosInvalidRequest | CosCredentialsError, HttpClient.HttpClient>
} = ((config?: Config.Config.Wrap<Options> | ConfigOptions) =>
  config !== undefined && isWrapped(config)
    ? Layer.effect(
      internal.tag,
      Effect.flatMap(Config.unwrap(config as Config.Config.Wrap<Options>), internal.make)
    )
    : internal.layerConfig(config as ConfigOptions | undefined)) as any
