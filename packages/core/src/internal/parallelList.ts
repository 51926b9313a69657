/**
 * Parallel listing of one prefix. A prefix listed as one marker chain yields one page per round trip (1000 keys per
 * 20 ms at best is 50,000 keys/s), so with `concurrency > 1` the key range under the prefix is cut into
 * marker-bounded ranges `(lo, hi]` listed at once and merged into one stream of pages.
 *
 * Ranges are split adaptively (work stealing): whenever fewer than `concurrency` ranges are being listed, the range
 * with the most estimated work left is cut. Split keys are computed, not guessed: a key is read as a number in the
 * alphabet of the characters seen so far, and the page just listed tells how wide 1000 keys are. The open last
 * range is cut a few pages ahead of its position; a bounded range in the middle of what is left. Whatever the key
 * distribution, ranges stay a partition of the key space — a split key `m` turns `(lo, hi]` into `(lo, m]` and
 * `(m, hi]`, which the listing honours exactly (marker = exclusive start, keys above `hi` dropped) — so every key is
 * listed exactly once, and a bad estimate costs only a wasted request.
 *
 * Versions are listed the same way (`listVersionPages`): ranges are cut between keys, never inside one, so every
 * version of a key is listed by one range, in order (newest first), over as many pages as it takes; a range that
 * ends on a key with more versions than a page goes on listing them from its key and version id markers. Each page
 * names its range and whether it is the range's last, so that per-key state (noncurrent, delete markers, "release a
 * key only once the listing is past it") can be kept per range.
 *
 * Keys are compared in UTF-8 byte order, the order COS lists them in (docs/protocol.md §3).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ObjectSummary, VersionEntry } from "../CosClient.js"
import type { CosDecodeError } from "../CosError.js"
import { compareUtf8 } from "./keys.js"
import { nextMarker, nextVersionsCursor, type VersionsCursor } from "./pagination.js"

/** One page of objects as the listing source answers it. @internal */
export interface SourcePage {
  readonly contents: ReadonlyArray<ObjectSummary>
  readonly isTruncated: boolean
  readonly nextMarker?: string | undefined
}

/** One page of versions as the listing source answers it. @internal */
export interface VersionsSourcePage {
  readonly versions: ReadonlyArray<VersionEntry>
  readonly isTruncated: boolean
  readonly nextKeyMarker?: string | undefined
  readonly nextVersionIdMarker?: string | undefined
}

/**
 * A listed page with the key interval it covers: every key `k` under the prefix with `lo < k <= hi` (`lo === ""`:
 * from the start; `hi === undefined`: to the end) has been listed in this page and in no other. For versions, a
 * key's versions may continue on the range's next page (then `hi` is that key); the last page of a range (`last`)
 * ends on the range's bound, and the first starts on it.
 *
 * @internal
 */
export interface ListedPage<A = ObjectSummary> {
  readonly contents: ReadonlyArray<A>
  readonly lo: string
  readonly hi: string | undefined
  /** The range this page belongs to (an identity: its pages come in listing order). */
  readonly range: object
  /** Whether the range ends with this page. */
  readonly last: boolean
}

/** @internal */
export interface ParallelListOptions<C, P, E> {
  readonly prefix: string
  /** Exclusive start key. */
  readonly startAfter?: string | undefined
  /** Ranges listed at once. */
  readonly concurrency: number
  /** One list request from a cursor (an exclusive start; `undefined` marker: from the beginning of the prefix). */
  readonly fetch: (cursor: C) => Effect.Effect<P, E>
  /** Pages buffered ahead of the consumer (besides the requests in flight). Default 1 with concurrency 1, else 2. */
  readonly buffer?: number | undefined
}

/** How one kind of listing pages: its entries, its cursor, and the one pagination rule (docs/protocol.md §3). */
interface Paging<P, A extends { readonly key: string }, C> {
  readonly entries: (page: P) => ReadonlyArray<A>
  readonly isTruncated: (page: P) => boolean
  /** The cursor of a range's first request: after every entry of key `after` (`undefined`: the prefix's start). */
  readonly after: (key: string | undefined) => C
  /** The cursor of the next page, `undefined` at the end, or the page breaks the rule. */
  readonly next: (page: P, cursor: C) => Either.Either<C | undefined, CosDecodeError>
  /** The key a cursor stands on: every entry of a key before it has been listed. */
  readonly keyOf: (cursor: C) => string
  /** Whether a request from `cursor` may still list entries of keys up to `hi`. */
  readonly before: (cursor: C, hi: string) => boolean
}

