/** Objects seeded in the fake's test bucket, and counted there, as the daemon's tests need them. */
import { CosFake, type CosFakeServer, Store } from "@effect-cos/testkit"
import * as Effect from "effect/Effect"

/** Seeds `count` objects of `size` bytes under `prefix` in the test bucket, `ageMs` old (one age, or one per index). */
export const seedKeys = (
  server: CosFakeServer.CosFakeServer,
  prefix: string,
  count: number,
  ageMs: number | ((i: number) => number),
  size = 10
) => Store.seed(server.fake.store, { bucket: CosFake.testBucket, count, prefix, ageMs, size })

/** How many keys the test bucket holds under `prefix`. */
export const keyCount = (server: CosFakeServer.CosFakeServer, prefix: string) =>
  Store.keys(server.fake.store, CosFake.testBucket, prefix).pipe(Effect.map((keys) => keys.length))
