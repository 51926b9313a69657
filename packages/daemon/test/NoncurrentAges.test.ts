/**
 * `versions: noncurrent` with `newerThan`, through `purge` and a YAML rule run by `once`, twice each: a version is
 * never taken for more recently noncurrent than it is once an earlier run deleted its real successor.
 *
 * One key, versions written 10, 5, 2 and 1 days ago (the last current). They became noncurrent 5, 2 and 1 days ago.
 * With the next newer version read as that moment, a first run with "newer than 3 days" deleted the 5- and 2-day-old
 * versions, and a second one the 10-day-old version (its next newer one then 1 day old), though it has been
 * noncurrent for 5 days. newerThan counts from a version's own LastModified: only the 2-day-old one goes, once.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { writeLocalConfig } from "./support/config.js"
import { cosRetention } from "./support/inProcess.js"

const bucket = CosFake.testBucket
const DAY = 86_400_000

/** A versioned fake holding the key's four versions (10, 5, 2 and 1 days old; the newest current). */
const versionedFake = Effect.gen(function*() {
  const server = yield* CosFakeServer.start({ buckets: [{ name: bucket, versioning: "Enabled" }] })
  const ages = [10, 5, 2, 1]
  yield* Store.seed(server.fake.store, {
    bucket,
    count: ages.length,
    keyFn: () => "n/k <&>",
    ageMs: (i) => ages[i]! * DAY
  })
  /** The days-old of the versions left, newest first. */
  const left = Effect.map(
    Store.versions(server.fake.store, bucket, "n/"),
    (vs) => vs.map((v) => Math.round((Date.now() - v.lastModified.getTime()) / DAY))
  )
  return { server, left }
})

describe("noncurrent versions and newerThan", () => {
  it.scopedLive(
    "purge --versions noncurrent --newer-than 3d, twice: only the version written 2 days ago goes",
    () =>
      Effect.gen(function*() {
        const { left, server } = yield* versionedFake
        assert.deepStrictEqual(yield* left, [1, 2, 5, 10])
        const args = ["--bucket", bucket, "--region", CosFake.testRegion, "--endpoint", server.url, "--prefix", "n/"]
        const deleted: Array<number> = []
        for (let run = 0; run < 2; run++) {
          const r = yield* cosRetention([
            "purge",
            ...args,
            "--versions",
            "noncurrent",
            "--newer-than",
            "3d",
            "--yes",
            "--json"
          ])
          assert.strictEqual(r.code, 0, r.stderr)
          deleted.push(JSON.parse(r.stdout.trim().split("\n").pop()!).deleted)
        }
        assert.deepStrictEqual(deleted, [1, 0])
        assert.deepStrictEqual(yield* left, [1, 5, 10])
      }),
    60_000
  )

  it.scopedLive(
    "a YAML rule (versions: noncurrent, olderThan: 12h, newerThan: 3d; a rule needs an olderThan) run by once, twice: the same",
    () =>
      Effect.gen(function*() {
        const { left, server } = yield* versionedFake
        const { path: config } = yield* writeLocalConfig(
          "noncurrent",
          server.url,
          `  - name: young-noncurrent
    bucket: ${bucket}
    prefix: n/
    versions: noncurrent
    olderThan: 12h
    newerThan: 3d
    schedule: "0 3 * * *"
`
        )
        for (let run = 0; run < 2; run++) {
          const r = yield* cosRetention(["once", "--config", config, "--log-format", "json"])
          assert.strictEqual(r.code, 0, r.stderr)
        }
        assert.deepStrictEqual(yield* left, [1, 5, 10])
      }),
    60_000
  )
})
