/**
 * Time windows (`olderThan` with `newerThan`) and the byte cap (`maxDeleteSize`) through `Deletion.purge`, and the
 * one parser (`Units`) that the library, the daemon's rules and the CLI share.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as TestClock from "effect/TestClock"
import * as Deletion from "../src/Deletion.js"
import * as Units from "../src/Units.js"
import { MemoryCos, ok, settle } from "./fixtures/MemoryCos.js"

const DAY = 86_400_000
const NOW = 100 * DAY

const refused = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) throw new Error("expected a refusal, the run succeeded")
  return String(exit.cause)
}

/** Keys `w/<days old>d` (each `size` bytes) at `NOW - days`. */
const aged = (days: ReadonlyArray<number>, size = 100) => {
  const cos = new MemoryCos()
  for (const d of days) cos.put(`w/${d}d`, { size, lastModified: NOW - d * DAY })
  return cos
}

describe("Units: one reading of ages and sizes", () => {
  it("durations: the forms the CLI and the config accepted before, and English units", () => {
    for (
      const [text, ms] of [
        ["30d", 30 * DAY],
        ["1h30m", 5_400_000],
        ["1.5h", 5_400_000],
        ["7 days", 7 * DAY],
        ["2w", 14 * DAY],
        ["1 week 2 days", 9 * DAY],
        [" 45s ", 45_000],
        ["250ms", 250]
      ] as const
    ) assert.strictEqual(Units.parseDuration(text), ms, text)
    for (const bad of ["", "-1d", "30", "30x", "3 M", "d", "1h 30"]) assert.isUndefined(Units.parseDuration(bad), bad)
  })

  it("dates: midnight UTC, Z, offsets; a date-time without a zone and impossible dates are refused", () => {
    const at = (t: string) => Either.getOrThrow(Units.parseAge(t)) as Date
    assert.strictEqual(at("2026-01-31").toISOString(), "2026-01-31T00:00:00.000Z")
    assert.strictEqual(at("2026-01-31T08:00:00+08:00").toISOString(), "2026-01-31T00:00:00.000Z")
    assert.strictEqual(at("2026-01-31T08:00Z").toISOString(), "2026-01-31T08:00:00.000Z")
    assert.include(
      Either.getLeft(Units.parseAge("2026-01-31T08:00:00")).pipe((o) => o._tag === "Some" ? o.value : ""),
      "no time zone"
    )
    for (const bad of ["2026-02-30", "2026-13-01", "2026-01-31T25:00Z", "yesterday"]) {
      assert.isTrue(Either.isLeft(Units.parseAge(bad)), bad)
    }
  })

  it("sizes: byte counts and units, never negative", () => {
    assert.strictEqual(Units.parseSize("5MB"), 5_000_000)
    assert.strictEqual(Units.parseSize("5MiB"), 5 * 1024 * 1024)
    assert.strictEqual(Units.parseSize("1024"), 1024)
    for (const bad of ["-5", "-5MB", "5 parsecs", "", "1e3"]) assert.isUndefined(Units.parseSize(bad), bad)
    assert.isUndefined(Units.parseSize(-1))
  })
})