const objectsPaging: Paging<SourcePage, ObjectSummary, string | undefined> = {
  entries: (page) => page.contents,
  isTruncated: (page) => page.isTruncated,
  after: (key) => key,
  next: (page, marker) => nextMarker("CosClient.listObjects", page, marker),
  keyOf: (marker) => marker ?? "",
  // The marker is the last key listed: the range is done once it reaches `hi`.
  before: (marker, hi) => marker === undefined || compareUtf8(marker, hi) < 0
}

const versionsPaging: Paging<VersionsSourcePage, VersionEntry, VersionsCursor> = {
  entries: (page) => page.versions,
  isTruncated: (page) => page.isTruncated,
  after: (key) => ({ keyMarker: key, versionIdMarker: undefined }),
  next: (page, cursor) => nextVersionsCursor("CosClient.listObjectVersions", page, cursor),
  keyOf: (cursor) => cursor.keyMarker ?? "",
  // On `hi` itself with a version id marker, `hi` may have more versions: list them. Without one (or an empty one:
  // a never-versioned key has one version), the next request starts after the whole key.
  before: (cursor, hi) => {
    const order = compareUtf8(cursor.keyMarker ?? "", hi)
    return order < 0 || (order === 0 && cursor.versionIdMarker !== undefined && cursor.versionIdMarker !== "")
  }
}

// ---------------------------------------------------------------------------------------------------------------
// key arithmetic
// ---------------------------------------------------------------------------------------------------------------

const commonPrefixLength = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  let i = 0
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++
  // Never cut a surrogate pair in two.
  if (i > 0 && i < a.length) {
    const c = a.charCodeAt(i - 1)
    if (c >= 0xd800 && c <= 0xdbff) i--
  }
  return i
}

/** The characters seen in keys, sorted: the digits keys are read with. @internal */
export class Alphabet {
  private readonly seen = new Set<number>()
  cps: Array<number> = []
  private dirty = false

  add(s: string, from: number): void {
    for (let i = from; i < s.length; i++) {
      const cp = s.codePointAt(i)!
      if (cp > 0xffff) i++
      if (!this.seen.has(cp)) {
        this.seen.add(cp)
        this.dirty = true
      }
    }
  }

  /** Call after `add`s and before reading. */
  freeze(): void {
    if (this.dirty) {
      this.cps = Array.from(this.seen).sort((a, b) => a - b)
      this.dirty = false
    }
  }

  rank(cp: number): number {
    const cps = this.cps
    let lo = 0
    let hi = cps.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const v = cps[mid]!
      if (v === cp) return mid
      if (v < cp) lo = mid + 1
      else hi = mid - 1
    }
    return lo // unreachable when every character was added first
  }
}

/** Reads `digits` code points of `s` from `start` as a number in base `alphabet size + 1` (0 = end of string). */
const toNumber = (alphabet: Alphabet, s: string, start: number, digits: number, base: number): number => {
  let v = 0
  let i = start
  for (let d = 0; d < digits; d++) {
    let digit = 0
    if (i < s.length) {
      const cp = s.codePointAt(i)!
      i += cp > 0xffff ? 2 : 1
      digit = alphabet.rank(cp) + 1
    }
    v = v * base + digit
  }
  return v
}

const fromNumber = (alphabet: Alphabet, head: string, v: number, digits: number, base: number): string => {
  const ds: Array<number> = new Array(digits)
  let x = Math.floor(v)
  for (let d = digits - 1; d >= 0; d--) {
    ds[d] = x % base
    x = Math.floor(x / base)
  }
  let s = head
  for (const d of ds) {
    if (d === 0) break
    s += String.fromCodePoint(alphabet.cps[d - 1]!)
  }
  return s
}

