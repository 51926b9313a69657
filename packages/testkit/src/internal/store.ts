import { createHash } from "node:crypto"
import { createRequire } from "node:module"
import type * as SortedBTree from "sorted-btree"
import { compareUtf8, MAX_CHAR } from "./utf8.js"

type BTree<K, V> = SortedBTree.default<K, V>
const require = createRequire(import.meta.url)
const BTreeCtor: typeof SortedBTree.default.default = require("sorted-btree").default
const bulkLoad: <K, V>(keys: Array<K>, values: Array<V>, maxNodeSize: number, compare: (a: K, b: K) => number) => BTree<
  K,
  V
> = require("sorted-btree/extended/bulkLoad").bulkLoad
const NODE_SIZE = 128

/** cos-api.md §6: never enabled → Enabled ↔ Suspended. */
export type VersioningState = "NeverEnabled" | "Enabled" | "Suspended"

/** What a version carries beyond listing fields; absent for seeded objects (their body is `size` zero bytes). */
export interface VersionData {
  readonly body: Uint8Array
  readonly contentType: string | undefined
  readonly meta: ReadonlyArray<readonly [string, string]>
}

/**
 * One version (or delete marker) of a key. Versions of a key form a list from newest (the tree's value) to oldest
 * through `older`. The "null" version (objects written while versioning was never enabled or suspended) has id
 * `"null"`; listings render it empty while the bucket never had versioning on (cos-api.md §3).
 */
export class Version {
  constructor(
    public versionId: string,
    public deleteMarker: boolean,
    public lastModified: number,
    public etag: string,
    public size: number,
    public storageClass: string,
    public data: VersionData | undefined,
    public older: Version | undefined
  ) {}
}

export interface ListObjectsQuery {
  readonly prefix: string
  readonly delimiter: string | undefined
  readonly marker: string
  readonly maxKeys: number
}

export interface ListObjectsResult {
  readonly contents: Array<readonly [string, Version]>
  readonly commonPrefixes: Array<string>
  readonly isTruncated: boolean
  readonly nextMarker: string | undefined
}

export interface ListVersionsQuery {
  readonly prefix: string
  readonly delimiter: string | undefined
  readonly keyMarker: string
  readonly versionIdMarker: string | undefined
  readonly maxKeys: number
}

export interface VersionEntry {
  readonly key: string
  readonly version: Version
  readonly isLatest: boolean
}

export interface ListVersionsResult {
  readonly versions: Array<VersionEntry>
  readonly commonPrefixes: Array<string>
  readonly isTruncated: boolean
  readonly nextKeyMarker: string | undefined
  readonly nextVersionIdMarker: string | undefined
}

export interface PutInput {
  readonly size: number
  readonly etag: string
  readonly storageClass: string
  readonly data: VersionData | undefined
}

export interface DeleteOutcome {
  /** A delete marker was created (no versionId) or removed (with versionId). */
  readonly deleteMarker: boolean
  /** The version id created (marker) or removed; undefined for a plain delete in a never-versioned bucket. */
  readonly versionId: string | undefined
}

const withoutNull = (head: Version | undefined): Version | undefined => {
  if (head === undefined) return undefined
  if (head.versionId === "null") return head.older
  let prev = head
  for (let v = head.older; v !== undefined; prev = v, v = v.older) {
    if (v.versionId === "null") {
      prev.older = v.older
      break
    }
  }
  return head
}

/** One part of an incomplete upload. */
export interface UploadPart {
  readonly etag: string
  readonly body: Uint8Array
  readonly lastModified: number
}

/** An incomplete multipart upload (docs/protocol.md "Multipart uploads"). */
export class Upload {
  readonly parts = new Map<number, UploadPart>()
  constructor(
    readonly key: string,
    readonly uploadId: string,
    readonly initiated: number,
    readonly storageClass: string,
    readonly contentType: string | undefined,
    readonly meta: ReadonlyArray<readonly [string, string]>
  ) {}
}

export interface ListUploadsQuery {
  readonly prefix: string
  readonly delimiter: string | undefined
  readonly keyMarker: string
  readonly uploadIdMarker: string
  readonly maxUploads: number
}