describe("Deletion.purge: newerThan", () => {
  it.effect("with olderThan, deletes exactly the keys inside the window (bounds exclusive)", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const cos = aged([1, 6, 7, 8, 20, 29, 30, 31, 60])
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "w/", olderThan: "7d", newerThan: "30 days" })))
      assert.deepStrictEqual(cos.keys().sort(), ["w/1d", "w/30d", "w/31d", "w/60d", "w/6d", "w/7d"].sort())
      assert.strictEqual(s.deleted, 3)
    }))

  it.effect("alone, as a Duration or a date: only keys modified after the bound", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const a = aged([1, 5, 10])
      ok(yield* settle(a, Deletion.purge({ prefix: "w/", newerThan: Duration.days(6) })))
      assert.deepStrictEqual(a.keys(), ["w/10d"])
      const b = aged([1, 5, 10])
      ok(yield* settle(b, Deletion.purge({ prefix: "w/", newerThan: new Date(NOW - 6 * DAY) })))
      assert.deepStrictEqual(b.keys(), ["w/10d"])
    }))

  it.effect("an empty age or size window and unparseable text are refused before any request, naming the fields", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const cos = aged([1, 10, 40])
      const empty = refused(yield* settle(cos, Deletion.purge({ prefix: "w/", olderThan: "30d", newerThan: "7d" })))
      assert.include(empty, "newerThan must reach further back than olderThan")
      const bad = refused(yield* settle(cos, Deletion.purge({ prefix: "w/", newerThan: "last week" })))
      assert.include(bad, "newerThan")
      const zoneless = refused(yield* settle(cos, Deletion.purge({ prefix: "w/", olderThan: "2026-01-31T08:00" })))
      assert.include(zoneless, "no time zone")
      const sizes = refused(yield* settle(cos, Deletion.purge({ prefix: "w/", minSize: 5000, maxSize: 1000 })))
      assert.include(sizes, "minSize (5000 bytes) is more than maxSize (1000 bytes)")
      // the published bounds are the ones enforced, bounds included
      const { batchSize, concurrency, listConcurrency } = Deletion.runOptionBounds
      const over = { concurrency: concurrency.max + 1, listConcurrency: listConcurrency.max + 1 }
      for (const [name, v] of [...Object.entries(over), ["batchSize", batchSize.max + 1]] as const) {
        const r = refused(yield* settle(cos, Deletion.purge({ prefix: "w/", [name]: v })))
        assert.include(r, `${name} must be an integer from 1 to ${v - 1}, got ${v}`)
      }
      assert.strictEqual(cos.log.length, 0)
      const atMost = { concurrency: concurrency.max, listConcurrency: listConcurrency.max, batchSize: batchSize.max }
      ok(yield* settle(cos, Deletion.purge({ prefix: "w/", olderThan: "100d", ...atMost })))
      assert.strictEqual(cos.keys().length, 3)
      assert.strictEqual(cos.log.length, 0)
    }))
})

describe("Deletion.purge: maxDeleteSize", () => {
  it.effect("never sends more bytes than the cap: the key that would cross it and the rest are left", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const cos = new MemoryCos()
      // Listed in key order: 300 + 300 = 600, the next 300 would make 900 > 700, so it and all after are left.
      for (const [k, size] of [["c/a", 300], ["c/b", 300], ["c/c", 300], ["c/d", 10], ["c/e", 50]] as const) {
        cos.put(k, { size, lastModified: NOW - DAY })
      }
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "c/", maxDeleteSize: 700, batchSize: 2 })))
      assert.deepStrictEqual(cos.keys(), ["c/c", "c/d", "c/e"])
      assert.strictEqual(s.bytes, 600)
      assert.strictEqual(s.stoppedBy, "maxDeleteSize")
      assert.deepStrictEqual(s.left, { keys: 3, bytes: 360 })
      assert.strictEqual(s.matched, s.deleted + s.skipped)
    }))

  it.effect("a cap exactly reached is not crossed; maxDeletes still names itself", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const cos = aged([1, 2, 3, 4], 250)
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "w/", maxDeleteSize: 500 })))
      assert.strictEqual(s.bytes, 500)
      assert.strictEqual(cos.keys().length, 2)
      assert.strictEqual(s.stoppedBy, "maxDeleteSize")
      const all = ok(yield* settle(aged([1, 2], 250), Deletion.purge({ prefix: "w/", maxDeleteSize: 500 })))
      assert.strictEqual(all.stoppedBy, undefined)
      assert.strictEqual(all.left, undefined)
      const byCount = ok(yield* settle(aged([1, 2, 3], 1), Deletion.purge({ prefix: "w/", maxDeletes: 1 })))
      assert.strictEqual(byCount.stoppedBy, "maxDeletes")
      assert.deepStrictEqual(byCount.left, { keys: 2, bytes: 2 })
    }))

  it.effect("a dry run plans within the cap; negative or fractional caps are refused", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(NOW)
      const cos = aged([1, 2, 3], 400)
      const plan = ok(yield* settle(cos, Deletion.purge({ prefix: "w/", maxDeleteSize: 1000, dryRun: true })))
      assert.strictEqual(plan.matched - plan.skipped, 2)
      assert.strictEqual(cos.keys().length, 3)
      for (const bad of [-1, 1.5]) {
        assert.include(
          refused(yield* settle(cos, Deletion.purge({ prefix: "w/", maxDeleteSize: bad }))),
          "maxDeleteSize"
        )
      }
    }))
})
