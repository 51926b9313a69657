import { ReferenceModel } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Deletion from "../src/Deletion.js"
import { MemoryCos, ok, serviceError, settle, slowDown } from "./fixtures/MemoryCos.js"

const DAY = 86_400_000

const seed = (cos: MemoryCos, prefix: string, n: number, options: { size?: number; lastModified?: number } = {}) => {
  for (let i = 0; i < n; i++) cos.put(`${prefix}${String(i).padStart(6, "0")}`, options)
  return cos
}

/** A purge that must succeed, with every checkpoint it reports, in order. */
const purgeCheckpointed = (cos: MemoryCos, options: Omit<Deletion.PurgeOptions, "onCheckpoint">) =>
  Effect.gen(function*() {
    const checkpoints: Array<string> = []
    const s = ok(
      yield* settle(cos, Deletion.purge({ ...options, onCheckpoint: (k) => Effect.sync(() => checkpoints.push(k)) }))
    )
    return { s, checkpoints }
  })

describe("Deletion.purge", () => {
  it.effect("deletes every key under the prefix and nothing else, in batches of 1000", () =>
    Effect.gen(function*() {
      const cos = seed(seed(new MemoryCos(), "logs/", 2500, { size: 10 }), "keep/", 300)
      cos.put("logs") // same characters, not under "logs/"
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "logs/" })))
      assert.strictEqual(s.listed, 2500)
      assert.strictEqual(s.matched, 2500)
      assert.strictEqual(s.deleted, 2500)
      assert.strictEqual(s.bytes, 25_000)
      assert.strictEqual(s.failed, 0)
      assert.strictEqual(s.dryRun, false)
      assert.strictEqual(s.stoppedBy, undefined)
      assert.deepStrictEqual(s.breakdown, { objects: 2500, versions: 0, deleteMarkers: 0 })
      assert.strictEqual(cos.keys().filter((k) => k.startsWith("logs/")).length, 0)
      assert.strictEqual(cos.keys().length, 301)
      assert.deepStrictEqual(cos.log.map((l) => l.keys.length), [1000, 1000, 500])
      assert.strictEqual(s.requests, 3 + 3)
    }))

  it.effect("refuses an empty prefix unless the whole bucket is allowed", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "a/", 10)
      const refused = yield* settle(cos, Deletion.purge({ prefix: "" }))
      assert.isTrue(Exit.isFailure(refused))
      if (Exit.isFailure(refused)) assert.include(String(refused.cause), "allowWholeBucket")
      assert.strictEqual(cos.requests.list, 0)
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "", allowWholeBucket: true })))
      assert.strictEqual(s.deleted, 10)
      assert.strictEqual(cos.keys().length, 0)
    }))

  it.effect("filters by glob, age, date and size", () =>
    Effect.gen(function*() {
      const now = 100 * DAY
      const cos = new MemoryCos()
      cos.put("d/a.log", { lastModified: now - 40 * DAY, size: 100 })
      cos.put("d/b.log", { lastModified: now - 10 * DAY, size: 100 }) // too recent
      cos.put("d/c.tmp", { lastModified: now - 40 * DAY, size: 100 }) // not included
      cos.put("d/keep/d.log", { lastModified: now - 40 * DAY, size: 100 }) // excluded
      cos.put("d/e.log", { lastModified: now - 40 * DAY, size: 5 }) // too small
      cos.put("d/f.log", { lastModified: now - 40 * DAY, size: 5000 }) // too large
      cos.put("d/sub/g.log", { lastModified: now - 40 * DAY, size: 100 })
      yield* TestClock.setTime(now)
      const s = ok(
        yield* settle(
          cos,
          Deletion.purge({
            prefix: "d/",
            include: ["**/*.log"],
            exclude: ["d/keep/**"],
            olderThan: "30 days",
            minSize: 10,
            maxSize: 1000
          })
        )
      )
      assert.strictEqual(s.listed, 7)
      assert.strictEqual(s.matched, 2)
      assert.deepStrictEqual(cos.keys(), ["d/b.log", "d/c.tmp", "d/e.log", "d/f.log", "d/keep/d.log"])
      // An absolute date.
      const s2 = ok(yield* settle(cos, Deletion.purge({ prefix: "d/", olderThan: new Date(now - 20 * DAY) })))
      assert.strictEqual(s2.deleted, 4)
      assert.deepStrictEqual(cos.keys(), ["d/b.log"])
      const m = Deletion.matcher({ prefix: "d/", include: ["*.log"] }, now)
      assert.isFalse(m.key("d/x.log"), "a glob is matched against the whole key")
      assert.isTrue(Deletion.matcher({ prefix: "d/", include: ["d/*.log"] }, now).key("d/x.log"))
    }))

  it("exclude globs protect every key they name: dotfiles, dot segments, line terminators", () => {
    // A retention tool must never delete a key an exclude names. picomatch's defaults leave all of these selected.
    const nasty = [
      "keep/a\nb",
      "keep/a\rb",
      "keep/a\r\nb",
      "keep/a\u2028b",
      "keep/a\u2029b",
      "keep/\n",
      "keep/x\n",
      "keep/\n/x",
      "keep/../x",
      "keep/./x",
      "keep/..",
      "keep/.",
      "keep/x/..",
      "keep/x/./y",
      "keep/.hidden",
      "keep/.hidden/x",
      "keep/",
      "keep//x"
    ]
    const m = Deletion.matcher({ prefix: "", exclude: ["keep/**"] }, 0)
    const globs = [Deletion.globRegExp, (p: string) => ({ test: (k: string) => ReferenceModel.globMatch(p, k) })]
    for (const k of nasty) {
      assert.isFalse(m.key(k), `excluded but selected: ${JSON.stringify(k)}`)
      for (const g of globs) assert.isTrue(g("keep/**").test(k), JSON.stringify(k))
    }
    assert.isTrue(m.key("keeps/x"))
    assert.isTrue(m.key("keep"), "keep/** names what is under keep/, not the key keep itself")
    // The same semantics for include, `*` and `?`: any character but `/`.
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      ["keep/*", "keep/a\nb", true],
      ["keep/*", "keep/..", true],
      ["keep/*", "keep/.hidden", true],
      ["keep/*", "keep/", true],
      ["keep/*", "keep/a/b", false],
      ["keep/*", "keep/x/", false],
      ["keep/?", "keep/\u2028", true],
      ["**/.*", "a/./b", false],
      ["**/.*", "a/..", true],
      ["**/*.log", "a\n/b\r.log", true],
      ["[ab]*", "[ab]x", false],
      ["*", "a/b", false],
      // `a/**/*` is what is under `a/`: never the key `a` itself (picomatch alone lets it match `a`)
      ["logs/**/*", "logs", false],
      ["logs/**/*", "logs/", true],
      ["logs/**/*", "logs/a/b", true],
      ["logs/**/**", "logs", false],
      ["logs/**/*.gz", "logs.gz", false],
      ["**/x/**/*", "a/x", false],
      ["**/x/**/*", "a/x/", true]
    ]
    for (const [glob, key, expected] of cases) {
      assert.strictEqual(Deletion.globRegExp(glob).test(key), expected, `${glob} ${JSON.stringify(key)}`)
      assert.strictEqual(ReferenceModel.globMatch(glob, key), expected, `model: ${glob} ${JSON.stringify(key)}`)
      assert.strictEqual(Deletion.matcher({ prefix: "", include: [glob] }, 0).key(key), expected)
    }
  })

  it.effect("dry run lists and plans, and sends no delete", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 1500, { size: 3 })
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "p/", dryRun: true, sampleSize: 3 })))
      assert.strictEqual(cos.requests.deleteObjects + cos.requests.deleteObject, 0)
      assert.strictEqual(cos.keys().length, 1500)
      assert.isTrue(s.dryRun)
      assert.strictEqual(s.matched, 1500)
      assert.strictEqual(s.matchedBytes, 4500)
      assert.strictEqual(s.deleted, 0)
      assert.deepStrictEqual(s.sample, ["p/000000", "p/000001", "p/000002"])
      assert.deepStrictEqual(s.breakdown, { objects: 1500, versions: 0, deleteMarkers: 0 })
    }))

  it.effect("stops before exceeding maxDeletes and says so", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 20_000)
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "p/", maxDeletes: 1234, concurrency: 4 })))
      assert.strictEqual(s.deleted, 1234)
      assert.strictEqual(s.stoppedBy, "maxDeletes")
      assert.isAtLeast(s.skipped, 1)
      assert.strictEqual(s.matched, s.deleted + s.failed + s.skipped)
      assert.strictEqual(cos.keys().length, 20_000 - 1234)
      assert.isAtMost(cos.requests.list, 6, "listing stops at the cap (a few pages of read-ahead)")
    }))

  it.effect("retries retryable per-key errors as a smaller batch and fails the others", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 1000)
      const seen = new Map<string, number>()
      cos.faults.key = (key) => {
        const n = (seen.get(key) ?? 0) + 1
        seen.set(key, n)
        if (key.endsWith("7") && n <= 2) return "InternalError" // twice, then fine
        if (key.endsWith("13")) return "AccessDenied" // never retried
        return undefined
      }
      cos.faults.omit = (key) => key === "p/000500" // not named in the reply
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "p/" })))
      assert.strictEqual(s.failed, 10 + 1)
      assert.strictEqual(s.deleted, 1000 - 10 - 1)
      assert.strictEqual(s.retries, 2)
      // keys ending in 7 fail on the first two attempts: [890 deleted, 0 deleted, 100 deleted]
      assert.deepStrictEqual(cos.log.map((l) => l.keys.length), [1000 - 100 - 10, 0, 100])
      const codes = new Set(s.failures.map((f) => f.code))
      assert.deepStrictEqual([...codes].sort(), ["AccessDenied", "NotConfirmed"])
      assert.isTrue(s.failures.some((f) => f.key === "p/000500" && f.code === "NotConfirmed"))
      // The omitted key was in fact deleted by the memory COS, but the summary never claims what COS did not say.
      assert.strictEqual(cos.keys().length, 10)
    }))

  it.effect("onFailed receives every failed key, batch by batch, beyond the summary's sample", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 3000)
      cos.faults.key = (key) => (key.endsWith("3") ? "AccessDenied" : undefined)
      const calls: Array<ReadonlyArray<Deletion.Failure>> = []
      const s = ok(
        yield* settle(
          cos,
          Deletion.purge({
            prefix: "p/",
            sampleSize: 5,
            onFailed: (failures) => Effect.sync(() => calls.push(failures))
          })
        )
      )
      assert.strictEqual(s.failed, 300)
      assert.strictEqual(s.failures.length, 5)
      // one call per batch that had failures (three batches of 1000), each naming its own keys once
      assert.strictEqual(calls.length, 3)
      const keys = calls.flat().map((f) => f.key)
      assert.strictEqual(keys.length, 300)
      assert.strictEqual(new Set(keys).size, 300)
      assert.isTrue(calls.flat().every((f) => f.code === "AccessDenied" && f.key.endsWith("3")))
      assert.deepStrictEqual(cos.keys().filter((k) => !k.endsWith("3")), [])
    }))

  it.effect("rides out throttling: 503 SlowDown slows the run, retries, and never fails it", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 3000)
      cos.faults.request = (op, n) => (op === "deleteObjects" && n % 2 === 1 && n < 8) ? slowDown() : undefined
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "p/", concurrency: 1 })))
      assert.strictEqual(s.deleted, 3000)
      assert.strictEqual(s.failed, 0)
      assert.strictEqual(s.throttled, 3)
      assert.isAtLeast(s.retries, 3)
      assert.strictEqual(cos.keys().length, 0)
    }))

  it.effect("fails every key of a batch COS refuses, and stops on AccessDenied with the summary", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 2500)
      cos.faults.request = (
        op,
        n
      ) => (op === "deleteObjects" && n === 1 ? serviceError(400, "MalformedXML") : undefined)
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "p/", concurrency: 1 })))
      assert.strictEqual(s.failed, 1000)
      assert.strictEqual(s.deleted, 1500)
      assert.strictEqual(s.failures[0]!.code, "MalformedXML")

      const cos2 = seed(new MemoryCos(), "p/", 5000)
      cos2.faults.request = (op) => (op === "deleteObjects" ? serviceError(403, "AccessDenied") : undefined)
      let summary: Deletion.Summary | undefined
      const exit = yield* settle(
        cos2,
        Deletion.purge({ prefix: "p/", concurrency: 1, onSummary: (s) => Effect.sync(() => (summary = s)) })
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(exit.cause), "AccessDenied")
      assert.strictEqual(cos2.requests.deleteObjects, 1, "no more requests after AccessDenied")
      assert.strictEqual(summary?.failed, 1000)
      assert.strictEqual(summary?.deleted, 0)
      // The truth, not "interrupted": an error ended the run.
      assert.strictEqual(summary?.stoppedBy, "failed")
    }))

  it.effect("deletes keys that cannot travel in XML one by one", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 20)
      cos.put("p/line\nbreak")
      cos.put("p/carriage\rreturn")
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "p/" })))
      assert.strictEqual(s.deleted, 22)
      assert.strictEqual(cos.requests.deleteObject, 2)
      assert.strictEqual(cos.keys().length, 0)
    }))

  it.effect("lists with several ranges at once and still deletes every key exactly once", () =>
    Effect.gen(function*() {
      const cos = seed(seed(new MemoryCos(), "big/", 12_000), "other/", 10)
      cos.faults.delay = Effect.yieldNow()
      const deletedKeys: Array<string> = []
      const s = ok(
        yield* settle(
          cos,
          Deletion.purge({
            prefix: "big/",
            listConcurrency: 6,
            onDeleted: (d) => Effect.sync(() => deletedKeys.push(...d.map((x) => x.key)))
          })
        )
      )
      assert.strictEqual(s.deleted, 12_000)
      assert.strictEqual(new Set(deletedKeys).size, 12_000)
      assert.strictEqual(deletedKeys.length, 12_000)
      assert.deepStrictEqual(cos.keys(), Array.from({ length: 10 }, (_, i) => `other/${String(i).padStart(6, "0")}`))
    }))

  it.effect("keeps the newest keys, per group", () =>
    Effect.gen(function*() {
      const cos = new MemoryCos()
      for (const db of ["a", "b"]) {
        for (let d = 1; d <= 5; d++) cos.put(`backups/${db}/${d}.tar`, { lastModified: d * DAY })
      }
      const s = ok(
        yield* settle(
          cos,
          Deletion.purge({ prefix: "backups/", keepLatest: { count: 2, groupBy: "^backups/([^/]+)/" } })
        )
      )
      assert.strictEqual(s.deleted, 6)
      assert.strictEqual(s.kept, 4)
      assert.deepStrictEqual(cos.keys(), ["backups/a/4.tar", "backups/a/5.tar", "backups/b/4.tar", "backups/b/5.tar"])
    }))

  it.effect("keepLatest ranks every object under the prefix, whatever its age; olderThan only limits deletion", () =>
    Effect.gen(function*() {
      // Ten daily backups, 0 to 9 days old: keep the 7 newest, never delete anything younger than 2 days. The 7
      // newest are ages 0..6, so ages 7, 8, 9 go (ranking only the objects older than 2 days would delete 1).
      const now = 100 * DAY
      const cos = new MemoryCos()
      for (let age = 0; age <= 9; age++) cos.put(`backups/day-${age}.tar`, { lastModified: now - age * DAY - 1000 })
      // Excluded (and too small) objects are not ranked: they neither take a place among the 7 nor get deleted.
      cos.put("backups/keep/newest.tar", { lastModified: now })
      cos.put("backups/tiny.tar", { lastModified: now, size: 0 })
      yield* TestClock.setTime(now)
      const options = {
        prefix: "backups/",
        keepLatest: { count: 7 },
        olderThan: "2 days",
        exclude: ["backups/keep/**"],
        minSize: 1
      } as const
      const plan = ok(yield* settle(cos, Deletion.purge({ ...options, dryRun: true })))
      assert.strictEqual(plan.matched, 3)
      assert.strictEqual(plan.kept, 5, "ages 2..6 pass olderThan but are among the 7 newest")
      const s = ok(yield* settle(cos, Deletion.purge(options)))
      assert.strictEqual(s.deleted, 3)
      assert.strictEqual(s.matched, 3)
      assert.strictEqual(s.kept, 5)
      assert.strictEqual(s.listed, 12)
      assert.deepStrictEqual(
        cos.keys().filter((k) => k.startsWith("backups/day-")),
        [0, 1, 2, 3, 4, 5, 6].map((age) => `backups/day-${age}.tar`)
      )
      assert.strictEqual(cos.keys().length, 9)
    }))

  it.effect("reports checkpoints only past fully handled keys", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 3500)
      const { checkpoints, s } = yield* purgeCheckpointed(cos, { prefix: "p/", maxDeletes: 2200 })
      assert.strictEqual(s.deleted, 2200)
      assert.isAbove(checkpoints.length, 0)
      const last = checkpoints[checkpoints.length - 1]!
      // Every key at or before the checkpoint is gone; nothing matched but unsent lies before it.
      assert.isTrue(cos.keys().every((k) => k > last), `checkpoint ${last}`)
      assert.deepStrictEqual([...checkpoints].sort(), checkpoints, "checkpoints only move forward")
      // Resuming from it deletes the rest.
      const s2 = ok(yield* settle(cos, Deletion.purge({ prefix: "p/", startAfter: last })))
      assert.strictEqual(s2.deleted, 1300)
      assert.strictEqual(cos.keys().length, 0)
    }))

  it.effect("the checkpoint advances within a listed page, as far as every key before it is handled", () =>
    Effect.gen(function*() {
      // One page of 1000 keys, batches of 100, a cap at 250: the checkpoint used to wait for the whole page (and so
      // never moved here); now it stands on the last key deleted.
      const cos = seed(new MemoryCos(), "p/", 1000)
      const { checkpoints, s } = yield* purgeCheckpointed(cos, { prefix: "p/", batchSize: 100, maxDeletes: 250 })
      assert.strictEqual(s.deleted, 250)
      assert.strictEqual(s.stoppedBy, "maxDeletes")
      assert.strictEqual(checkpoints[checkpoints.length - 1], "p/000249")
      assert.deepStrictEqual([...checkpoints].sort(), checkpoints, "checkpoints only move forward")
      const s2 = ok(yield* settle(cos, Deletion.purge({ prefix: "p/", startAfter: "p/000249" })))
      assert.strictEqual(s2.deleted, 750)
      assert.strictEqual(cos.keys().length, 0)
    }))
})

