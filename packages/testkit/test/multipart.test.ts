// Multipart uploads end to end: our CosClient against the in-process fake, time from the TestClock.
import { CosClient, Credentials, Deletion } from "@effect-cos/core"
import { CosFake, Faults, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"

const MiB = 1_048_576
const t0 = Date.parse("2026-03-01T08:00:00.000Z")
const withClient = CosFake.layerWithClient()

/** Keys a selector or an XML body could get wrong. */
const nastyKeys = [
  "up/\u{1F4E6} astral.bin",
  "up/cafe\u0301 combining.bin",
  "up/ leading and trailing ",
  "up/line\nbreak\r\nhere",
  "up/<xml> & \"quotes\" 'apos' %41+",
  "up/plain"
]

const code = (e: unknown) => (e as { readonly code?: string }).code

describe("multipart uploads on the fake", () => {
  it.effect("initiate, upload parts, list parts, complete: the object is there, the upload is gone", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      const client = yield* CosClient.CosClient
      const fake = yield* CosFake.CosFake
      const key = "backup/db dump.tar"
      const init = yield* client.createMultipartUpload({ key, contentType: "application/x-tar" })
      assert.strictEqual(init.key, key)
      // Unix seconds of the initiation, then 64 hex digits.
      assert.match(init.uploadId, new RegExp(`^${Math.floor(t0 / 1000)}[0-9a-f]{64}$`))
      yield* TestClock.adjust("5 seconds")
      const p1 = yield* client.uploadPart({ key, uploadId: init.uploadId, partNumber: 1, body: new Uint8Array(MiB) })
      const p2 = yield* client.uploadPart({ key, uploadId: init.uploadId, partNumber: 2, body: "tail" })
      const parts = yield* client.listParts({ key, uploadId: init.uploadId })
      assert.deepStrictEqual(parts.parts.map((p) => [p.partNumber, p.size, p.etag]), [[1, MiB, p1.etag], [
        2,
        4,
        p2.etag
      ]])
      assert.strictEqual(parts.key, key)
      assert.strictEqual(parts.parts[0]!.lastModified.getTime(), t0 + 5000)
      const paged = yield* client.listParts({ key, uploadId: init.uploadId, maxParts: 1 })
      assert.deepStrictEqual([paged.isTruncated, paged.nextPartNumberMarker, paged.parts.length], [true, 1, 1])
      const rest = yield* client.listParts({ key, uploadId: init.uploadId, partNumberMarker: 1 })
      assert.deepStrictEqual(rest.parts.map((p) => p.partNumber), [2])
      const listed = yield* client.listMultipartUploads({ prefix: "backup/" })
      assert.deepStrictEqual(listed.uploads.map((u) => [u.key, u.uploadId, u.initiated.getTime()]), [
        [key, init.uploadId, t0]
      ])
      const done = yield* client.completeMultipartUpload({
        key,
        uploadId: init.uploadId,
        parts: [{ partNumber: 1, etag: p1.etag }, { partNumber: 2, etag: p2.etag }]
      })
      assert.match(done.etag, /^"[0-9a-f]{32}-2"$/)
      const head = yield* client.headObject({ key })
      assert.deepStrictEqual([head.contentLength, head.contentType, head.etag], [
        MiB + 4,
        "application/x-tar",
        done.etag
      ])
      assert.deepStrictEqual(yield* Store.uploads(fake.store, CosFake.testBucket), [])
      const again = yield* Effect.flip(client.listParts({ key, uploadId: init.uploadId }))
      assert.deepStrictEqual([again._tag, code(again)], ["CosServiceError", "NoSuchUpload"])
    }).pipe(Effect.provide(withClient)))

  it.effect("completion errors: EntityTooSmall, InvalidPart (gap, wrong ETag, missing), InvalidPartOrder", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      const client = yield* CosClient.CosClient
      const key = "big.bin"
      const { uploadId } = yield* client.createMultipartUpload({ key })
      const e1 = yield* client.uploadPart({ key, uploadId, partNumber: 1, body: "small" })
      const e2 = yield* client.uploadPart({ key, uploadId, partNumber: 2, body: "small too" })
      const e3 = yield* client.uploadPart({ key, uploadId, partNumber: 3, body: new Uint8Array(MiB) })
      const completeWith = (parts: ReadonlyArray<CosClient.CompletedPart>) =>
        Effect.flip(client.completeMultipartUpload({ key, uploadId, parts })).pipe(Effect.map(code))
      assert.strictEqual(
        yield* completeWith([{ partNumber: 1, etag: e1.etag }, { partNumber: 2, etag: e2.etag }]),
        "EntityTooSmall"
      )
      assert.strictEqual(
        yield* completeWith([{ partNumber: 1, etag: e1.etag }, { partNumber: 3, etag: e3.etag }]),
        "InvalidPart"
      )
      assert.strictEqual(yield* completeWith([{ partNumber: 1, etag: e2.etag }]), "InvalidPart")
      assert.strictEqual(
        yield* completeWith([{ partNumber: 1, etag: e1.etag }, { partNumber: 4, etag: e1.etag }]),
        "InvalidPart"
      )
      assert.strictEqual(
        yield* completeWith([{ partNumber: 2, etag: e2.etag }, { partNumber: 1, etag: e1.etag }]),
        "InvalidPartOrder"
      )
      // Nothing was lost by the refusals: replacing part 1 with a full part makes 1–3 valid... except 2 is small.
      const big1 = yield* client.uploadPart({ key, uploadId, partNumber: 1, body: new Uint8Array(MiB) })
      const big2 = yield* client.uploadPart({ key, uploadId, partNumber: 2, body: new Uint8Array(MiB) })
      const ok = yield* client.completeMultipartUpload({
        key,
        uploadId,
        parts: [{ partNumber: 1, etag: big1.etag }, { partNumber: 2, etag: big2.etag }, {
          partNumber: 3,
          etag: e3.etag
        }]
      })
      assert.match(ok.etag, /-3"$/)
      const wrongKey = yield* Effect.flip(client.uploadPart({ key: "other", uploadId, partNumber: 1, body: "x" }))
      assert.strictEqual(code(wrongKey), "NoSuchUpload")
      const badNumber = yield* Effect.flip(client.uploadPart({ key, uploadId, partNumber: 10_001, body: "x" }))
      assert.strictEqual(badNumber._tag, "CosInvalidRequest")
    }).pipe(Effect.provide(withClient)))

  it.effect("abort removes an upload; a second abort fails with NoSuchUpload; objects are untouched", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      const client = yield* CosClient.CosClient
      const fake = yield* CosFake.CosFake
      yield* client.putObject({ key: "same", body: "object" })
      const { uploadId } = yield* client.createMultipartUpload({ key: "same" })
      yield* client.uploadPart({ key: "same", uploadId, partNumber: 1, body: "x" })
      yield* client.abortMultipartUpload({ key: "same", uploadId })
      assert.deepStrictEqual(yield* Store.uploads(fake.store, CosFake.testBucket), [])
      const second = yield* Effect.flip(client.abortMultipartUpload({ key: "same", uploadId }))
      assert.deepStrictEqual([second._tag, code(second)], ["CosServiceError", "NoSuchUpload"])
      assert.strictEqual((yield* client.headObject({ key: "same" })).contentLength, 6)
    }).pipe(Effect.provide(withClient)))

  it.effect("lists nasty keys url-decoded, pages by key and upload id, folds prefixes", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      const client = yield* CosClient.CosClient
      const expected: Array<readonly [string, string]> = []
      for (const [i, key] of nastyKeys.entries()) {
        yield* TestClock.adjust("1 second")
        const a = yield* client.createMultipartUpload({ key })
        expected.push([key, a.uploadId])
        if (i % 2 === 0) {
          yield* TestClock.adjust("1 second")
          const b = yield* client.createMultipartUpload({ key })
          expected.push([key, b.uploadId])
        }
      }
      expected.sort((x, y) => CosClient.compareKeys(x[0], y[0]) || (x[1] < y[1] ? -1 : 1))
      const all = yield* Stream.runCollect(client.listMultipartUploadsStream({ prefix: "up/", maxUploads: 2 }))
      assert.deepStrictEqual(Chunk.toReadonlyArray(all).map((u) => [u.key, u.uploadId] as const), expected)
      // Same-key uploads come oldest first, and a page may end between them.
      const first = yield* client.listMultipartUploads({ prefix: "up/", maxUploads: 1 })
      assert.strictEqual(first.isTruncated, true)
      assert.strictEqual(first.nextKeyMarker, expected[0]![0])
      assert.strictEqual(first.nextUploadIdMarker, expected[0]![1])
      const keyOnly = yield* client.listMultipartUploads({ prefix: "up/", keyMarker: expected[0]![0] })
      assert.isFalse(keyOnly.uploads.some((u) => u.key === expected[0]![0]))
      const folded = yield* client.listMultipartUploads({ delimiter: "/" })
      assert.deepStrictEqual([folded.uploads.length, folded.commonPrefixes], [0, ["up/"]])
      const exact = yield* client.listMultipartUploads({ prefix: "up/ leading and trailing " })
      // Two uploads of that key (even index), nothing of the keys it is a prefix of.
      assert.deepStrictEqual(exact.uploads.map((u) => u.key), [
        "up/ leading and trailing ",
        "up/ leading and trailing "
      ])
    }).pipe(Effect.provide(withClient)))
})

