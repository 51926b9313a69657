/**
 * Where candidates come from: the objects listing (parallel key ranges), the versions listing (parallel ranges of
 * whole keys, per-key state across the pages of a range), or a caller's stream of keys. Each yields portions: the candidates of a page with the
 * segment they complete. One Effect per page, a synchronous loop per key. And, for `target: "incompleteUploads"`,
 * the listing of incomplete multipart uploads.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type {
  ListMultipartUploadsPage,
  ListObjectsPage,
  ListVersionsPage,
  MultipartUpload,
  ObjectIdentifier,
  ObjectSummary,
  VersionEntry
} from "../../CosClient.js"
import { keyProblem } from "../../CosClient.js"
import type { CosError } from "../../CosError.js"
import type * as Deletion from "../../Deletion.js"
import { nextUploadsCursor, type UploadsCursor, type VersionsCursor } from "../pagination.js"
import { type ListedPage, listPages, listVersionPages } from "../parallelList.js"
import { ageOk, compileFilters, type KeepLatest, matcher, sizeOk } from "./filters.js"
import { request } from "./requests.js"
import type { Run } from "./run.js"
import { type Cand, Kind, openSeg, type Seg } from "./segments.js"
import { VersionsSelector } from "./selection.js"

/**
 * Listed candidates with the segment they complete (its bounds final, its candidates all here).
 *
 * @internal
 */
export interface Portion {
  readonly cands: ReadonlyArray<Cand>
  readonly seg: Seg | undefined
  readonly listed: number
}

const listObjects = (run: Run, prefix: string, marker: string | undefined): Effect.Effect<ListObjectsPage, CosError> =>
  request(
    run,
    run.governor.acquireList,
    run.client.listObjects({ bucket: run.r.bucket, prefix, marker, maxKeys: 1000 }),
    run.governor.throttledList
  )

const listVersions = (run: Run, prefix: string, cursor: VersionsCursor): Effect.Effect<ListVersionsPage, CosError> =>
  request(
    run,
    run.governor.acquireList,
    run.client.listObjectVersions({
      bucket: run.r.bucket,
      prefix,
      keyMarker: cursor.keyMarker,
      versionIdMarker: cursor.versionIdMarker,
      maxKeys: 1000
    }),
    run.governor.throttledList
  )

/** @internal */
export const objectsSource = (
  run: Run,
  filters: Deletion.Filters,
  now: number,
  keep: KeepLatest | undefined
): Stream.Stream<Portion, CosError> => {
  const p = compileFilters(filters, now)
  // keepLatest ranks every object that passes the other filters, aged or not (Deletion.Filters.keepLatest).
  const ranked = keep !== undefined
  const checkSize = p.minSize !== undefined || p.maxSize !== undefined
  const keyOk = p.key
  return listPages({
    prefix: filters.prefix,
    startAfter: run.r.options.startAfter,
    concurrency: run.r.listConcurrency,
    fetch: (marker) => listObjects(run, filters.prefix, marker)
  }).pipe(Stream.map((page: ListedPage): Portion => {
    const contents = page.contents
    const seg = openSeg(page.lo, page.hi)
    const cands: Array<Cand> = []
    for (let i = 0; i < contents.length; i++) {
      const o: ObjectSummary = contents[i]!
      const lastModified = o.lastModified.getTime()
      const aged = ageOk(p, lastModified)
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
        aged,
        settled: false
      })
    }
    seg.pending = cands.length
    return { cands, seg, listed: contents.length }
  }))
}

/** @internal */
export const versionsSource = (
  run: Run,
  filters: Deletion.Filters,
  mode: Deletion.VersionsMode,
  now: number,
  keep: KeepLatest | undefined
): Stream.Stream<Portion, CosError> => {
  const startAfter = run.r.options.startAfter
  const aged = matcher(filters, now)
  // keepLatest ranks every entry that passes the other filters, aged or not (Deletion.Filters.keepLatest).
  const ranked = keep !== undefined && (filters.olderThan !== undefined || filters.newerThan !== undefined)
    ? matcher({ ...filters, olderThan: undefined, newerThan: undefined }, now)
    : aged
  // One selector per listed range: a key's versions all come from one range, in order, so the per-key state
  // (noncurrent since, a key's versions, keys released once the listing is past them) never crosses ranges.
  const selectors = new Map<object, VersionsSelector>()
  return listVersionPages({
    prefix: filters.prefix,
    startAfter,
    concurrency: run.r.listConcurrency,
    fetch: (cursor) => listVersions(run, filters.prefix, cursor)
  }).pipe(Stream.map((page: ListedPage<VersionEntry>): Portion => {
    let selector = selectors.get(page.range)
    if (selector === undefined) {
      selector = new VersionsSelector(mode, ranked, aged, page.lo)
      selectors.set(page.range, selector)
    }
    if (page.last) selectors.delete(page.range)
    const done = selector.page(page.contents, page.last, page.hi)
    return done === undefined
      ? { cands: [], seg: undefined, listed: page.contents.length }
      : { cands: done.cands, seg: done.seg, listed: page.contents.length }
  }))
}