describe("Deletion.purge on versioned buckets", () => {
  const versioned = () => {
    const cos = new MemoryCos()
    cos.versioning = "enabled"
    cos.put("v/a", { lastModified: 1 * DAY }) // a: 3 versions
    cos.put("v/a", { lastModified: 5 * DAY })
    cos.put("v/a", { lastModified: 50 * DAY })
    cos.put("v/b", { lastModified: 1 * DAY }) // b: version + marker on top
    cos.putMarker("v/b", 2 * DAY)
    cos.putMarker("v/c", 3 * DAY) // c: only markers
    cos.putMarker("v/c", 4 * DAY)
    cos.put("w/x", { lastModified: 1 * DAY })
    return cos
  }

  it.effect("current mode only adds delete markers, and says so", () =>
    Effect.gen(function*() {
      const cos = versioned()
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "v/" })))
      assert.strictEqual(s.deleted, 1)
      assert.strictEqual(s.deleteMarkersCreated, 1)
      assert.isTrue(s.notes.some((n) => n.includes("delete markers")))
      assert.strictEqual(cos.store.get("v/a")!.length, 4)
    }))

  it.effect("all: removes every version and marker", () =>
    Effect.gen(function*() {
      const cos = versioned()
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "v/", versions: "all", listConcurrency: 4 })))
      assert.strictEqual(s.deleted, 7)
      assert.deepStrictEqual(s.breakdown, { objects: 0, versions: 4, deleteMarkers: 3 })
      // versions are listed in parallel ranges like objects: no note that listConcurrency was ignored
      assert.isFalse(s.notes.some((n) => n.includes("sequentially")))
      assert.deepStrictEqual(cos.keys(), ["w/x"])
    }))

  it.effect("noncurrent: ages versions from when they became noncurrent", () =>
    Effect.gen(function*() {
      const cos = versioned()
      yield* TestClock.setTime(60 * DAY)
      // a@1d became noncurrent at 5d (55 days ago), a@5d at 50d (10 days ago); b@1d at 2d (the marker).
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "v/", versions: "noncurrent", olderThan: "30 days" })))
      assert.strictEqual(s.deleted, 2)
      assert.deepStrictEqual(cos.store.get("v/a")!.map((v) => v.lastModified.getTime()), [50 * DAY, 5 * DAY])
      assert.deepStrictEqual(cos.store.get("v/b")!.map((v) => v.marker), [true])
    }))

  it.effect("noncurrent with newerThan: a version is never taken for younger than it is, run after run", () =>
    Effect.gen(function*() {
      const cos = new MemoryCos()
      cos.versioning = "enabled"
      for (const day of [10, 55, 58, 59]) cos.put("v/n", { lastModified: day * DAY })
      yield* TestClock.setTime(60 * DAY)
      // noncurrent since: 10d at 55d (5 days ago), 55d at 58d, 58d at 59d. With the next newer entry read as the moment
      // a version became noncurrent, a first run would delete 55d and 58d (2 and 1 days ago), and a second one 10d,
      // whose next newer entry is then 59d, though it has been noncurrent for 5 days. newerThan counts from the
      // version's own LastModified: only 58d is certainly noncurrent for less than 3 days.
      const rule = { prefix: "v/", versions: "noncurrent", newerThan: "3 days" } as const
      const first = ok(yield* settle(cos, Deletion.purge(rule)))
      const second = ok(yield* settle(cos, Deletion.purge(rule)))
      assert.deepStrictEqual([first.deleted, second.deleted], [1, 0])
      assert.deepStrictEqual(cos.store.get("v/n")!.map((v) => v.lastModified.getTime()), [59 * DAY, 55 * DAY, 10 * DAY])
      // olderThan still counts from the next newer entry: 10d became noncurrent 5 days ago
      const old = ok(yield* settle(cos, Deletion.purge({ prefix: "v/", versions: "noncurrent", olderThan: "4 days" })))
      assert.strictEqual(old.deleted, 1)
      assert.deepStrictEqual(cos.store.get("v/n")!.map((v) => v.lastModified.getTime()), [59 * DAY, 55 * DAY])
    }))

  it.effect("delete-markers: only markers with no version left", () =>
    Effect.gen(function*() {
      const cos = versioned()
      const s = ok(yield* settle(cos, Deletion.purge({ prefix: "v/", versions: "delete-markers" })))
      assert.strictEqual(s.deleted, 2)
      assert.isFalse(cos.store.has("v/c"))
      assert.strictEqual(cos.store.get("v/b")!.length, 2)
    }))

  it.effect("a checkpoint inside a page of versions stands on a key whose versions are all handled", () =>
    Effect.gen(function*() {
      const cos = new MemoryCos()
      cos.versioning = "enabled"
      for (let i = 0; i < 100; i++) for (let v = 0; v < 5; v++) cos.put(`k/${String(i).padStart(4, "0")}`)
      // 23 versions: the five of k/0000 to k/0003, and three of k/0004's five.
      const { checkpoints, s } = yield* purgeCheckpointed(cos, {
        prefix: "k/",
        versions: "all",
        batchSize: 10,
        maxDeletes: 23
      })
      assert.strictEqual(s.deleted, 23)
      assert.strictEqual(cos.store.get("k/0004")?.length, 2)
      assert.strictEqual(checkpoints[checkpoints.length - 1], "k/0003")
      const s2 = ok(yield* settle(cos, Deletion.purge({ prefix: "k/", versions: "all", startAfter: "k/0003" })))
      assert.strictEqual(s2.deleted, 477)
      assert.strictEqual(cos.store.size, 0)
    }))

  it.effect("lists versions page by page with key and version markers", () =>
    Effect.gen(function*() {
      const cos = new MemoryCos()
      cos.versioning = "enabled"
      for (let i = 0; i < 700; i++) for (let v = 0; v < 3; v++) cos.put(`k/${String(i).padStart(4, "0")}`)
      const { checkpoints, s } = yield* purgeCheckpointed(cos, { prefix: "k/", versions: "all" })
      assert.strictEqual(s.listed, 2100)
      assert.strictEqual(s.deleted, 2100)
      assert.strictEqual(cos.store.size, 0)
      assert.strictEqual(cos.requests.listVersions, 3)
      assert.isAbove(checkpoints.length, 0)
    }))
})