describe("Deletion: incomplete uploads (library entry point)", () => {
  /** Old and young uploads under `tmp/` with nasty keys, one excluded, plus completed objects under the same keys. */
  const scene = Effect.gen(function*() {
    yield* TestClock.setTime(t0)
    const fake = yield* CosFake.CosFake
    const bucket = CosFake.testBucket
    const oldKeys = [
      "tmp/\u{1F4E6}.bin",
      "tmp/cafe\u0301.bin",
      "tmp/ spaced ",
      "tmp/line\nbreak",
      "tmp/<&\"'>.bin",
      "tmp/keep/precious.bin"
    ]
    const old: Array<readonly [string, string]> = []
    for (const key of oldKeys) {
      old.push([key, yield* Store.initiateUpload(fake.store, { bucket, key, partSizes: [10] })])
      yield* Store.putObject(fake.store, { bucket, key, body: "completed" })
    }
    // A second old upload of the same key: both must go.
    old.push([oldKeys[0]!, yield* Store.initiateUpload(fake.store, { bucket, key: oldKeys[0]! })])
    const outside = yield* Store.initiateUpload(fake.store, { bucket, key: "other/old.bin" })
    yield* TestClock.adjust("8 days")
    const young = yield* Store.initiateUpload(fake.store, { bucket, key: "tmp/young.bin" })
    yield* TestClock.adjust("1 hour")
    return { fake, bucket, old, oldKeys, outside, young }
  })

  const options = {
    prefix: "tmp/",
    olderThan: "7 days",
    exclude: ["tmp/keep/**"]
  } as const

  it.effect("dry run plans, then the run aborts old uploads only; young, excluded and other prefixes remain", () =>
    Effect.gen(function*() {
      const { bucket, fake, old, oldKeys, outside, young } = yield* scene
      const plan = yield* Deletion.abortIncompleteUploads({ ...options, dryRun: true })
      assert.deepStrictEqual([plan.target, plan.dryRun, plan.listed, plan.matched, plan.deleted], [
        "incompleteUploads",
        true,
        8,
        6,
        0
      ])
      assert.strictEqual((yield* Store.uploads(fake.store, bucket)).length, 9)
      const audit: Array<Deletion.Deleted> = []
      const summary = yield* Deletion.abortIncompleteUploads({
        ...options,
        onDeleted: (d) => Effect.sync(() => audit.push(...d))
      })
      assert.deepStrictEqual([summary.matched, summary.deleted, summary.failed, summary.skipped], [6, 6, 0, 0])
      const expectedGone = old.filter(([k]) => !k.startsWith("tmp/keep/"))
      const sortPairs = (xs: ReadonlyArray<readonly [string, string]>) =>
        [...xs].sort((a, b) => CosClient.compareKeys(a[0], b[0]) || (a[1] < b[1] ? -1 : 1))
      assert.deepStrictEqual(sortPairs(audit.map((d) => [d.key, d.uploadId!] as const)), sortPairs(expectedGone))
      const left = (yield* Store.uploads(fake.store, bucket)).map((u) => u.uploadId).sort()
      const kept = old.find(([k]) => k === "tmp/keep/precious.bin")![1]
      assert.deepStrictEqual(left, [kept, outside, young].sort())
      // Completed objects under the same keys are untouched.
      assert.deepStrictEqual(
        [...(yield* Store.keys(fake.store, bucket, "tmp/"))].sort(CosClient.compareKeys),
        [...oldKeys].sort(CosClient.compareKeys)
      )
    }).pipe(Effect.provide(withClient)))

  it.effect("maxDeletes caps the aborts; an upload gone meanwhile counts as skipped, not failed; bad options", () =>
    Effect.gen(function*() {
      const { bucket, fake } = yield* scene
      const capped = yield* Deletion.purge({ ...options, target: "incompleteUploads", maxDeletes: 2 })
      // The rest of the page is accounted for: matched = deleted + failed + skipped.
      assert.deepStrictEqual([capped.matched, capped.deleted, capped.skipped, capped.stoppedBy], [
        6,
        2,
        4,
        "maxDeletes"
      ])
      assert.strictEqual((yield* Store.uploads(fake.store, bucket)).length, 7)
      // Someone else aborts the last matching upload while the run is going.
      const client = yield* CosClient.CosClient
      const matching = (yield* Store.uploads(fake.store, bucket, "tmp/")).filter((u) =>
        !u.key.startsWith("tmp/keep/") && u.key !== "tmp/young.bin"
      )
      const last = matching[matching.length - 1]!
      let raced = false
      const summary = yield* Deletion.abortIncompleteUploads({
        ...options,
        concurrency: 1,
        onDeleted: () =>
          raced ? Effect.void : Effect.asVoid(
            Effect.tap(client.abortMultipartUpload({ key: last.key, uploadId: last.uploadId }), () => (raced = true))
          ).pipe(Effect.orDie)
      })
      assert.deepStrictEqual([summary.matched, summary.deleted, summary.failed, summary.skipped], [4, 3, 0, 1])
      assert.isTrue(summary.notes.some((n) => n.includes("already gone")))
      assert.deepStrictEqual((yield* Store.uploads(fake.store, bucket, "tmp/")).map((u) => u.key).sort(), [
        "tmp/keep/precious.bin",
        "tmp/young.bin"
      ])
      const refused = yield* Effect.flip(Deletion.purge({ ...options, target: "incompleteUploads", minSize: 1 }))
      assert.strictEqual(refused._tag, "CosInvalidRequest")
      assert.match(refused.message, /minSize does not apply to incomplete uploads/)
      const whole = yield* Effect.flip(Deletion.abortIncompleteUploads({ prefix: "" }))
      assert.strictEqual(whole._tag, "CosInvalidRequest")
    }).pipe(Effect.provide(withClient)))
})