/**
 * A caller's keys (deleteKeys): checked here, so one bad key fails alone instead of its whole batch.
 *
 * @internal
 */
export const callerSource = <E, R>(
  run: Run,
  keys: Stream.Stream<ObjectIdentifier & { readonly size?: number | undefined }, E, R>
): Stream.Stream<Portion, E, R> =>
  Stream.mapChunks(keys, (chunk) => {
    const cands: Array<Cand> = []
    for (const k of chunk) {
      const problem = typeof k.key === "string" ? keyProblem(k.key) : "an object key must be a string"
      if (problem !== undefined) {
        run.tally.matched++
        run.tally.fail({ key: String(k.key), versionId: k.versionId }, "InvalidKey", problem)
        continue
      }
      cands.push({
        key: k.key,
        versionId: k.versionId,
        size: k.size ?? 0,
        lastModified: 0,
        kind: k.versionId !== undefined ? Kind.Version : Kind.Object,
        seg: undefined,
        aged: true,
        settled: false
      })
    }
    return Chunk.of<Portion>({ cands, seg: undefined, listed: cands.length })
  })

// ---------------------------------------------------------------------------------------------------------------
// incomplete multipart uploads (docs/protocol.md "Multipart uploads")
// ---------------------------------------------------------------------------------------------------------------

/**
 * A listed page of incomplete uploads: those the filters select, and how many were listed.
 *
 * @internal
 */
export interface UploadsPortion {
  readonly uploads: ReadonlyArray<MultipartUpload>
  readonly listed: number
}

const listUploads = (
  run: Run,
  prefix: string,
  cursor: UploadsCursor
): Effect.Effect<ListMultipartUploadsPage, CosError> =>
  request(
    run,
    run.governor.acquireList,
    run.client.listMultipartUploads({
      bucket: run.r.bucket,
      prefix: prefix === "" ? undefined : prefix,
      keyMarker: cursor.keyMarker,
      uploadIdMarker: cursor.uploadIdMarker
    }),
    run.governor.throttledList
  )

/**
 * The open uploads under the prefix, page by page (one marker chain, under the listing budget), selected by the key
 * filters and the age window (`olderThan`, `newerThan`) counted from `Initiated`, as COS lifecycle's AbortIncompleteMultipartUpload counts.
 *
 * @internal
 */
export const uploadsSource = (
  run: Run,
  filters: Deletion.Filters,
  now: number
): Stream.Stream<UploadsPortion, CosError> => {
  const prefix = filters.prefix
  // The filters without sizes: uploads have none.
  const p = compileFilters(
    {
      prefix,
      include: filters.include,
      exclude: filters.exclude,
      olderThan: filters.olderThan,
      newerThan: filters.newerThan
    },
    now
  )
  const keyOk = p.key
  return Stream.paginateChunkEffect<UploadsCursor, UploadsPortion, CosError, never>(
    { keyMarker: "", uploadIdMarker: "" },
    (cursor) =>
      Effect.flatMap(listUploads(run, prefix, cursor), (page) => {
        const next = nextUploadsCursor("Deletion.purge", page, cursor)
        if (Either.isLeft(next)) return Effect.fail(next.left)
        const listed = page.uploads
        const uploads: Array<MultipartUpload> = []
        for (let i = 0; i < listed.length; i++) {
          const u = listed[i]!
          if (!u.key.startsWith(prefix) || !keyOk(u.key)) continue
          if (!ageOk(p, u.initiated.getTime())) continue
          uploads.push(u)
        }
        const portion: UploadsPortion = { uploads, listed: listed.length }
        return Effect.succeed([Chunk.of(portion), Option.fromNullable(next.right)] as const)
      })
  )
}
