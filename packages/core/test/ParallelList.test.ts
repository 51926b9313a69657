import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as fc from "fast-check"
import type { ObjectSummary, VersionEntry } from "../src/CosClient.js"
import { compareUtf8 } from "../src/internal/keys.js"
import type { VersionsCursor } from "../src/internal/pagination.js"
import {
  Alphabet,
  type ListedPage,
  listPages,
  listVersionPages,
  type Range,
  type SourcePage,
  splitKeys,
  type VersionsSourcePage
} from "../src/internal/parallelList.js"

const summary = (key: string): ObjectSummary => ({
  key,
  lastModified: new Date(0),
  etag: "\"x\"",
  size: 1,
  storageClass: "STANDARD"
})

/** GET Bucket over a sorted array: `prefix`, exclusive `marker`, `pageSize` keys a page (docs/protocol.md §3). */
const source = (allKeys: ReadonlyArray<string>, prefix: string, pageSize: number, jitter?: () => number) => {
  const keys = Array.from(new Set(allKeys)).sort(compareUtf8)
  let requests = 0
  const fetch = (marker: string | undefined): Effect.Effect<SourcePage> =>
    Effect.gen(function*() {
      requests++
      const n = jitter?.() ?? 0
      for (let i = 0; i < n; i++) yield* Effect.yieldNow()
      let i = 0
      while (
        i < keys.length &&
        (compareUtf8(keys[i]!, prefix) < 0 || (marker !== undefined && compareUtf8(keys[i]!, marker) <= 0))
      ) i++
      const contents: Array<ObjectSummary> = []
      while (i < keys.length && contents.length < pageSize && keys[i]!.startsWith(prefix)) {
        contents.push(summary(keys[i++]!))
      }
      const isTruncated = i < keys.length && keys[i]!.startsWith(prefix)
      return { contents, isTruncated, nextMarker: isTruncated ? contents[contents.length - 1]!.key : undefined }
    })
  return { fetch, keys, requests: () => requests }
}

const collect = <A, E>(stream: Stream.Stream<ListedPage<A>, E>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

/** Every key under the prefix after startAfter exactly once; the pages' intervals tile (startAfter, end]. */
const checkExact = (
  pages: ReadonlyArray<ListedPage>,
  keys: ReadonlyArray<string>,
  prefix: string,
  startAfter: string | undefined
) => {
  const listed = pages.flatMap((p) => p.contents.map((c) => c.key))
  const expected = keys.filter((k) =>
    k.startsWith(prefix) && (startAfter === undefined || compareUtf8(k, startAfter) > 0)
  )
  assert.strictEqual(listed.length, expected.length, "count")
  assert.deepStrictEqual([...listed].sort(compareUtf8), expected)
  // Each key lies in its page's interval.
  for (const p of pages) {
    for (const c of p.contents) {
      assert.isTrue(p.lo === "" || compareUtf8(c.key, p.lo) > 0, `${c.key} above ${p.lo}`)
      assert.isTrue(p.hi === undefined || compareUtf8(c.key, p.hi) <= 0, `${c.key} at most ${p.hi}`)
    }
  }
  // The intervals chain from the start to the end without gap or overlap.
  const byLo = new Map<string, ListedPage>()
  for (const p of pages) {
    assert.isFalse(byLo.has(p.lo), `two pages start at ${JSON.stringify(p.lo)}`)
    byLo.set(p.lo, p)
  }
  let at: string | undefined = startAfter ?? ""
  let n = 0
  while (at !== undefined) {
    const p = byLo.get(at)
    assert.isDefined(p, `no page starts at ${JSON.stringify(at)}`)
    at = p!.hi
    n++
  }
  assert.strictEqual(n, pages.length)
}

const alphabets = [
  "ab",
  "0123456789",
  "abcdefghijklmnopqrstuvwxyz/._-",
  "a\u00e9\u4e2d\ue000\uffee\u{1F600}\u{10FFFF}/",
  "/"
]

const keyArb = fc.oneof(
  // random strings over a small alphabet, short and long
  fc.constantFrom(...alphabets).chain((alpha) =>
    fc.array(
      fc.array(fc.constantFrom(...Array.from(alpha)), { minLength: 1, maxLength: 12 }).map((cs) => cs.join("")),
      {
        maxLength: 300
      }
    )
  ),
  // zero-padded counters under a long shared prefix (the common log layout)
  fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 1, max: 50 })).map(([n, step]) =>
    Array.from({ length: n }, (_, i) => `p/logs/2024/11/25/host-01/${String(i * step).padStart(8, "0")}.log`)
  ),
  // clusters: a few dense groups far apart
  fc.array(fc.tuple(fc.string({ minLength: 0, maxLength: 3 }), fc.integer({ min: 1, max: 80 })), { maxLength: 5 }).map(
    (groups) => groups.flatMap(([g, n]) => Array.from({ length: n }, (_, i) => `p/${g}/${i}`))
  )
)