describe("Deletion: incomplete uploads under throttling", () => {
  it.live("SlowDown on aborts slows the run (counted as throttled), never fails it", () =>
    Effect.gen(function*() {
      const fake = yield* CosFake.CosFake
      const bucket = CosFake.testBucket
      for (let i = 0; i < 5; i++) {
        yield* Store.initiateUpload(fake.store, { bucket, key: `slow/${i}`, ageMs: 10 * 86_400_000 })
      }
      // More SlowDowns than the client's own attempts: the engine's retry has to carry them.
      yield* fake.script(Faults.failNext("AbortMultipartUpload", 3, "SlowDown"))
      const s = yield* Deletion.abortIncompleteUploads({ prefix: "slow/", olderThan: "1 day", concurrency: 1 })
      assert.deepStrictEqual([s.deleted, s.failed], [5, 0])
      assert.deepStrictEqual(yield* Store.uploads(fake.store, bucket, "slow/"), [])
      const stats = yield* fake.stats
      assert.strictEqual(stats.byOperationStatus["AbortMultipartUpload 503"], 3)
      // Every SlowDown the server sent, the ones the client retried itself included.
      assert.strictEqual(s.throttled, 3)
    }).pipe(Effect.provide(CosFake.layerWithClient({}, { retry: { attempts: 2, baseDelay: "1 millis" } }))))
})