describe("Deletion: batches in flight", () => {
  it.effect("sends `concurrency` batch deletes at once, never more, and every key once", () =>
    Effect.gen(function*() {
      // one page of 1000 makes ten batches of 100: the listing is not what limits the batches in flight
      const cos = seed(new MemoryCos(), "p/", 5000)
      cos.faults.delay = Effect.sleep("100 millis")
      let inFlight = 0
      let most = 0
      const sent = new Set<string>()
      const s = ok(
        yield* settle(
          cos,
          Deletion.purge({
            prefix: "p/",
            concurrency: 3,
            batchSize: 100,
            onSend: (objects) =>
              Effect.sync(() => {
                inFlight++
                most = Math.max(most, inFlight)
                for (const o of objects) sent.add(o.key)
              }),
            onDeleted: () => Effect.sync(() => inFlight--)
          })
        )
      )
      assert.strictEqual(s.deleted, 5000)
      assert.strictEqual(cos.keys().length, 0)
      assert.strictEqual(sent.size, 5000)
      assert.strictEqual(cos.log.length, 50, "each batch of 100 sent once")
      assert.strictEqual(most, 3)
      assert.strictEqual(inFlight, 0)
    }))

  it.effect("a defect in one batch ends the run with that defect and cuts off the batches in flight", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 5000)
      cos.faults.delay = Effect.sleep("100 millis")
      let starts = 0
      let summary: Deletion.Summary | undefined
      const exit = yield* settle(
        cos,
        Deletion.purge({
          prefix: "p/",
          concurrency: 2,
          batchSize: 500,
          onBatchStart: () => (++starts === 3 ? Effect.dieMessage("hook bug") : Effect.void),
          onSummary: (x) => Effect.sync(() => (summary = x))
        })
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(exit.cause), "hook bug")
      assert.isDefined(summary)
      assert.isBelow(summary!.deleted, 5000)
      assert.strictEqual(summary!.deleted, 5000 - cos.keys().length, "deleted = what is gone from the bucket")
    }))
})

