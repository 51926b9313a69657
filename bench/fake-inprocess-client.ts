// CosClient listing and batch-deleting through the in-process fake (no sockets): what unit tests and in-process
// benchmarks pay per key.   node --conditions=source --import tsx bench/fake-inprocess-client.ts [--count 200000]
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { parseArgs } from "node:util"
import { CosClient, Credentials } from "../packages/core/src/index.js"
import { CosFake, Store } from "../packages/testkit/src/index.js"

const { values } = parseArgs({ options: { count: { type: "string", default: "200000" } } })
const count = Number(values.count)

const program = Effect.gen(function*() {
  const client = yield* CosClient.CosClient
  const fake = yield* CosFake.CosFake
  let t = performance.now()
  const n = yield* Stream.runCount(client.listObjectsStream({ prefix: "k/" }))
  const listMs = performance.now() - t
  console.log(
    `CosClient.listObjectsStream ${n} keys in process: ${(listMs / 1000).toFixed(2)} s, ` +
      `${Math.round(n / (listMs / 1000))} keys/s`
  )
  t = performance.now()
  yield* client.listObjectsStream({ prefix: "k/" }).pipe(
    Stream.grouped(1000),
    Stream.mapEffect(
      (chunk) =>
        client.deleteObjects({ objects: Chunk.toReadonlyArray(chunk).map((o) => ({ key: o.key })), quiet: true }),
      { concurrency: 4 }
    ),
    Stream.runDrain
  )
  const delMs = performance.now() - t
  const left = yield* Store.size(fake.store, CosFake.testBucket)
  console.log(
    `list + batch-delete ${n} keys in process: ${(delMs / 1000).toFixed(2)} s, ` +
      `${Math.round(n / (delMs / 1000))} keys/s (left: ${left})`
  )
})

const layer = Layer.provideMerge(
  CosClient.layer({
    region: CosFake.testRegion,
    bucket: CosFake.testBucket,
    credentials: Credentials.fromStatic(CosFake.testCredentials),
    scheme: "http"
  }),
  CosFake.layerSeeded({ count, prefix: "k/" })
)

Effect.runPromise(Effect.provide(program, layer)).catch((e) => {
  console.error(e)
  process.exit(1)
})
