/**
 * Time windows (`--newer-than` with `--older-than`, rule `newerThan`) and the byte cap (`--max-delete-size`, rule
 * `maxDeleteSize`) at the entry points users touch: `cos-retention purge` and `once` against the fake, asserting
 * exactly which keys go and which survive (young, too old, over the cap), and the exit codes.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { writeLocalConfig } from "./support/config.js"
import { cosRetention } from "./support/inProcess.js"

const bucket = CosFake.testBucket
const DAY = 86_400_000

/** Keys with surrounding spaces, an astral character, a combining mark and XML-special characters. */
const names = [" a ", "b😀", "c\u0301", "d<&>'\"", "e\ttab"]

const purge = (url: string, args: ReadonlyArray<string>) =>
  cosRetention([
    "purge",
    "--bucket",
    bucket,
    "--region",
    CosFake.testRegion,
    "--endpoint",
    url,
    "--yes",
    "--json",
    ...args
  ])

/** Seeds `p/<name>` for each `[name, days old, size]`. */
const seed = (store: Store.Store, entries: ReadonlyArray<readonly [string, number, number]>) =>
  Store.seed(store, {
    bucket,
    count: entries.length,
    keyFn: (i) => `p/${entries[i]![0]}`,
    ageMs: (i) => entries[i]![1] * DAY,
    size: (i) => entries[i]![2]
  })

const left = (store: Store.Store) => Effect.map(Store.keys(store, bucket, "p/"), (ks) => [...ks].sort())

describe("purge --newer-than / --max-delete-size", () => {
  it.scopedLive(
    "--newer-than 30d --older-than 7d deletes exactly the keys between: young and too old survive",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        // young (1d, 6d), inside (8d, 10d, 29d), too old (31d, 90d)
        const entries = [1, 6, 8, 10, 29, 31, 90].map((d, i) => [`${names[i % names.length]}${d}`, d, 10] as const)
        yield* seed(server.fake.store, entries)
        const r = yield* purge(server.url, ["--prefix", "p/", "--newer-than", "30d", "--older-than", "7 days"])
        assert.strictEqual(r.code, 0, r.stderr)
        assert.deepStrictEqual(
          yield* left(server.fake.store),
          entries.filter(([, d]) => d < 7 || d > 30).map(([k]) => `p/${k}`).sort()
        )
        assert.strictEqual(JSON.parse(r.stdout.trim().split("\n").pop()!).deleted, 3)
      }),
    30_000
  )

  it.scopedLive("--max-delete-size never exceeds the cap, exits 3 and says what it left", () =>
    Effect.gen(function*() {
      const server = yield* CosFakeServer.start({})
      // key order: p/ a (400), p/b😀 (400), p/c\u0301 (400), p/d... (1), p/e... (1)
      const entries = names.map((n, i) => [n, 3, i < 3 ? 400 : 1] as const)
      yield* seed(server.fake.store, entries)
      const r = yield* purge(server.url, ["--prefix", "p/", "--max-delete-size", "1KB"])
      assert.strictEqual(r.code, 3, r.stderr)
      const s = JSON.parse(r.stdout.trim().split("\n").pop()!)
      assert.strictEqual(s.stoppedBy, "maxDeleteSize")
      assert.isAtMost(s.bytes, 1000)
      assert.strictEqual(s.bytes, 800)
      assert.deepStrictEqual(s.left, { keys: 3, bytes: 402 })
      const kept = yield* left(server.fake.store)
      assert.strictEqual(kept.length, 3)
      const human = yield* purge(server.url, ["--prefix", "p/", "--max-delete-size", "0"])
      assert.strictEqual(human.code, 3, human.stderr)
      assert.strictEqual((yield* left(server.fake.store)).length, 3, "a cap of 0 deletes nothing")
    }), 30_000)

  it.scopedLive(
    "bad values exit 2 naming the flag and what is accepted, and delete nothing",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        yield* seed(server.fake.store, [["x", 10, 5], ["y", 40, 5]])
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
          [["--newer-than", "7d", "--older-than", "30d"], "--newer-than must reach further back than --older-than"],
          [["--newer-than", "2026-01-31T08:00:00"], "no time zone"],
          [["--newer-than", "last week"], "--newer-than: expected a duration"],
          [["--older-than", "-3d"], "--older-than: expected a duration"],
          [["--max-delete-size", "-5"], "--max-delete-size: expected a byte count"],
          [["--max-delete-size", "5 parsecs"], "--max-delete-size: expected a byte count"],
          [["--max-delete-size", "5MB", "--incomplete-uploads"], "--max-delete-size cannot be combined"]
        ]
        for (const [args, message] of cases) {
          const r = yield* purge(server.url, ["--prefix", "p/", ...args])
          assert.strictEqual(r.code, 2, `${args.join(" ")}: ${r.stdout}`)
          assert.include(r.stderr + r.stdout, message, args.join(" "))
        }
        assert.strictEqual((yield* left(server.fake.store)).length, 2)
      }),
    30_000
  )

  it.scopedLive("--incomplete-uploads windows on the initiation", () =>
    Effect.gen(function*() {
      const server = yield* CosFakeServer.start({})
      for (const d of [1, 10, 40]) {
        yield* Store.initiateUpload(server.fake.store, { bucket, key: `u/${d}d`, ageMs: d * DAY })
      }
      const r = yield* purge(server.url, [
        "--prefix",
        "u/",
        "--incomplete-uploads",
        "--older-than",
        "2d",
        "--newer-than",
        "30d"
      ])
      assert.strictEqual(r.code, 0, r.stderr)
      const open = (yield* Store.uploads(server.fake.store, bucket, "u/")).map((u) => u.key).sort()
      assert.deepStrictEqual(open, ["u/1d", "u/40d"])
    }), 30_000)
})

describe("rules: newerThan / maxDeleteSize", () => {
  it.scopedLive(
    "once runs a windowed, byte-capped rule: young, too old and over the cap survive",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        // inside the window, in key order: p/a 300, p/b 300, p/c 300 (a 700-byte cap leaves c); young and old stay
        yield* seed(server.fake.store, [["a", 10, 300], ["b", 10, 300], ["c", 10, 300], ["young", 2, 1], [
          "old",
          60,
          1
        ]])
        const { path: config } = yield* writeLocalConfig(
          "window",
          server.url,
          `  - name: window
    bucket: ${bucket}
    prefix: p/
    olderThan: 7 days
    newerThan: 30d
    maxDeleteSize: 700
    schedule: "0 3 * * *"
`
        )
        const r = yield* cosRetention(["once", "--config", config, "--json", "--log-format", "json"])
        // A rule's cap is its safety brake: the run succeeded, `once` exits 3 as `purge` does, and the summary says
        // which cap and what is left.
        assert.strictEqual(r.code, 3, r.stderr)
        assert.include(r.stderr, `rule "window" stopped by the rule's cap (maxDeleteSize: 700 bytes)`)
        const [row] = JSON.parse(r.stdout)
        assert.strictEqual(row.summary.stoppedBy, "maxDeleteSize")
        assert.strictEqual(row.summary.bytes, 600)
        assert.deepStrictEqual(row.summary.left, { keys: 1, bytes: 300 })
        assert.deepStrictEqual(yield* left(server.fake.store), ["p/c", "p/old", "p/young"])
      }),
    30_000
  )
})