describe("Deletion: stopping", () => {
  it.effect("a stop signal ends listing, lets batches in flight finish, and returns an exact summary", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 20_000)
      const stop = yield* Deferred.make<void>()
      cos.faults.delay = Effect.sleep("100 millis")
      cos.faults.request = (op, n) => {
        if (op === "deleteObjects" && n === 3) Deferred.unsafeDone(stop, Exit.void)
        return undefined
      }
      const s = ok(
        yield* settle(cos, Deletion.purge({ prefix: "p/", concurrency: 2, stopSignal: Deferred.await(stop) }))
      )
      assert.strictEqual(s.stoppedBy, "interrupted")
      assert.strictEqual(s.deleted, 20_000 - cos.keys().length, "deleted = what is gone from the bucket")
      assert.isBelow(s.deleted, 20_000)
      assert.isAtLeast(s.deleted, 3000)
      assert.strictEqual(s.failed, 0)
      assert.strictEqual(s.matched, s.deleted + s.skipped)
    }))

  it.effect("a caller interrupting the fiber still gets the exact summary through onSummary", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 20_000)
      cos.faults.delay = Effect.sleep("100 millis")
      let summary: Deletion.Summary | undefined
      const deleted: Array<string> = []
      const fiber = yield* Effect.fork(Effect.provide(
        Deletion.purge({
          prefix: "p/",
          concurrency: 3,
          onSummary: (s) => Effect.sync(() => (summary = s)),
          onDeleted: (d) => Effect.sync(() => deleted.push(...d.map((x) => x.key)))
        }),
        cos.layer
      ))
      yield* TestClock.adjust("350 millis")
      const interrupter = yield* Effect.fork(Fiber.interrupt(fiber))
      for (let i = 0; i < 50; i++) yield* TestClock.adjust("50 millis")
      yield* Fiber.join(interrupter)
      assert.isDefined(summary)
      assert.strictEqual(summary!.stoppedBy, "interrupted")
      assert.strictEqual(summary!.deleted, 20_000 - cos.keys().length)
      assert.strictEqual(deleted.length, summary!.deleted)
      assert.isAbove(summary!.deleted, 0)
    }))

  it.effect("a listing failure lets the batches in flight finish, then fails the run with the exact summary", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 10_000)
      cos.faults.delay = Effect.sleep("100 millis")
      cos.faults.request = (op, n) => (op === "list" && n === 4 ? serviceError(403, "AccessDenied", "list") : undefined)
      let summary: Deletion.Summary | undefined
      const exit = yield* settle(
        cos,
        Deletion.purge({ prefix: "p/", concurrency: 4, onSummary: (s) => Effect.sync(() => (summary = s)) })
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(exit.cause), "AccessDenied")
      assert.isDefined(summary)
      assert.strictEqual(summary!.failed, 0, "nothing in flight was cut off")
      assert.isAtLeast(summary!.deleted, 1000)
      assert.strictEqual(summary!.deleted, 10_000 - cos.keys().length)
      assert.strictEqual(summary!.matched, summary!.deleted + summary!.skipped)
    }))

  it.effect("batches still in flight after the grace period are cut off and not counted as deleted", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 5000)
      const stop = yield* Deferred.make<void>()
      cos.faults.delay = Effect.sleep("1 minute")
      const fiber = yield* Effect.fork(Effect.provide(
        Deletion.purge({
          prefix: "p/",
          concurrency: 2,
          batchSize: 500,
          gracePeriod: "5 seconds",
          stopSignal: Deferred.await(stop)
        }),
        cos.layer
      ))
      yield* TestClock.adjust("61 seconds") // the first list page arrives; two batches of 500 go out
      yield* Deferred.succeed(stop, undefined)
      yield* TestClock.adjust("6 seconds")
      const s = yield* Fiber.join(fiber)
      assert.strictEqual(s.stoppedBy, "interrupted")
      assert.strictEqual(s.deleted, 0)
      assert.strictEqual(s.failed, 1000)
      assert.isTrue(s.failures.every((f) => f.code === "Interrupted"))
      assert.strictEqual(s.matched, s.failed + s.skipped)
    }))
})

