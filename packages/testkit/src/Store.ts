/**
 * The fake's model: buckets with a versioning state, and per key a stack of versions and delete markers with COS
 * semantics (cos-api.md §6). Keys are ordered by UTF-8 bytes in a B+ tree, so a page of a listing costs
 * O(log n + page) however large the bucket. Time comes from Effect's `Clock`: under `TestClock` objects age as
 * the test adjusts the clock.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import * as internal from "./internal/store.js"
import { compareUtf8 as compareUtf8_ } from "./internal/utf8.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-cos/testkit/Store")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A bucket's versioning state: never enabled, then Enabled ↔ Suspended (cos-api.md §6).
 *
 * @since 0.1.0
 * @category models
 */
export type VersioningState = internal.VersioningState

/**
 * An in-memory set of buckets. Mutable, shared by the fake's handler and the test that seeds or inspects it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Store {
  readonly [TypeId]: TypeId
  /** @internal */
  readonly impl: internal.StoreImpl
}

/**
 * One version or delete marker as seen by a test.
 *
 * @since 0.1.0
 * @category models
 */
export interface ObjectInfo {
  readonly key: string
  /** `"null"` for the null version (never-versioned or suspended writes); a generated id otherwise. */
  readonly versionId: string
  readonly isDeleteMarker: boolean
  readonly isLatest: boolean
  readonly lastModified: Date
  /** Quoted, as in the `ETag` header. */
  readonly etag: string
  readonly size: number
  readonly storageClass: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BucketOptions {
  /** `<BucketName>-<APPID>`, e.g. `examplebucket-1250000000`. */
  readonly name: string
  /** Default `ap-guangzhou`. */
  readonly region?: string | undefined
  /** Default `NeverEnabled`. */
  readonly versioning?: VersioningState | undefined
}

/**
 * Orders strings by their UTF-8 bytes, as COS orders keys (cos-api.md §3).
 *
 * @since 0.1.0
 * @category ordering
 */
export const compareUtf8: (a: string, b: string) => number = compareUtf8_

/**
 * Creates a store, optionally with buckets.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: { readonly buckets?: ReadonlyArray<BucketOptions | string> | undefined }): Store => {
  const impl = new internal.StoreImpl()
  for (const b of options?.buckets ?? []) {
    const o = typeof b === "string" ? { name: b } : b
    impl.createBucket(o.name, o.region ?? "ap-guangzhou", o.versioning ?? "NeverEnabled")
  }
  return { [TypeId]: TypeId, impl }
}

/**
 * Adds a bucket (no-op if it exists).
 *
 * @since 0.1.0
 * @category buckets
 */
export const createBucket = (store: Store, options: BucketOptions): Effect.Effect<void> =>
  Effect.sync(() => {
    store.impl.createBucket(options.name, options.region ?? "ap-guangzhou", options.versioning ?? "NeverEnabled")
  })

/**
 * Changes a bucket's versioning state. A bucket that had versioning on cannot go back to `NeverEnabled`.
 *
 * @since 0.1.0
 * @category buckets
 */
export const setVersioning = (store: Store, bucket: string, state: "Enabled" | "Suspended"): Effect.Effect<void> =>
  Effect.sync(() => {
    getBucket(store, bucket).versioning = state
  })

/**
 * @since 0.1.0
 * @category buckets
 */
export const versioning = (store: Store, bucket: string): Effect.Effect<VersioningState> =>
  Effect.sync(() => getBucket(store, bucket).versioning)

const getBucket = (store: Store, bucket: string): internal.Bucket => {
  const b = store.impl.buckets.get(bucket)
  if (b === undefined) throw new Error(`No such bucket in the fake: ${bucket}`)
  return b
}

/**
 * The fake ETag given to seeded objects (computing an MD5 per seeded key would cost more than the rest of seeding).
 *
 * @since 0.1.0
 * @category seeding
 */
export const seededEtag = "\"00000000000000000000000000000000\""

/**
 * @since 0.1.0
 * @category seeding
 */
export interface SeedOptions {
  readonly bucket: string
  readonly count: number
  /** Default `""`. Keys are `prefix + zero-padded index` unless `keyFn` is given. */
  readonly prefix?: string | undefined
  /** The key of object `i` (0-based); overrides `prefix`. */
  readonly keyFn?: ((i: number) => string) | undefined
  /** Age in ms at the current `Clock` time (last-modified = now - age); a number or per-index function. Default 0. */
  readonly ageMs?: number | ((i: number) => number) | undefined
  /** Size in bytes, a number or per-index function. Default 0. */
  readonly size?: number | ((i: number) => number) | undefined
  /** Default `STANDARD`. */
  readonly storageClass?: string | undefined
  /** Versions written per key (default 1); only a versioning-enabled bucket keeps more than one. */
  readonly versions?: number | undefined
  /** Put a delete marker on top of key `i` (as DELETE without versionId would), e.g. `(i) => i % 10 === 0`. */
  readonly deleteMarker?: boolean | ((i: number) => boolean) | undefined
}

/**
 * Creates `count` objects directly in the store, without HTTP, as PUTs would under the bucket's versioning state.
 * A million objects take a couple of seconds. Returns the number written.
 *
 * @since 0.1.0
 * @category seeding
 */
export const seed = (store: Store, options: SeedOptions): Effect.Effect<number> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.sync(() => {
      const bucket = getBucket(store, options.bucket)
      const prefix = options.prefix ?? ""
      const width = String(Math.max(0, options.count - 1)).length
      const keyFn = options.keyFn ?? ((i: number) => prefix + String(i).padStart(width, "0"))
      const age = options.ageMs ?? 0
      const size = options.size ?? 0
      const storageClass = options.storageClass ?? "STANDARD"
      const versions = options.versions ?? 1
      const marker = options.deleteMarker ?? false
      if (bucket.objects.size === 0 && versions === 1 && marker === false) {
        // Fast path: sorted keys into an empty bucket are bulk-loaded in O(n).
        const keys = new Array<string>(options.count)
        const values = new Array<internal.Version>(options.count)
        const versionId = bucket.versioning === "Enabled" ? undefined : "null"
        for (let i = 0; i < options.count; i++) {
          keys[i] = keyFn(i)
          values[i] = new internal.Version(
            versionId ?? store.impl.nextVersionId(),
            false,
            now - (typeof age === "number" ? age : age(i)),
            seededEtag,
            typeof size === "number" ? size : size(i),
            storageClass,
            undefined,
            undefined
          )
        }
        if (bucket.load(keys, values)) return options.count
      }
      for (let i = 0; i < options.count; i++) {
        const lastModified = now - (typeof age === "number" ? age : age(i))
        const key = keyFn(i)
        const input = {
          size: typeof size === "number" ? size : size(i),
          etag: seededEtag,
          storageClass,
          data: undefined
        }
        for (let v = 0; v < versions; v++) bucket.put(key, input, lastModified)
        if (marker === true || (typeof marker === "function" && marker(i))) bucket.deleteCurrent(key, lastModified)
      }
      return options.count
    }))