/** The shortest prefix of `m` still strictly above `lo` (keeps split markers short). */
const shorten = (m: string, lo: string): string => {
  for (let n = 1; n < m.length; n++) {
    const c = m.charCodeAt(n - 1)
    if (c >= 0xd800 && c <= 0xdbff) continue
    const p = m.slice(0, n)
    if (compareUtf8(p, lo) > 0) return p
  }
  return m
}

/** The fewest pages a new range is cut for (estimated). */
const minPagesPerRange = 4

/** UTF-8 length cap of a marker (keys are at most 850 bytes, docs/protocol.md §1). */
const maxMarkerBytes = 850

/** @internal */
export interface Range<C> {
  /**
   * Position: every key of the range `< cur` has been listed, and `cur` itself too for objects (for versions, up to
   * `cursor`'s version id marker). `""` before the first page.
   */
  cur: string
  /** The cursor of the next request. */
  cursor: C
  /** Whether a page was listed (marker `cur` is a real key position). */
  started: boolean
  /** Inclusive upper bound; `undefined` = to the end of the prefix. */
  hi: string | undefined
  done: boolean
  /** First and last key of the last full page: how wide a page of keys is here. */
  first: string | undefined
  last: string | undefined
  pages: number
}

interface Numbers {
  readonly head: string
  readonly start: number
  readonly digits: number
  readonly base: number
}

/**
 * Split keys for `r`, strictly increasing and strictly between `r.cur` and `r.hi`: `pieces - 1` new ranges. An open
 * range keeps `keep` pages' worth and hands the rest out in chunks of `keep` pages, the last one open.
 *
 * @internal
 */
export const splitKeys = (
  alphabet: Alphabet,
  prefixLength: number,
  r: Range<unknown>,
  pieces: number,
  keep: number
): Array<string> => {
  const f = r.first
  const l = r.last
  if (!r.started || f === undefined || l === undefined || pieces < 2) return []
  const cur = r.cur
  const hi = r.hi
  alphabet.add(cur, prefixLength)
  alphabet.add(f, prefixLength)
  alphabet.add(l, prefixLength)
  if (hi !== undefined) alphabet.add(hi, prefixLength)
  alphabet.freeze()
  // The window of digits: from a little before where the page's first and last keys differ (so that carries into
  // earlier characters are seen), or where cur and hi differ, whichever comes first.
  let start = Math.max(prefixLength, commonPrefixLength(f, l) - 3)
  start = Math.min(start, commonPrefixLength(cur, f), commonPrefixLength(cur, l))
  if (hi !== undefined) start = Math.min(start, commonPrefixLength(cur, hi))
  start = Math.max(start, Math.min(prefixLength, cur.length))
  if (start > 0 && start < cur.length) {
    const c = cur.charCodeAt(start - 1)
    if (c >= 0xd800 && c <= 0xdbff) start--
  }
  const base = alphabet.cps.length + 1
  // No character past the prefix in any of these keys (e.g. every one equals the prefix): nothing to interpolate
  // between. Without this guard, base 1 made `digits` infinite and the lister spin forever.
  if (base < 2) return []
  const digits = Math.max(1, Math.min(52, Math.floor(52 / Math.log2(base))))
  const n: Numbers = { head: cur.slice(0, start), start, digits, base }
  const num = (s: string) => toNumber(alphabet, s, start, digits, base)
  const vCur = num(cur)
  const span = Math.max(num(l) - num(f), 1)
  const max = Math.pow(base, digits)
  const targets: Array<number> = []
  if (hi === undefined) {
    for (let j = 1; j < pieces; j++) targets.push(vCur + span * (1 + keep * j))
  } else {
    const width = num(hi) - vCur
    // Leave the page in flight (about one span) to the current owner; split the rest evenly.
    const rest = width - span
    // Every piece should hold a few pages: each range ends with a partial page, a request that lists little.
    const p = Math.min(pieces, Math.floor(rest / (span * minPagesPerRange)))
    if (p < 2) return []
    pieces = p
    for (let j = 1; j < pieces; j++) targets.push(vCur + span + rest * j / pieces)
  }
  const out: Array<string> = []
  let prev = cur
  for (const t of targets) {
    if (!(t < max)) break
    const m = shorten(fromNumber(alphabet, n.head, t, n.digits, n.base), prev)
    if (compareUtf8(m, prev) <= 0) continue
    if (hi !== undefined && compareUtf8(m, hi) >= 0) break
    if (Buffer.byteLength(m, "utf8") > maxMarkerBytes) break
    out.push(m)
    prev = m
  }
  return out
}