describe("Deletion: interrupting the caller", () => {
  // Every request takes 4 s; 2500 keys in batches of 1000, one batch at a time. The caller is interrupted at 5 s,
  // while the first batch (sent at 4 s, answered at 8 s) is in flight.
  const slowRun = (gracePeriod: Duration.DurationInput) =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "p/", 2500)
      cos.faults.delay = Effect.sleep("4 seconds")
      let summary: Deletion.Summary | undefined
      const deleted: Array<string> = []
      const fiber = yield* Effect.fork(Effect.provide(
        Deletion.purge({
          prefix: "p/",
          concurrency: 1,
          gracePeriod,
          onSummary: (s) => Effect.sync(() => (summary = s)),
          onDeleted: (d) => Effect.sync(() => deleted.push(...d.map((x) => x.key)))
        }),
        cos.layer
      ))
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(cos.requests.deleteObjects, 1, "the first batch is in flight")
      const interrupter = yield* Effect.fork(Fiber.interrupt(fiber))
      for (let i = 0; i < 40 && Option.isNone(yield* Fiber.poll(interrupter)); i++) {
        yield* TestClock.adjust("500 millis")
      }
      const exit = yield* Fiber.join(interrupter)
      return { cos, summary, deleted, exit }
    })

  it.effect("lets the batch in flight finish within gracePeriod, counts it in onSummary, then ends interrupted", () =>
    Effect.gen(function*() {
      const { cos, deleted, exit, summary } = yield* slowRun("10 seconds")
      assert.isTrue(Exit.isInterrupted(exit))
      assert.isDefined(summary)
      assert.strictEqual(summary!.stoppedBy, "interrupted")
      assert.strictEqual(summary!.deleted, 1000, "the batch in flight was confirmed, not cut off")
      assert.strictEqual(summary!.failed, 0)
      assert.strictEqual(deleted.length, 1000)
      assert.strictEqual(cos.keys().length, 1500)
      assert.strictEqual(cos.requests.deleteObjects, 1, "nothing new is sent after the interruption")
      assert.strictEqual(summary!.matched, summary!.deleted + summary!.failed + summary!.skipped)
    }))

  it.effect("cuts the batch off when it outlasts gracePeriod, and accounts for its keys", () =>
    Effect.gen(function*() {
      const { cos, exit, summary } = yield* slowRun("1 second")
      assert.isTrue(Exit.isInterrupted(exit))
      assert.strictEqual(summary!.deleted, 0)
      assert.strictEqual(summary!.failed, 1000)
      assert.strictEqual(cos.keys().length, 2500)
      assert.strictEqual(summary!.matched, summary!.deleted + summary!.failed + summary!.skipped)
    }))
})