describe("ParallelList", () => {
  it("compares in UTF-8 byte order", () => {
    const words = ["a", "ab", "\ue000", "\uffff", "\u{1F600}", "\u{10FFFF}", "z", "\u00e9"]
    const byBytes = [...words].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    assert.deepStrictEqual([...words].sort(compareUtf8), byBytes)
  })

  it.effect("lists sequentially with concurrency 1", () =>
    Effect.gen(function*() {
      const keys = Array.from({ length: 25 }, (_, i) => `d/${String(i).padStart(3, "0")}`).concat(["c", "e"])
      const src = source(keys, "d/", 10)
      const pages = yield* collect(listPages({ prefix: "d/", concurrency: 1, fetch: src.fetch }))
      assert.strictEqual(pages.length, 3)
      assert.strictEqual(src.requests(), 3)
      checkExact(pages, src.keys, "d/", undefined)
      assert.deepStrictEqual(pages.map((p) => [p.lo, p.hi]), [["", "d/009"], ["d/009", "d/019"], ["d/019", undefined]])
    }))

  it.effect("splits a large range and lists it with several requests in flight", () =>
    Effect.gen(function*() {
      const keys = Array.from({ length: 20_000 }, (_, i) => `logs/${String(i * 7).padStart(9, "0")}.gz`)
      let inFlight = 0
      let maxInFlight = 0
      const src = source(keys, "logs/", 100)
      const fetch = (marker: string | undefined) =>
        Effect.gen(function*() {
          inFlight++
          maxInFlight = Math.max(maxInFlight, inFlight)
          for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
          const page = yield* src.fetch(marker)
          inFlight--
          return page
        })
      const pages = yield* collect(listPages({ prefix: "logs/", concurrency: 8, fetch }))
      checkExact(pages, src.keys, "logs/", undefined)
      assert.isAtLeast(maxInFlight, 6)
      // Wasted requests (cut pages, empty ranges) stay a small fraction of the 200 pages needed.
      assert.isBelow(src.requests(), 260)
    }))

  it.effect("starts after a checkpoint", () =>
    Effect.gen(function*() {
      const keys = Array.from({ length: 500 }, (_, i) => `k${String(i).padStart(4, "0")}`)
      const src = source(keys, "", 7)
      const pages = yield* collect(listPages({ prefix: "", startAfter: "k0123", concurrency: 4, fetch: src.fetch }))
      checkExact(pages, src.keys, "", "k0123")
    }))

  it.effect("fails with the source's error", () =>
    Effect.gen(function*() {
      const src = source(Array.from({ length: 100 }, (_, i) => `k${i}`), "", 5)
      let n = 0
      const fetch = (marker: string | undefined) => (++n === 4 ? Effect.fail("boom" as const) : src.fetch(marker))
      const result = yield* Effect.either(collect(listPages({ prefix: "", concurrency: 3, fetch })))
      assert.deepStrictEqual(result._tag === "Left" ? result.left : undefined, "boom")
    }))

  // Regression: the first split came when the only key seen so far equalled the prefix, so no character past the
  // prefix was known, the digit base was 1 and the digit count infinite: the lister spun forever.
  it.live("splits when the keys seen so far hold no character past the prefix", () =>
    Effect.gen(function*() {
      for (
        const [prefix, keys] of [
          ["a", ["a", "ab", "ac", "ad", "ae", "af", "ag", "ah"]],
          ["logs/", ["logs/", ...Array.from({ length: 40 }, (_, i) => `logs/${i}`)]],
          ["\u{1F600}", ["\u{1F600}", "\u{1F600}\u{1F600}", "\u{1F600}x", "\u{1F600}\u{10FFFF}"]]
        ] as const
      ) {
        const src = source(keys, prefix, 1)
        const pages = yield* collect(listPages({ prefix, concurrency: 4, fetch: src.fetch })).pipe(
          Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`listing ${prefix} hung`) })
        )
        checkExact(pages, src.keys, prefix, undefined)
      }
    }))

  // The same regression, deterministic and at the arithmetic itself: keys that hold nothing past the prefix give a
  // digit base of 1, where no key can be interpolated. Whatever the base and digit count come to, the answer must be
  // "no split" (the lister then waits for a page that shows characters), not a loop and not a marker outside the
  // range.
  it("computes no split key from keys with no character past the prefix", () => {
    const range = (cur: string, hi: string | undefined): Range<unknown> => ({
      cur,
      cursor: cur,
      started: true,
      hi,
      done: false,
      first: cur,
      last: cur,
      pages: 1
    })
    for (const prefix of ["a", "logs/", "\u{1F600}", ""]) {
      for (const hi of [undefined, prefix]) {
        for (const pieces of [2, 4, 17]) {
          const alphabet = new Alphabet()
          // what the lister had seen: the prefix itself, as the only key of a full page
          alphabet.add(prefix, prefix.length)
          assert.deepStrictEqual(splitKeys(alphabet, prefix.length, range(prefix, hi), pieces, 4), [], prefix)
          assert.deepStrictEqual(alphabet.cps, [])
        }
      }
    }
    // With one character past the prefix seen, splits come back, strictly increasing and above the position.
    const alphabet = new Alphabet()
    const r: Range<unknown> = { ...range("a", undefined), first: "a00", last: "a09" }
    alphabet.add("a0123456789", 1)
    const keys = splitKeys(alphabet, 1, r, 4, 4)
    assert.strictEqual(keys.length, 3)
    for (let i = 0; i < keys.length; i++) {
      assert.isAbove(compareUtf8(keys[i]!, i === 0 ? "a" : keys[i - 1]!), 0)
      assert.isTrue(keys[i]!.startsWith("a"))
    }
  })

  it.effect("lists a prefix whose first full page holds only the prefix key, then splits on what follows", () =>
    Effect.gen(function*() {
      // The first page is exactly ["a"] (the prefix), truncated: the first split is asked for with nothing past the
      // prefix seen. The lister must list it, go on, and cut ranges once the following pages (of 10) show characters.
      const keys = ["a", ...Array.from({ length: 600 }, (_, i) => `a${String(i).padStart(3, "0")}`)]
      const first = source(keys, "a", 1)
      const rest = source(keys, "a", 10)
      let inFlight = 0
      let maxInFlight = 0
      const markers: Array<string | undefined> = []
      const fetch = (marker: string | undefined) =>
        Effect.gen(function*() {
          markers.push(marker)
          maxInFlight = Math.max(maxInFlight, ++inFlight)
          yield* Effect.yieldNow()
          const page = yield* (marker === undefined ? first : rest).fetch(marker)
          inFlight--
          return page
        })
      const pages = yield* collect(listPages({ prefix: "a", concurrency: 4, fetch }))
      checkExact(pages, rest.keys, "a", undefined)
      assert.deepStrictEqual(markers.slice(0, 2), [undefined, "a"])
      assert.deepStrictEqual(pages[0]!.contents.map((c) => c.key), ["a"])
      assert.isAtLeast(maxInFlight, 2)
    }))

  it("lists every key exactly once, whatever the distribution and interleaving", async () => {
    await fc.assert(
      fc.asyncProperty(
        keyArb,
        fc.constantFrom("", "p/", "a", "0"),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 6 }),
        fc.option(fc.string({ maxLength: 4 }), { nil: undefined }),
        fc.infiniteStream(fc.integer({ min: 0, max: 4 })),
        async (keys, prefix, concurrency, pageSize, startAfter, jitters) => {
          const it = jitters[Symbol.iterator]()
          const src = source(keys, prefix, pageSize, () => it.next().value as number)
          const pages = await Effect.runPromise(
            collect(listPages({ prefix, startAfter, concurrency, fetch: src.fetch }))
          )
          checkExact(pages, src.keys, prefix, startAfter)
        }
      ),
      { numRuns: 300 }
    )
  })

  it.effect("fails with a CosDecodeError when a range's marker does not advance, instead of ending the range", () =>
    Effect.gen(function*() {
      const src = source(Array.from({ length: 3000 }, (_, i) => `k/${String(i).padStart(5, "0")}`), "k/", 1000)
      // A server that answers every request after the first with the first page again.
      let first: SourcePage | undefined
      const stuck = (marker: string | undefined) => Effect.map(src.fetch(marker), (page) => (first ??= page))
      const error = yield* Effect.flip(collect(listPages({ prefix: "k/", concurrency: 1, fetch: stuck })))
      assert.strictEqual(error._tag, "CosDecodeError")
      assert.include(error.message, "does not advance")
    }))

  it.effect("fails with a CosDecodeError on a truncated page with neither NextMarker nor keys", () =>
    Effect.gen(function*() {
      const empty = () => Effect.succeed<SourcePage>({ contents: [], isTruncated: true })
      const error = yield* Effect.flip(collect(listPages({ prefix: "k/", concurrency: 4, fetch: empty })))
      assert.strictEqual(error._tag, "CosDecodeError")
      assert.include(error.message, "without NextMarker")
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// versions in parallel ranges
// ---------------------------------------------------------------------------------------------------------------

const version = (key: string, versionId: string): VersionEntry => ({
  _tag: "Version",
  key,
  versionId,
  isLatest: versionId.endsWith(":0"),
  lastModified: new Date(0),
  etag: "\"x\"",
  size: 1,
  storageClass: "STANDARD"
})

/**
 * GET ?versions over sorted keys with `counts[i]` versions each, newest first (docs/protocol.md §3): `key-marker`
 * alone starts after the whole key; with `version-id-marker`, after that version of it (a marker naming no version
 * skips the key, as the fake does). `pageSize` entries a page; `NextKeyMarker` is left out when `bare` says so (the
 * last entry is then the marker).
 */
const versionsSource = (
  spec: ReadonlyArray<readonly [string, number]>,
  prefix: string,
  pageSize: number,
  jitter: () => number,
  bare: () => boolean
) => {
  const keys = Array.from(new Map(spec.map(([k, n]) => [k, n])).entries()).sort((a, b) => compareUtf8(a[0], b[0]))
  const all: Array<VersionEntry> = keys.flatMap(([k, n]) =>
    Array.from({ length: Math.max(1, n) }, (_, i) => version(k, `${k}:${i}`))
  )
  let requests = 0
  let inFlight = 0
  let maxInFlight = 0
  const fetch = (cursor: VersionsCursor): Effect.Effect<VersionsSourcePage> =>
    Effect.gen(function*() {
      requests++
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      for (let i = jitter(); i > 0; i--) yield* Effect.yieldNow()
      inFlight--
      const km = cursor.keyMarker ?? ""
      const vm = cursor.versionIdMarker ?? ""
      let i = 0
      while (i < all.length && (compareUtf8(all[i]!.key, prefix) < 0 || compareUtf8(all[i]!.key, km) < 0)) i++
      if (km !== "") {
        if (vm === "") {
          while (i < all.length && all[i]!.key === km) i++
        } else {
          let j = i
          while (j < all.length && all[j]!.key === km && all[j]!.versionId !== vm) j++
          if (j < all.length && all[j]!.key === km) i = j + 1
          else while (i < all.length && all[i]!.key === km) i++
        }
      }
      const versions: Array<VersionEntry> = []
      while (i < all.length && versions.length < pageSize && all[i]!.key.startsWith(prefix)) versions.push(all[i++]!)
      const isTruncated = i < all.length && all[i]!.key.startsWith(prefix)
      const last = versions[versions.length - 1]
      return isTruncated && !bare()
        ? { versions, isTruncated, nextKeyMarker: last!.key, nextVersionIdMarker: last!.versionId }
        : { versions, isTruncated }
    })
  return { fetch, all, requests: () => requests, maxInFlight: () => maxInFlight }
}

/** Every version once; each range's pages in order; a key's versions in one range, in order; ranges tile. */
const checkVersions = (
  pages: ReadonlyArray<ListedPage<VersionEntry>>,
  all: ReadonlyArray<VersionEntry>,
  prefix: string,
  startAfter: string | undefined
) => {
  const expected = all.filter((v) =>
    v.key.startsWith(prefix) && (startAfter === undefined || compareUtf8(v.key, startAfter) > 0)
  ).map((v) => v.versionId)
  const listed = pages.flatMap((p) => p.contents.map((v) => v.versionId))
  assert.strictEqual(listed.length, expected.length, "each version once")
  assert.deepStrictEqual([...listed].sort(), [...expected].sort())
  const byRange = new Map<object, Array<ListedPage<VersionEntry>>>()
  for (const p of pages) {
    const list = byRange.get(p.range) ?? []
    assert.isFalse(list.length > 0 && list[list.length - 1]!.last, "a page after its range's last")
    list.push(p)
    byRange.set(p.range, list)
  }
  const owner = new Map<string, object>()
  const bounds = new Map<string, string | undefined>()
  for (const [range, list] of byRange) {
    assert.isTrue(list[list.length - 1]!.last, "every range ends")
    const lo = list[0]!.lo
    const hi = list[list.length - 1]!.hi
    assert.isFalse(bounds.has(lo), `two ranges start at ${JSON.stringify(lo)}`)
    bounds.set(lo, hi)
    const entries = list.flatMap((p) => p.contents)
    for (const v of entries) {
      assert.isTrue(lo === "" || compareUtf8(v.key, lo) > 0, `${v.key} above ${lo}`)
      assert.isTrue(hi === undefined || compareUtf8(v.key, hi) <= 0, `${v.key} at most ${hi}`)
      const o = owner.get(v.key)
      assert.isTrue(o === undefined || o === range, `the versions of ${JSON.stringify(v.key)} span two ranges`)
      owner.set(v.key, range)
    }
    // In listing order within the range: the source's order.
    const order = all.filter((v) => owner.get(v.key) === range).map((v) => v.versionId)
    assert.deepStrictEqual(entries.map((v) => v.versionId), order.filter((id) => expected.includes(id)))
  }
  let at: string | undefined = startAfter ?? ""
  let n = 0
  while (at !== undefined) {
    assert.isTrue(bounds.has(at), `no range starts at ${JSON.stringify(at)}`)
    at = bounds.get(at)
    n++
  }
  assert.strictEqual(n, bounds.size)
}

describe("ParallelList versions", () => {
  it.effect("lists a key's versions in one range, over many pages, with several ranges in flight", () =>
    Effect.gen(function*() {
      // Every tenth key has 40 versions: more than ten pages of 3, so ranges are cut beside keys still being listed.
      const spec = Array.from({ length: 400 }, (_, i) => [`v/${String(i).padStart(4, "0")}`, i % 10 === 0 ? 40 : 2])
      const src = versionsSource(spec as Array<[string, number]>, "v/", 3, () => 3, () => false)
      const pages = yield* collect(listVersionPages({ prefix: "v/", concurrency: 6, fetch: src.fetch }))
      checkVersions(pages, src.all, "v/", undefined)
      assert.isAtLeast(src.maxInFlight(), 4)
      assert.isAbove(new Set(pages.map((p) => p.range)).size, 6)
    }))

  it("lists every version exactly once in ranges of whole keys, whatever the interleaving", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.array(fc.constantFrom("a", "b", "/", "\u00e9", "\u{1F600}", "z"), { minLength: 0, maxLength: 5 })
              .map((cs) => "p/" + cs.join("")),
            fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 30 }))
          ),
          { maxLength: 120 }
        ),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 7 }),
        fc.option(fc.constantFrom("p/", "p/a", "p/b/", "p/\u00e9"), { nil: undefined }),
        fc.infiniteStream(fc.integer({ min: 0, max: 4 })),
        fc.infiniteStream(fc.boolean()),
        async (spec, concurrency, pageSize, startAfter, jitters, bares) => {
          const j = jitters[Symbol.iterator]()
          const b = bares[Symbol.iterator]()
          const src = versionsSource(
            spec,
            "p/",
            pageSize,
            () => j.next().value as number,
            () => b.next().value as boolean
          )
          const pages = await Effect.runPromise(
            collect(listVersionPages({ prefix: "p/", startAfter, concurrency, fetch: src.fetch }))
          )
          checkVersions(pages, src.all, "p/", startAfter)
        }
      ),
      { numRuns: 200 }
    )
  })
})