/** First index in `contents` whose key is above `hi`. */
const cutIndex = (contents: ReadonlyArray<{ readonly key: string }>, hi: string): number => {
  let lo = 0
  let up = contents.length
  while (lo < up) {
    const mid = (lo + up) >>> 1
    if (compareUtf8(contents[mid]!.key, hi) <= 0) lo = mid + 1
    else up = mid
  }
  return lo
}

// ---------------------------------------------------------------------------------------------------------------
// the lister
// ---------------------------------------------------------------------------------------------------------------

/** The end of a range, on its span: how many pages and keys it listed, and how it ended. */
const rangeOutcome = (r: Range<unknown>, keys: number, outcome: "done" | "failed") =>
  Effect.annotateCurrentSpan({ "range.to": r.hi ?? "", pages: r.pages, keys, outcome })

/**
 * Lists every key under `prefix` after `startAfter` exactly once, as a stream of pages with the intervals they cover.
 * With `concurrency` 1, this is the plain marker chain.
 *
 * @internal
 */
export const listPages = <E>(
  options: ParallelListOptions<string | undefined, SourcePage, E>
): Stream.Stream<ListedPage, E | CosDecodeError> => lister(objectsPaging, options)

/**
 * Lists every version and delete marker under `prefix` after key `startAfter` exactly once, in ranges of whole keys:
 * each range's pages come in listing order, and a key's versions all belong to one range.
 *
 * @internal
 */
export const listVersionPages = <E>(
  options: ParallelListOptions<VersionsCursor, VersionsSourcePage, E>
): Stream.Stream<ListedPage<VersionEntry>, E | CosDecodeError> => lister(versionsPaging, options)