/**
 * Writes one object as a PUT would (ETag = quoted MD5 of the body). Returns its version id (`"null"` unless
 * versioning is enabled).
 *
 * @since 0.1.0
 * @category objects
 */
export const putObject = (store: Store, options: {
  readonly bucket: string
  readonly key: string
  readonly body?: Uint8Array | string | undefined
  readonly contentType?: string | undefined
  readonly storageClass?: string | undefined
}): Effect.Effect<string> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.sync(() => {
      const body = typeof options.body === "string"
        ? new TextEncoder().encode(options.body)
        : options.body ?? new Uint8Array(0)
      const v = getBucket(store, options.bucket).put(options.key, {
        size: body.length,
        etag: `"${createHash("md5").update(body).digest("hex")}"`,
        storageClass: options.storageClass ?? "STANDARD",
        data: { body, contentType: options.contentType, meta: [] }
      }, now)
      return v.versionId
    }))

/**
 * Deletes as DELETE Object would (cos-api.md §4): without `versionId` the key is removed or gets a delete marker,
 * with it that version is removed permanently.
 *
 * @since 0.1.0
 * @category objects
 */
export const deleteObject = (store: Store, options: {
  readonly bucket: string
  readonly key: string
  readonly versionId?: string | undefined
}): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.sync(() => {
      const b = getBucket(store, options.bucket)
      if (options.versionId === undefined) b.deleteCurrent(options.key, now)
      else b.deleteVersion(options.key, options.versionId)
    }))

const info = (key: string, v: internal.Version, isLatest: boolean): ObjectInfo => ({
  key,
  versionId: v.versionId,
  isDeleteMarker: v.deleteMarker,
  isLatest,
  lastModified: new Date(v.lastModified),
  etag: v.etag,
  size: v.size,
  storageClass: v.storageClass
})

