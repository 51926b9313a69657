// Our own CosClient runs unmodified on the in-process fake and on the socket server.
import { CosClient, Credentials } from "@effect-cos/core"
import { CosFake, CosFakeServer, Faults, Store } from "@effect-cos/testkit"
import { NodeHttpClient } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"

const clientOptions = {
  region: CosFake.testRegion,
  bucket: CosFake.testBucket,
  credentials: Credentials.fromStatic(CosFake.testCredentials),
  scheme: "http" as const
}

const seeded = CosFake.layerSeeded({ count: 2500, prefix: "logs/", ageMs: 1000, size: 10 })
const withClient = CosFake.layerWithClient({
  seed: [{ bucket: CosFake.testBucket, count: 2500, prefix: "logs/", ageMs: 1000, size: 10 }]
})

describe("CosClient on the fake", () => {
  it.effect("lists a seeded prefix as a stream, deletes a batch, lists versions", () =>
    Effect.gen(function*() {
      const client = yield* CosClient.CosClient
      const fake = yield* CosFake.CosFake
      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(client.listObjectsStream({ prefix: "logs/" })))
      assert.strictEqual(all.length, 2500)
      assert.strictEqual(all[0]!.key, "logs/0000")
      assert.strictEqual(all[0]!.size, 10)
      const r = yield* client.deleteObjects({ objects: all.slice(0, 1000).map((o) => ({ key: o.key })) })
      assert.strictEqual(r.deleted.length, 1000)
      assert.strictEqual(yield* Store.size(fake.store, CosFake.testBucket), 1500)
      const put = yield* client.putObject({ key: "a b/c+d.txt", body: "hello" })
      assert.strictEqual(put.etag, "\"5d41402abc4b2a76b9719d911017c592\"")
      const head = yield* client.headObject({ key: "a b/c+d.txt" })
      assert.strictEqual(head.contentLength, 5)
      const missing = yield* Effect.flip(client.headObject({ key: "nope" }))
      assert.strictEqual(missing._tag, "CosServiceError")
      const page = yield* client.listObjectVersions({ prefix: "a b/" })
      assert.deepStrictEqual(page.versions.map((v) => [v._tag, v.key, v.versionId]), [["Version", "a b/c+d.txt", ""]])
    }).pipe(Effect.provide(withClient)))

  it.live("retries injected 503s and resets", () =>
    Effect.gen(function*() {
      const client = yield* CosClient.CosClient
      const fake = yield* CosFake.CosFake
      yield* fake.script(Faults.failNext("ListObjects", 2, "SlowDown"))
      yield* fake.script(Faults.failNext("DeleteObjects", 1, "Reset"))
      const page = yield* client.listObjects({ prefix: "logs/", maxKeys: 10 })
      assert.strictEqual(page.contents.length, 10)
      const r = yield* client.deleteObjects({ objects: page.contents.map((o) => ({ key: o.key })) })
      assert.strictEqual(r.deleted.length, 10)
      const s = yield* fake.stats
      assert.strictEqual(s.byOperationStatus["ListObjects 503"], 2)
      assert.strictEqual(s.byOperationStatus["DeleteObjects reset"], 1)
    }).pipe(
      Effect.provide(
        Layer.provideMerge(CosClient.layer({ ...clientOptions, retry: { baseDelay: "1 millis" } }), seeded)
      )
    ))

  it.live("the same client over a socket, with the endpoint option", () =>
    Effect.scoped(
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({ seed: [{ bucket: CosFake.testBucket, count: 1200, prefix: "p/" }] })
        const client = yield* CosClient.make({ ...clientOptions, endpoint: server.url })
        const n = yield* Stream.runCount(client.listObjectsStream({ prefix: "p/" }))
        assert.strictEqual(n, 1200)
        const r = yield* client.deleteObjects({ objects: [{ key: "p/0000" }, { key: "p/0001" }] })
        assert.strictEqual(r.deleted.length, 2)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici))
    ))
})