describe("Deletion: incomplete uploads, failures", () => {
  it.effect("a listing refused by COS fails the run with that error, after the summary reached onSummary", () =>
    Effect.gen(function*() {
      const fake = yield* CosFake.CosFake
      yield* Store.initiateUpload(fake.store, { bucket: CosFake.testBucket, key: "x/1" })
      let seen: Deletion.Summary | undefined
      const e = yield* Effect.flip(Deletion.abortIncompleteUploads({
        prefix: "x/",
        onSummary: (s) => Effect.sync(() => (seen = s))
      }))
      assert.deepStrictEqual([e._tag, (e as { code?: string }).code], ["CosServiceError", "SignatureDoesNotMatch"])
      // The truth, not "interrupted": an error ended the run.
      assert.deepStrictEqual([seen?.target, seen?.deleted, seen?.stoppedBy], ["incompleteUploads", 0, "failed"])
      assert.strictEqual((yield* Store.uploads(fake.store, CosFake.testBucket)).length, 1)
    }).pipe(Effect.provide(CosFake.layerWithClient({}, {
      credentials: Credentials.fromStatic({
        secretId: CosFake.testCredentials.secretId,
        secretKey: Redacted.make("wrong")
      })
    }))))
})

describe("Deletion: incomplete uploads, stopping", () => {
  it.effect("a stop signal ends the listing; the abort in flight finishes; the summary accounts for every match", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(t0)
      const fake = yield* CosFake.CosFake
      for (let i = 0; i < 5; i++) {
        yield* Store.initiateUpload(fake.store, { bucket: CosFake.testBucket, key: `stop/${i}`, ageMs: 86_400_000 })
      }
      const fiber = yield* Effect.fork(Deletion.abortIncompleteUploads({
        prefix: "stop/",
        concurrency: 1,
        stopSignal: Effect.sleep("1500 millis")
      }))
      for (let i = 0; i < 10; i++) yield* TestClock.adjust("500 millis")
      const s = yield* Fiber.join(fiber)
      assert.strictEqual(s.stoppedBy, "interrupted")
      assert.strictEqual(s.deleted, 2) // aborts answered at 1 s and 2 s; the second was in flight at the stop
      assert.strictEqual(s.matched, s.deleted + s.failed + s.skipped)
      assert.strictEqual((yield* Store.uploads(fake.store, CosFake.testBucket, "stop/")).length, 3)
    }).pipe(
      Effect.provide(CosFake.layerWithClient({ faults: { operations: { AbortMultipartUpload: { latencyMs: 1000 } } } }))
    ))
})
