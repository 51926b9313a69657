import { CosFake, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { CosClient, Deletion, KeyRange } from "../src/index.js"
import { compareUtf8 } from "../src/internal/keys.js"

// keys that sort in awkward places (UTF-8 byte order): astral characters, combining marks, XML-special characters,
// spaces, line breaks, the highest code point
const odd = ["  lead", "trail  ", "𝄞clef", "e\u0301", "<&\">'", "line\nbreak", "z\u{10FFFF}", "\u00e9", "~"]

const seeded = (count: number) =>
  CosFake.layerWithClient({
    seed: [
      {
        bucket: CosFake.testBucket,
        count,
        prefix: "p/",
        keyFn: (i) => `p/${String(i * 7919 % count).padStart(6, "0")}`
      },
      { bucket: CosFake.testBucket, count: odd.length, keyFn: (i) => `p/${odd[i]}` },
      { bucket: CosFake.testBucket, count: 50, prefix: "q/" }
    ]
  })

/** Every key of a range, through the bounded view, from its lower bound. */
const listRange = (range: KeyRange.Range) =>
  Effect.gen(function*() {
    const client = KeyRange.bounded(yield* CosClient.CosClient, range.through)
    const keys: Array<string> = []
    let marker: string | undefined = range.after === "" ? undefined : range.after
    while (true) {
      const page = yield* client.listObjects({ prefix: "p/", marker, maxKeys: 137 })
      keys.push(...page.contents.map((o) => o.key))
      if (!page.isTruncated) return keys
      marker = page.nextMarker
    }
  })

describe("KeyRange", () => {
  it.effect("split cuts the prefix into ranges of about equal size that hold every key exactly once", () =>
    Effect.gen(function*() {
      const count = 12_000
      const fake = yield* CosFake.CosFake
      const ranges = yield* KeyRange.split({ prefix: "p/", pieces: 5 })
      // one listing: about one request per 1000 keys, plus the ranges' last partial pages
      assert.isAtMost((yield* fake.stats).requests, 60)
      assert.strictEqual(ranges.length, 5)
      assert.strictEqual(ranges[0]!.after, "")
      assert.isUndefined(ranges[4]!.through)
      for (let i = 1; i < ranges.length; i++) assert.strictEqual(ranges[i]!.after, ranges[i - 1]!.through)
      const lists = yield* Effect.forEach(ranges, listRange)
      const all = lists.flat()
      assert.strictEqual(all.length, count + odd.length)
      assert.strictEqual(new Set(all).size, count + odd.length)
      const expected = (yield* Store.keys((yield* CosFake.CosFake).store, CosFake.testBucket, "p/")).slice()
      assert.deepStrictEqual([...all].sort(compareUtf8), expected.sort(compareUtf8))
      // each range within two marks (200 keys) of an even share
      const share = (count + odd.length) / 5
      for (const list of lists) {
        assert.isBelow(
          Math.abs(list.length - share),
          200,
          JSON.stringify(lists.map((l) => l.length))
        )
      }
    }).pipe(Effect.provide(seeded(12_000))))

  it.effect("split gives fewer ranges when there are too few keys to cut, and one when asked for one", () =>
    Effect.gen(function*() {
      const few = yield* KeyRange.split({ prefix: "p/", pieces: 8 })
      // a cut at most every 100 keys, and at the last key listed: the open range after it covers keys written later
      assert.isAtMost(few.length, 3)
      assert.isAtLeast(few.length, 2)
      assert.strictEqual((yield* Effect.forEach(few, listRange)).flat().length, 150 + odd.length)
      assert.deepStrictEqual(yield* KeyRange.split({ prefix: "p/", pieces: 1 }), [{ after: "", through: undefined }])
      assert.deepStrictEqual(yield* KeyRange.split({ prefix: "none/", pieces: 4 }), [{ after: "", through: undefined }])
    }).pipe(Effect.provide(seeded(150))))

  it.effect("Deletion.purge over a bounded client from a range's lower bound deletes that range only", () =>
    Effect.gen(function*() {
      const ranges = yield* KeyRange.split({ prefix: "p/", pieces: 3 })
      const middle = ranges[1]!
      const client = yield* CosClient.CosClient
      const summary = yield* Deletion.purge({
        prefix: "p/",
        startAfter: middle.after,
        listConcurrency: 4
      }).pipe(Effect.provideService(CosClient.CosClient, KeyRange.bounded(client, middle.through)))
      const left = yield* Store.keys((yield* CosFake.CosFake).store, CosFake.testBucket, "p/")
      const inside = (k: string) => compareUtf8(k, middle.after) > 0 && compareUtf8(k, middle.through!) <= 0
      assert.isAtLeast(summary.deleted, 900)
      assert.strictEqual(left.length, 3000 + odd.length - summary.deleted)
      assert.isTrue(left.every((k) => !inside(k)))
      assert.strictEqual((yield* Store.keys((yield* CosFake.CosFake).store, CosFake.testBucket, "q/")).length, 50)
    }).pipe(Effect.provide(seeded(3000))))
})
