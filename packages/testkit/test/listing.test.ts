// GET Bucket and GET ?versions against a naive model (sort everything, filter, cut), on random buckets.
import { Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import { StoreImpl } from "../src/internal/store.js"

const utf8 = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))
const alphabet = fc.constantFrom("a", "b", "/", "-", "\uFFFD", "\u{1F600}", "é")
const key = fc.array(alphabet, { minLength: 1, maxLength: 5 }).map((a) => a.join(""))
const maybe = fc.option(fc.array(alphabet, { maxLength: 3 }).map((a) => a.join("")), { nil: undefined })

type Item = { readonly key: string; readonly cp: boolean }

/** The listing as a sorted scan would produce it. */
const model = (keys: ReadonlyArray<string>, prefix: string, delimiter: string | undefined, marker: string) => {
  const items: Array<Item> = []
  for (const k of [...keys].sort(utf8)) {
    if (!k.startsWith(prefix) || utf8(k, marker) <= 0) continue
    const idx = delimiter ? k.indexOf(delimiter, prefix.length) : -1
    if (idx >= 0) {
      const cp = k.slice(0, idx + delimiter!.length)
      if (utf8(cp, marker) <= 0) continue
      if (items.at(-1)?.key === cp) continue
      items.push({ key: cp, cp: true })
    } else items.push({ key: k, cp: false })
  }
  return items
}

describe("listing matches a naive model", () => {
  it("GET Bucket pages (prefix, delimiter, marker, max-keys; delete-marked keys hidden)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(key, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        maybe,
        fc.option(fc.constantFrom("/", "-", "\u{1F600}"), { nil: undefined }),
        maybe,
        fc.integer({ min: 1, max: 7 }),
        (keys, hidden, prefix = "", delimiter, marker = "", maxKeys) => {
          const store = new StoreImpl()
          const b = store.createBucket("b-1", "r", "Enabled")
          for (const k of keys) b.put(k, { size: 1, etag: "e", storageClass: "STANDARD", data: undefined }, 0)
          const gone = new Set(hidden.filter((i) => i < keys.length).map((i) => keys[i]!))
          for (const k of gone) b.deleteCurrent(k, 0)
          const expected = model(keys.filter((k) => !gone.has(k)), prefix, delimiter, marker)
          const r = b.list({ prefix, delimiter, marker, maxKeys })
          const page = expected.slice(0, maxKeys)
          assert.deepStrictEqual(r.contents.map(([k]) => k), page.filter((i) => !i.cp).map((i) => i.key))
          assert.deepStrictEqual(r.commonPrefixes, page.filter((i) => i.cp).map((i) => i.key))
          assert.strictEqual(r.isTruncated, expected.length > maxKeys)
          assert.strictEqual(r.nextMarker, expected.length > maxKeys ? page.at(-1)!.key : undefined)
        }
      ),
      { numRuns: 1000 }
    )
  })

  it("GET ?versions paged with key-marker / version-id-marker visits every version once, in order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(key, fc.boolean()), { maxLength: 40 }),
        maybe,
        fc.integer({ min: 1, max: 5 }),
        (ops, prefix = "", maxKeys) => {
          const store = new StoreImpl()
          const b = store.createBucket("b-1", "r", "Enabled")
          let t = 0
          for (const [k, del] of ops) {
            if (del) b.deleteCurrent(k, t++)
            else b.put(k, { size: 1, etag: "e", storageClass: "STANDARD", data: undefined }, t++)
          }
          const all = b.listVersions({
            prefix,
            delimiter: undefined,
            keyMarker: "",
            versionIdMarker: undefined,
            maxKeys: 100000
          })
          const expectedKeys = [...new Set(ops.map(([k]) => k))].filter((k) => k.startsWith(prefix)).sort(utf8)
          assert.deepStrictEqual([...new Set(all.versions.map((v) => v.key))], expectedKeys)
          const seen: Array<string> = []
          let keyMarker = ""
          let versionIdMarker: string | undefined
          for (let i = 0; i < 200; i++) {
            const page = b.listVersions({ prefix, delimiter: undefined, keyMarker, versionIdMarker, maxKeys })
            seen.push(...page.versions.map((v) => `${v.key}@${v.version.versionId}`))
            if (!page.isTruncated) break
            keyMarker = page.nextKeyMarker!
            versionIdMarker = page.nextVersionIdMarker
          }
          assert.deepStrictEqual(seen, all.versions.map((v) => `${v.key}@${v.version.versionId}`))
        }
      ),
      { numRuns: 500 }
    )
  })
})

describe("batch removal", () => {
  it("deleteMany removes exactly the given keys (runs, gaps, absent keys, duplicates)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(key, { maxLength: 60 }),
        fc.array(fc.oneof(fc.nat(80), key.map((k) => k)), { maxLength: 40 }),
        (keys, picks) => {
          const store = new StoreImpl()
          const b = store.createBucket("b-1", "r", "NeverEnabled")
          for (const k of keys) b.put(k, { size: 1, etag: "e", storageClass: "STANDARD", data: undefined }, 0)
          const batch = picks.map((p) => (typeof p === "number" ? keys[p] ?? `absent${p}` : p))
          b.deleteMany(batch)
          const gone = new Set(batch)
          assert.deepStrictEqual([...b.objects.keys()], keys.filter((k) => !gone.has(k)).sort(utf8))
        }
      ),
      { numRuns: 1000 }
    )
  })
})

describe("seeding", () => {
  it.effect("bulk-loads sorted keys, falls back for unsorted ones; both stay usable", () =>
    Effect.gen(function*() {
      const store = Store.make({ buckets: ["sorted-1", "unsorted-1"] })
      yield* Store.seed(store, { bucket: "sorted-1", count: 5000, prefix: "k/" })
      const shuffled = (i: number) => `k/${String((i * 7919) % 5000).padStart(4, "0")}`
      yield* Store.seed(store, { bucket: "unsorted-1", count: 5000, keyFn: shuffled })
      for (const bucket of ["sorted-1", "unsorted-1"]) {
        yield* Store.deleteObject(store, { bucket, key: "k/0001" })
        yield* Store.putObject(store, { bucket, key: "k/00005", body: "x" })
        const keys = yield* Store.keys(store, bucket)
        assert.strictEqual(keys.length, 5000)
        assert.deepStrictEqual(keys.slice(0, 3), ["k/0000", "k/00005", "k/0002"])
      }
    }))
})