export interface ListUploadsResult {
  readonly uploads: Array<Upload>
  readonly commonPrefixes: Array<string>
  readonly isTruncated: boolean
  readonly nextKeyMarker: string | undefined
  readonly nextUploadIdMarker: string | undefined
}

const compareUploads = (a: Upload, b: Upload): number => {
  const c = compareUtf8(a.key, b.key)
  return c !== 0 ? c : a.uploadId < b.uploadId ? -1 : a.uploadId > b.uploadId ? 1 : 0
}

export class Bucket {
  objects: BTree<string, Version> = new BTreeCtor<string, Version>(undefined, compareUtf8, NODE_SIZE)
  /** Incomplete uploads by id. Few in any test, so listings sort them each time. */
  readonly uploads = new Map<string, Upload>()
  constructor(
    readonly name: string,
    readonly region: string,
    public versioning: VersioningState,
    private readonly nextVersionId: () => string
  ) {}

  /** Writes a new current version (cos-api.md §6 PUT semantics per versioning state). */
  put(key: string, input: PutInput, now: number): Version {
    const { data, etag, size, storageClass } = input
    let v: Version
    switch (this.versioning) {
      case "NeverEnabled":
        v = new Version("null", false, now, etag, size, storageClass, data, undefined)
        break
      case "Enabled":
        v = new Version(this.nextVersionId(), false, now, etag, size, storageClass, data, this.objects.get(key))
        break
      case "Suspended":
        v = new Version("null", false, now, etag, size, storageClass, data, withoutNull(this.objects.get(key)))
        break
    }
    this.objects.set(key, v)
    return v
  }

  /**
   * Fills an empty bucket from keys in strictly ascending UTF-8 order in O(n) (seeding). Returns false, changing
   * nothing, if the bucket is not empty or the keys are not sorted.
   */
  load(keys: Array<string>, values: Array<Version>): boolean {
    if (this.objects.size > 0) return false
    for (let i = 1; i < keys.length; i++) if (compareUtf8(keys[i - 1]!, keys[i]!) >= 0) return false
    this.objects = bulkLoad(keys, values, NODE_SIZE, compareUtf8)
    return true
  }

  /** DELETE without versionId (cos-api.md §4). */
  deleteCurrent(key: string, now: number): DeleteOutcome {
    switch (this.versioning) {
      case "NeverEnabled":
        this.objects.delete(key)
        return { deleteMarker: false, versionId: undefined }
      case "Enabled": {
        const id = this.nextVersionId()
        this.objects.set(key, new Version(id, true, now, "", 0, "STANDARD", undefined, this.objects.get(key)))
        return { deleteMarker: true, versionId: id }
      }
      case "Suspended": {
        const older = withoutNull(this.objects.get(key))
        this.objects.set(key, new Version("null", true, now, "", 0, "STANDARD", undefined, older))
        return { deleteMarker: true, versionId: "null" }
      }
    }
  }

  /**
   * Removes many keys of a never-versioned bucket at once. Keys that are adjacent in the tree (absent keys do not
   * break adjacency) go in one `deleteRange`: a batch taken from a listing costs one tree walk instead of a descent
   * per key.
   */
  deleteMany(keys: ReadonlyArray<string>): void {
    if (keys.length === 0) return
    const sorted = Array.from(new Set(keys)).sort(compareUtf8)
    const runs: Array<readonly [string, string]> = []
    let runStart: string | undefined
    let runEnd = ""
    let it = this.objects.entries(sorted[0])
    let cur = it.next()
    for (let i = 0; i < sorted.length; i++) {
      const k = sorted[i]!
      if (cur.done) break
      const c = compareUtf8(cur.value[0], k)
      if (c > 0) continue // absent
      if (c === 0) {
        if (runStart === undefined) runStart = k
        runEnd = k
        cur = it.next()
        continue
      }
      // The tree holds a key between the run and k that is not in the batch: close the run, seek to k.
      if (runStart !== undefined) runs.push([runStart, runEnd])
      runStart = undefined
      it = this.objects.entries(k)
      cur = it.next()
      i--
    }
    if (runStart !== undefined) runs.push([runStart, runEnd])
    for (const [lo, hi] of runs) {
      if (lo === hi) this.objects.delete(lo)
      else this.objects.deleteRange(lo, hi, true)
    }
  }

