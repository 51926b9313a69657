// Every example program, run against the testkit's fake COS (in process), so the seeds keep working.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { CosClient } from "../../packages/core/src/index.js"
import { CosFake, Store } from "../../packages/testkit/src/index.js"
import { batchDelete } from "../batch-delete.js"
import { deleteDirectoryObject } from "../delete-directory-object.js"
import { deleteFolderConcurrently } from "../delete-folder-concurrently.js"
import { deleteObject } from "../delete-object.js"
import { deletePrefix } from "../delete-prefix.js"
import { deleteVersion } from "../delete-version.js"

const bucket = CosFake.testBucket

/** Runs `f` with a fresh fake (optionally versioned) and a client wired to it. */
const withFake = <A, E>(
  f: (store: Store.Store) => Effect.Effect<A, E, CosClient.CosClient>,
  versioning?: "Enabled"
) =>
  Effect.gen(function*() {
    const store = Store.make({ buckets: [{ name: bucket, versioning }] })
    return yield* Effect.provide(f(store), CosFake.layerWithClient({ store }))
  })

const put = (store: Store.Store, key: string, body = "x") => Store.putObject(store, { bucket, key, body })
const keys = (store: Store.Store, prefix = "") => Store.keys(store, bucket, prefix)

describe("examples", () => {
  it.effect("delete-object: deletes one object (and succeeds for a missing one)", () =>
    withFake((store) =>
      Effect.gen(function*() {
        yield* put(store, "photos/cat.jpg")
        yield* put(store, "photos/dog.jpg")
        const r = yield* deleteObject("photos/cat.jpg")
        assert.strictEqual(r.deleteMarkerCreated, false)
        assert.deepStrictEqual(yield* keys(store), ["photos/dog.jpg"])
        yield* deleteObject("photos/absent.jpg")
      })
    ))

  it.effect("delete-directory-object: deletes an empty dir/ object, refuses a folder with keys", () =>
    withFake((store) =>
      Effect.gen(function*() {
        yield* put(store, "reports/", "")
        yield* put(store, "full/", "")
        yield* put(store, "full/a.csv")
        const r = yield* deleteDirectoryObject("reports")
        assert.deepStrictEqual(r, { key: "reports/", existed: true })
        const refused = yield* Effect.exit(deleteDirectoryObject("full/"))
        assert.isTrue(Exit.isFailure(refused))
        if (Exit.isFailure(refused)) assert.include(String(refused.cause), "is not empty")
        assert.deepStrictEqual(yield* keys(store), ["full/", "full/a.csv"])
      })
    ))

  it.effect("delete-prefix: plans, then deletes everything under the prefix, folder object included", () =>
    withFake((store) =>
      Effect.gen(function*() {
        yield* Store.seed(store, { bucket, count: 2500, prefix: "logs/2023/" })
        yield* put(store, "logs/2023/", "")
        yield* put(store, "logs/2024/keep.log")
        const plan = yield* deletePrefix("logs/2023/", { dryRun: true })
        assert.strictEqual(plan.matched, 2501)
        assert.strictEqual((yield* keys(store)).length, 2502)
        const r = yield* deletePrefix("logs/2023/")
        assert.strictEqual(r.deleted, 2501)
        assert.deepStrictEqual(yield* keys(store), ["logs/2024/keep.log"])
      })
    ))

  it.effect("delete-version: removes one version for good", () =>
    withFake((store) =>
      Effect.gen(function*() {
        const v1 = yield* Store.putObject(store, { bucket, key: "doc.txt", body: "one" })
        const v2 = yield* Store.putObject(store, { bucket, key: "doc.txt", body: "two" })
        const r = yield* deleteVersion("doc.txt", v1)
        assert.strictEqual(r.versionId, v1)
        assert.strictEqual(r.wasDeleteMarker, false)
        const left = yield* Store.versions(store, bucket, "doc.txt")
        assert.deepStrictEqual(left.map((v) => v.versionId), [v2])
      }), "Enabled"))

  it.effect("batch-delete: per-key results, with and without Quiet", () =>
    withFake((store) =>
      Effect.gen(function*() {
        for (const k of ["a", "b", "c", "d"]) yield* put(store, k)
        const loud = yield* batchDelete(["a", "b", "absent"])
        assert.deepStrictEqual([...loud.deleted].sort(), ["a", "absent", "b"])
        assert.deepStrictEqual(loud.errors, [])
        const quiet = yield* batchDelete(["c", "d"], { quiet: true })
        assert.deepStrictEqual([...quiet.deleted].sort(), ["c", "d"])
        assert.deepStrictEqual(yield* keys(store), [])
      })
    ))

  it.effect("delete-folder-concurrently: bounded batches in flight, every key accounted for", () =>
    withFake((store) =>
      Effect.gen(function*() {
        yield* Store.seed(store, { bucket, count: 3200, prefix: "media/tmp/" })
        yield* put(store, "media/keep.png")
        const r = yield* deleteFolderConcurrently("media/tmp", 2)
        assert.strictEqual(r.deleted, 3200)
        assert.strictEqual(r.failed, 0)
        assert.strictEqual(r.requests, 4)
        assert.deepStrictEqual(yield* keys(store), ["media/keep.png"])
      })
    ))
})