const lister = <P, A extends { readonly key: string }, C, E>(
  paging: Paging<P, A, C>,
  options: ParallelListOptions<C, P, E>
): Stream.Stream<ListedPage<A>, E | CosDecodeError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const concurrency = Math.max(1, Math.floor(options.concurrency))
    const queue = yield* Effect.acquireRelease(
      Queue.bounded<Exit.Exit<ListedPage<A>, Option.Option<E | CosDecodeError>>>(
        options.buffer ?? Math.min(2, concurrency)
      ),
      Queue.shutdown
    )
    const prefixLength = options.prefix.length
    const alphabet = new Alphabet()
    const ranges = new Set<Range<C>>()
    let active = 0
    let totalPages = 0
    /** Pages that came back full (truncated), and ranges created by splits. */
    let fullPages = 0
    let created = 0
    let finished = false

    /** Offers decided but not yet in the queue: the end is offered only once every range is done and offered. */
    let pending = 0
    const register = (r: Range<C>): void => {
      ranges.add(r)
      active++
    }
    // Every range's span is a child of the span the listing started under (Deletion.purge), not of the range it was
    // cut from: one flat list of ranges per run.
    const parent = Option.getOrUndefined(yield* Effect.option(Effect.currentSpan))
    const start = (r: Range<C>): Effect.Effect<void, never, Scope.Scope> => {
      const spanned = worker(r).pipe(
        Effect.withSpan("Deletion.listRange", {
          attributes: { prefix: options.prefix, "range.from": r.started ? r.cur : (options.startAfter ?? "") },
          ...(parent === undefined ? {} : { parent })
        })
      )
      return Effect.asVoid(Effect.forkScoped(spanned))
    }

    /** Hands free slots to new ranges cut from the busiest ones. Synchronous: returns the ranges to start. */
    const rebalance = (): Array<Range<C>> => {
      const fresh: Array<Range<C>> = []
      // Each range ends with a partial page. Splits are budgeted against the full pages listed so far, so that a
      // key distribution the estimates misjudge (ranges that turn out empty) costs a bounded share of requests.
      let free = Math.min(concurrency - active, concurrency + Math.floor(fullPages / minPagesPerRange) - created)
      if (free <= 0 || finished) return fresh
      const keep = Math.min(64, Math.max(minPagesPerRange, Math.round(totalPages / (concurrency * 2))))
      const candidates = Array.from(ranges).filter((r) => !r.done && r.started)
      // Open range first (unbounded work), then the ones that listed the most pages.
      candidates.sort((a, b) => (a.hi === undefined ? -1 : b.hi === undefined ? 1 : b.pages - a.pages))
      for (const victim of candidates) {
        if (free <= 0) break
        const keys = splitKeys(alphabet, prefixLength, victim, free + 1, keep)
        if (keys.length === 0) continue
        const oldHi = victim.hi
        victim.hi = keys[0]
        for (let j = 0; j < keys.length; j++) {
          fresh.push({
            cur: keys[j]!,
            cursor: paging.after(keys[j]!),
            started: true,
            hi: j + 1 < keys.length ? keys[j + 1] : oldHi,
            done: false,
            first: undefined,
            last: undefined,
            pages: 0
          })
        }
        free -= keys.length
        created += keys.length
      }
      return fresh
    }

    const worker = (r: Range<C>): Effect.Effect<void, never, Scope.Scope> =>
      Effect.gen(function*() {
        let keys = 0
        while (!r.done) {
          const cursor = r.cursor
          const exit = yield* Effect.exit(options.fetch(cursor))
          if (Exit.isFailure(exit)) {
            yield* rangeOutcome(r, keys, "failed")
            finished = true
            yield* Queue.offer(queue, Exit.failCause(Cause.map(exit.cause, (e) => Option.some(e))))
            return
          }
          const page = exit.value
          const lo = r.started ? r.cur : (options.startAfter ?? "")
          let contents = paging.entries(page)
          const truncated = paging.isTruncated(page)
          const n = contents.length
          if (n > 0) {
            const f = contents[0]!.key
            const l = contents[n - 1]!.key
            if (r.pages === 0 || totalPages === 0) {
              for (let i = 0; i < n; i++) alphabet.add(contents[i]!.key, prefixLength)
            } else {
              alphabet.add(f, prefixLength)
              alphabet.add(l, prefixLength)
            }
            if (truncated) {
              r.first = f
              r.last = l
            }
          }
          r.pages++
          totalPages++
          if (truncated) fullPages++
          // Read the bound now: another worker may have cut this range while the request was in flight.
          const hi = r.hi
          // The one pagination rule: a truncated page names a next marker that advances, else the listing fails.
          const rule = paging.next(page, cursor)
          if (Either.isLeft(rule)) {
            yield* rangeOutcome(r, keys, "failed")
            finished = true
            yield* Queue.offer(queue, Exit.fail(Option.some<E | CosDecodeError>(rule.left)))
            return
          }
          let next = rule.right
          if (hi !== undefined && n > 0 && compareUtf8(contents[n - 1]!.key, hi) > 0) {
            contents = contents.slice(0, cutIndex(contents, hi))
            next = undefined
          }
          if (next !== undefined && hi !== undefined && !paging.before(next, hi)) next = undefined
          let out: ListedPage<A>
          keys += contents.length
          if (next === undefined) {
            r.done = true
            ranges.delete(r)
            active--
            out = { contents, lo, hi, range: r, last: true }
          } else {
            const at = paging.keyOf(next)
            out = { contents, lo, hi: at, range: r, last: false }
            r.cur = at
            r.cursor = next
          }
          r.started = true
          const fresh = rebalance()
          for (const f of fresh) register(f)
          pending++
          // Everything above ran without yielding: the state is consistent for the other workers.
          for (const f of fresh) yield* start(f)
          yield* Queue.offer(queue, Exit.succeed(out))
          if (r.done) yield* rangeOutcome(r, keys, "done")
          pending--
          if (active === 0 && pending === 0 && !finished) {
            finished = true
            yield* Queue.offer(queue, Exit.fail(Option.none()))
          }
        }
      })

    const first: Range<C> = {
      cur: "",
      cursor: paging.after(options.startAfter),
      started: false,
      hi: undefined,
      done: false,
      first: undefined,
      last: undefined,
      pages: 0
    }
    register(first)
    yield* start(first)
    return Stream.flattenExitOption(Stream.fromQueue(queue))
  }))