  /** DELETE ?versionId: permanently removes that version or marker; absent → nothing (still a success). */
  deleteVersion(key: string, versionId: string): DeleteOutcome {
    const head = this.objects.get(key)
    if (head === undefined) return { deleteMarker: false, versionId }
    if (head.versionId === versionId) {
      if (head.older === undefined) this.objects.delete(key)
      else this.objects.set(key, head.older)
      return { deleteMarker: head.deleteMarker, versionId }
    }
    let prev = head
    for (let v = head.older; v !== undefined; prev = v, v = v.older) {
      if (v.versionId === versionId) {
        prev.older = v.older
        return { deleteMarker: v.deleteMarker, versionId }
      }
    }
    return { deleteMarker: false, versionId }
  }

  get(key: string, versionId?: string): Version | undefined {
    const head = this.objects.get(key)
    if (versionId === undefined) return head
    for (let v = head; v !== undefined; v = v.older) if (v.versionId === versionId) return v
    return undefined
  }

  /** GET Bucket (cos-api.md §3): O(log n + page), common prefixes skipped by re-seeking past them. */
  list(q: ListObjectsQuery): ListObjectsResult {
    const { delimiter, marker, maxKeys, prefix } = q
    const contents: Array<readonly [string, Version]> = []
    const commonPrefixes: Array<string> = []
    let count = 0
    let last: string | undefined
    let truncated = false
    const start = compareUtf8(marker, prefix) > 0 ? marker : prefix
    let it = this.objects.entries(start)
    let lastCp: string | undefined
    for (;;) {
      const r = it.next()
      if (r.done) break
      const key = r.value[0]
      const v = r.value[1]
      if (!key.startsWith(prefix)) break
      if (key === marker) continue
      if (delimiter !== undefined && delimiter !== "") {
        const idx = key.indexOf(delimiter, prefix.length)
        if (idx >= 0) {
          const cp = key.slice(0, idx + delimiter.length)
          if (cp === lastCp) continue // only reached for keys under cp + U+10FFFF (pathological)
          lastCp = cp
          // The prefix is shown only if it sorts after the marker and holds a visible key.
          if (compareUtf8(cp, marker) > 0 && (!v.deleteMarker || this.hasVisible(cp, key))) {
            if (count === maxKeys) {
              truncated = true
              break
            }
            commonPrefixes.push(cp)
            count++
            last = cp
          }
          it = this.objects.entries(cp + MAX_CHAR)
          continue
        }
      }
      if (v.deleteMarker) continue
      if (count === maxKeys) {
        truncated = true
        break
      }
      contents.push([key, v])
      count++
      last = key
    }
    return { contents, commonPrefixes, isTruncated: truncated, nextMarker: truncated ? (last ?? marker) : undefined }
  }

  private hasVisible(cp: string, from: string): boolean {
    for (const [key, v] of this.objects.entries(from)) {
      if (!key.startsWith(cp)) return false
      if (!v.deleteMarker) return true
    }
    return false
  }

  /** GET Bucket ?versions (cos-api.md §3): versions and markers by key, newest first per key. */
  listVersions(q: ListVersionsQuery): ListVersionsResult {
    const { delimiter, keyMarker, maxKeys, prefix, versionIdMarker } = q
    const versions: Array<VersionEntry> = []
    const commonPrefixes: Array<string> = []
    let count = 0
    let truncated = false
    let nextKey: string | undefined
    let nextVersion: string | undefined
    const start = compareUtf8(keyMarker, prefix) > 0 ? keyMarker : prefix
    let it = this.objects.entries(start)
    let lastCp: string | undefined
    outer: for (;;) {
      const r = it.next()
      if (r.done) break
      const key = r.value[0]
      const head = r.value[1]
      if (!key.startsWith(prefix)) break
      let v: Version | undefined = head
      if (keyMarker !== "" && key === keyMarker) {
        if (versionIdMarker === undefined || versionIdMarker === "") continue
        while (v !== undefined && this.renderId(v.versionId) !== versionIdMarker) v = v.older
        if (v === undefined) continue
        v = v.older
      }
      if (delimiter !== undefined && delimiter !== "") {
        const idx = key.indexOf(delimiter, prefix.length)
        if (idx >= 0) {
          const cp = key.slice(0, idx + delimiter.length)
          if (cp === lastCp) continue
          lastCp = cp
          if (compareUtf8(cp, keyMarker) > 0) {
            if (count === maxKeys) {
              truncated = true
              break
            }
            commonPrefixes.push(cp)
            count++
            nextKey = cp
            nextVersion = ""
          }
          it = this.objects.entries(cp + MAX_CHAR)
          continue
        }
      }
      for (; v !== undefined; v = v.older) {
        if (count === maxKeys) {
          truncated = true
          break outer
        }
        versions.push({ key, version: v, isLatest: v === head })
        count++
        nextKey = key
        nextVersion = this.renderId(v.versionId)
      }
    }
    return {
      versions,
      commonPrefixes,
      isTruncated: truncated,
      nextKeyMarker: truncated ? (nextKey ?? keyMarker) : undefined,
      nextVersionIdMarker: truncated ? (nextVersion ?? versionIdMarker ?? "") : undefined
    }
  }