describe("Deletion.deleteKeys", () => {
  it.effect("deletes a stream of keys and versions, batched and exact", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "u/", 2100)
      const keys = Stream.fromIterable(
        Array.from({ length: 2100 }, (_, i) => ({ key: `u/${String(i).padStart(6, "0")}`, size: 2 }))
      )
        .pipe(Stream.rechunk(64))
      const batches: Array<number> = []
      const s = ok(
        yield* settle(
          cos,
          Deletion.deleteKeys(keys, { batchSize: 500, onBatchStart: (b) => Effect.sync(() => batches.push(b.length)) })
        )
      )
      assert.strictEqual(s.deleted, 2100)
      assert.strictEqual(s.bytes, 4200)
      assert.deepStrictEqual(batches, [500, 500, 500, 500, 100])
      assert.strictEqual(cos.keys().length, 0)
    }))

  it.effect("is pipeable, the stream first, with or without options", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "u/", 30)
      const keys = (from: number, to: number) =>
        Stream.range(from, to - 1).pipe(Stream.map((i) => ({ key: `u/${String(i).padStart(6, "0")}` })))
      const batches: Array<number> = []
      const s = ok(
        yield* settle(
          cos,
          keys(0, 20).pipe(
            Deletion.deleteKeys({ batchSize: 7, onBatchStart: (b) => Effect.sync(() => batches.push(b.length)) })
          )
        )
      )
      assert.strictEqual(s.deleted, 20)
      assert.deepStrictEqual(batches, [7, 7, 6])
      const s2 = ok(yield* settle(cos, keys(20, 30).pipe(Deletion.deleteKeys())))
      assert.strictEqual(s2.deleted, 10)
      assert.strictEqual(cos.keys().length, 0)
    }))

  it.effect("fails invalid keys one by one instead of the whole batch", () =>
    Effect.gen(function*() {
      const cos = seed(new MemoryCos(), "u/", 3)
      const keys = Stream.make({ key: "u/000000" }, { key: "/leading-slash" }, { key: "u/000001" })
      const s = ok(yield* settle(cos, Deletion.deleteKeys(keys)))
      assert.strictEqual(s.deleted, 2)
      assert.strictEqual(s.failed, 1)
      assert.strictEqual(s.failures[0]!.key, "/leading-slash")
      assert.strictEqual(Chunk.size(Chunk.fromIterable(cos.keys())), 1)
    }))
})