/**
 * The current (visible) object of a key, if any: `undefined` if absent or if its latest version is a marker.
 *
 * @since 0.1.0
 * @category objects
 */
export const head = (store: Store, bucket: string, key: string): Effect.Effect<ObjectInfo | undefined> =>
  Effect.sync(() => {
    const v = getBucket(store, bucket).get(key)
    return v === undefined || v.deleteMarker ? undefined : info(key, v, true)
  })

/**
 * The current keys in UTF-8 order (delete-marked keys hidden), optionally under a prefix. Reads the whole range:
 * meant for assertions on small buckets.
 *
 * @since 0.1.0
 * @category objects
 */
export const keys = (store: Store, bucket: string, prefix = ""): Effect.Effect<ReadonlyArray<string>> =>
  Effect.sync(() => {
    const out: Array<string> = []
    for (const [k, v] of getBucket(store, bucket).objects.entries(prefix)) {
      if (!k.startsWith(prefix)) break
      if (!v.deleteMarker) out.push(k)
    }
    return out
  })

/**
 * Every version and delete marker, by key then newest first, optionally under a prefix.
 *
 * @since 0.1.0
 * @category objects
 */
export const versions = (store: Store, bucket: string, prefix = ""): Effect.Effect<ReadonlyArray<ObjectInfo>> =>
  Effect.sync(() => {
    const out: Array<ObjectInfo> = []
    for (const [k, headV] of getBucket(store, bucket).objects.entries(prefix)) {
      if (!k.startsWith(prefix)) break
      for (let v: internal.Version | undefined = headV; v !== undefined; v = v.older) out.push(info(k, v, v === headV))
    }
    return out
  })

/**
 * Number of keys holding at least one version or marker (O(1)).
 *
 * @since 0.1.0
 * @category objects
 */
export const size = (store: Store, bucket: string): Effect.Effect<number> =>
  Effect.sync(() => getBucket(store, bucket).objects.size)

/**
 * An incomplete multipart upload as seen by a test.
 *
 * @since 0.2.0
 * @category models
 */
export interface UploadInfo {
  readonly key: string
  readonly uploadId: string
  /** From the fake's `Clock` at initiation. */
  readonly initiated: Date
  readonly storageClass: string
  /** Part numbers uploaded so far, ascending. */
  readonly parts: ReadonlyArray<number>
}

/**
 * Starts a multipart upload as Initiate Multipart Upload would, at the `Clock`'s time (less `ageMs`), optionally with
 * parts (bodies of the given sizes, filled with zeros). Returns the upload id.
 *
 * @since 0.2.0
 * @category uploads
 */
export const initiateUpload = (store: Store, options: {
  readonly bucket: string
  readonly key: string
  readonly storageClass?: string | undefined
  readonly partSizes?: ReadonlyArray<number> | undefined
  /** Back-date the initiation by this many ms (e.g. for a server running on the real clock). */
  readonly ageMs?: number | undefined
}): Effect.Effect<string> =>
  Effect.flatMap(Clock.currentTimeMillis, (clockNow) =>
    Effect.sync(() => {
      const now = clockNow - (options.ageMs ?? 0)
      const u = new internal.Upload(
        options.key,
        store.impl.nextUploadId(now),
        now,
        (options.storageClass ?? "STANDARD").toUpperCase(),
        undefined,
        []
      )
      ;(options.partSizes ?? []).forEach((size, i) => {
        const body = new Uint8Array(size)
        u.parts.set(i + 1, { etag: `"${createHash("md5").update(body).digest("hex")}"`, body, lastModified: now })
      })
      getBucket(store, options.bucket).uploads.set(u.uploadId, u)
      return u.uploadId
    }))

/**
 * The incomplete uploads of a bucket under a prefix, in listing order (key in UTF-8 order, then upload id).
 *
 * @since 0.2.0
 * @category uploads
 */
export const uploads = (store: Store, bucket: string, prefix = ""): Effect.Effect<ReadonlyArray<UploadInfo>> =>
  Effect.sync(() =>
    getBucket(store, bucket).listUploads({
      prefix,
      delimiter: undefined,
      keyMarker: "",
      uploadIdMarker: "",
      maxUploads: Number.MAX_SAFE_INTEGER
    }).uploads.map((u) => ({
      key: u.key,
      uploadId: u.uploadId,
      initiated: new Date(u.initiated),
      storageClass: u.storageClass,
      parts: Array.from(u.parts.keys()).sort((a, b) => a - b)
    }))
  )