  /**
   * List Multipart Uploads: by key (UTF-8), then upload id. `keyMarker` alone skips every upload of that key; with
   * `uploadIdMarker` the key's uploads with larger ids follow. A delimiter folds keys into prefixes, each one entry.
   */
  listUploads(q: ListUploadsQuery): ListUploadsResult {
    const { delimiter, keyMarker, maxUploads, prefix, uploadIdMarker } = q
    const all = Array.from(this.uploads.values()).filter((u) => u.key.startsWith(prefix)).sort(compareUploads)
    const uploads: Array<Upload> = []
    const commonPrefixes: Array<string> = []
    let count = 0
    let truncated = false
    let nextKey: string | undefined
    let nextId: string | undefined
    let lastCp: string | undefined
    for (const u of all) {
      const c = compareUtf8(u.key, keyMarker)
      if (keyMarker !== "" && (c < 0 || (c === 0 && (uploadIdMarker === "" || u.uploadId <= uploadIdMarker)))) continue
      if (delimiter !== undefined && delimiter !== "") {
        const idx = u.key.indexOf(delimiter, prefix.length)
        if (idx >= 0) {
          const cp = u.key.slice(0, idx + delimiter.length)
          if (cp === lastCp || (keyMarker !== "" && compareUtf8(cp, keyMarker) <= 0)) continue
          lastCp = cp
          if (count === maxUploads) {
            truncated = true
            break
          }
          commonPrefixes.push(cp)
          count++
          nextKey = cp
          nextId = ""
          continue
        }
      }
      if (count === maxUploads) {
        truncated = true
        break
      }
      uploads.push(u)
      count++
      nextKey = u.key
      nextId = u.uploadId
    }
    return {
      uploads,
      commonPrefixes,
      isTruncated: truncated,
      nextKeyMarker: truncated ? nextKey : undefined,
      nextUploadIdMarker: truncated ? nextId : undefined
    }
  }

  /** The version id as COS shows it: empty while versioning was never enabled (cos-api.md §3). */
  renderId(id: string): string {
    return this.versioning === "NeverEnabled" ? "" : id
  }
}

export class StoreImpl {
  readonly buckets = new Map<string, Bucket>()
  private versionCounter = 0

  readonly nextVersionId = (): string => {
    this.versionCounter++
    // Opaque, base64-ish like COS's `MTg0NDUxNzgyODk2ODc1NjY0NzQ`; newer ids are smaller numbers.
    return Buffer.from(String(9_000_000_000_000_000 - this.versionCounter)).toString("base64").replace(/=+$/, "")
  }

  private uploadCounter = 0

  /** Unix seconds of the initiation, then 64 hex digits, like every upload id COS was seen to hand out. */
  readonly nextUploadId = (now: number): string => {
    this.uploadCounter++
    const hex = createHash("sha256").update(`upload ${this.uploadCounter}`).digest("hex")
    return String(Math.max(0, Math.floor(now / 1000))).padStart(10, "0") + hex
  }

  createBucket(name: string, region: string, versioning: VersioningState): Bucket {
    const existing = this.buckets.get(name)
    if (existing !== undefined) return existing
    const b = new Bucket(name, region, versioning, this.nextVersionId)
    this.buckets.set(name, b)
    return b
  }
}
