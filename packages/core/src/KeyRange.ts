/**
 * Key ranges of a prefix, for work split over several processes: `split` cuts the keys under a prefix into
 * contiguous ranges `(after, through]` of about equal key counts (listing the prefix once with the parallel lister,
 * whose ranges partition the key space exactly), and `bounded` gives a view of a client whose object listing ends
 * after a key, so that `Deletion.purge` with `startAfter: range.after` over it lists exactly one range.
 *
 * Keys are compared in UTF-8 byte order, the order COS lists them in (docs/protocol.md §3).
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { CosClient as Client, ListError, ListObjectsPage } from "./CosClient.js"
import { CosClient } from "./CosClient.js"
import type { CosDecodeError } from "./CosError.js"
import { compareUtf8 } from "./internal/keys.js"
import { listPages } from "./internal/parallelList.js"

/**
 * Every key `k` with `after < k <= through` (`after === ""`: from the start of the prefix; `through === undefined`:
 * to its end, keys written later included).
 *
 * @since 0.2.0
 * @category models
 */
export interface Range {
  readonly after: string
  readonly through: string | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface SplitOptions {
  readonly bucket?: string | undefined
  readonly prefix: string
  /** Exclusive start key. */
  readonly startAfter?: string | undefined
  /** How many ranges at most (fewer when the prefix holds too few keys to cut). */
  readonly pieces: number
  /** Listing requests in flight while counting. Default 16. */
  readonly concurrency?: number | undefined
}

/** One key in this many is remembered as a possible cut: the ranges' sizes are exact to that many keys. */
const cutEvery = 100

/**
 * Lists the prefix once (keys only counted, one in 100 remembered) and cuts it into `pieces` contiguous ranges of
 * about equal key counts; the first starts at `startAfter`, the last is open (keys written after the count fall in
 * the range their key belongs to, so the ranges still cover every key exactly once).
 *
 * @since 0.2.0
 * @category constructors
 */
export const split = (options: SplitOptions): Effect.Effect<ReadonlyArray<Range>, ListError | CosDecodeError, Client> =>
  Effect.gen(function*() {
    const client = yield* CosClient
    const pieces = Math.max(1, Math.floor(options.pieces))
    const start = options.startAfter ?? ""
    if (pieces === 1) return [{ after: start, through: undefined }]
    // Possible cuts: keys listed, with how many keys of their page come up to and including them. Pages arrive out
    // of order; sorted by key afterwards.
    const marks: Array<{ key: string; keys: number }> = []
    let total = 0
    yield* listPages({
      prefix: options.prefix,
      startAfter: options.startAfter,
      concurrency: options.concurrency ?? 16,
      fetch: (marker) => client.listObjects({ bucket: options.bucket, prefix: options.prefix, marker, maxKeys: 1000 })
    }).pipe(Stream.runForEach((page) =>
      Effect.sync(() => {
        const n = page.contents.length
        total += n
        // each mark counts the keys of its page since the mark before it (pages cover disjoint intervals, so sorted
        // by key the marks of one page stay together, and the counts add up to the keys at or before each mark)
        for (let i = cutEvery - 1; i < n; i += cutEvery) marks.push({ key: page.contents[i]!.key, keys: cutEvery })
        if (n % cutEvery !== 0) marks.push({ key: page.contents[n - 1]!.key, keys: n % cutEvery })
      })
    ))
    marks.sort((a, b) => compareUtf8(a.key, b.key))
    const ranges: Array<Range> = []
    let after = start
    let seen = 0
    for (const mark of marks) {
      seen += mark.keys
      if (ranges.length + 1 >= pieces) break
      if (seen >= (total * (ranges.length + 1)) / pieces && compareUtf8(mark.key, after) > 0) {
        ranges.push({ after, through: mark.key })
        after = mark.key
      }
    }
    ranges.push({ after, through: undefined })
    return ranges
  })

/**
 * A view of `client` whose object listing holds only keys up to `through` (inclusive): pages are cut there and end
 * the listing, and a listing from a marker at or past it answers an empty last page without a request. Everything
 * else is the client itself.
 *
 * @since 0.2.0
 * @category combinators
 */
export const bounded = (client: Client, through: string | undefined): Client => {
  if (through === undefined) return client
  const empty = (marker: string): ListObjectsPage => ({
    name: "",
    prefix: "",
    marker,
    maxKeys: 0,
    isTruncated: false,
    nextMarker: undefined,
    contents: [],
    commonPrefixes: []
  })
  return {
    ...client,
    listObjects: (input) => {
      const marker = input?.marker
      if (marker !== undefined && compareUtf8(marker, through) >= 0) return Effect.succeed(empty(marker))
      return Effect.map(client.listObjects(input), (page) => {
        const contents = page.contents
        const n = contents.length
        if (n === 0 || compareUtf8(contents[n - 1]!.key, through) < 0) {
          // the page ends before the bound; a next marker at or past it ends the listing here too
          return page.isTruncated && page.nextMarker !== undefined && compareUtf8(page.nextMarker, through) >= 0
            ? { ...page, isTruncated: false, nextMarker: undefined }
            : page
        }
        let keep = 0
        while (keep < n && compareUtf8(contents[keep]!.key, through) <= 0) keep++
        return { ...page, contents: contents.slice(0, keep), isTruncated: false, nextMarker: undefined }
      })
    }
  }
}
