/**
 * What `cos-retention purge` says about how a run ended: the stop reason, the throttled count and the exit status.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createRequire } from "node:module"
import { cosRetention } from "./support/inProcess.js"

const bucket = CosFake.testBucket

const purge = (endpoint: string, args: ReadonlyArray<string>, provider?: ConfigProvider.ConfigProvider) =>
  cosRetention(
    ["purge", "--bucket", bucket, "--region", CosFake.testRegion, "--endpoint", endpoint, "--yes", ...args],
    provider
  )

// The resolver's own module object (an ESM namespace cannot be patched): what `net.connect` looks hosts up with.
const NodeDns = createRequire(import.meta.url)("node:dns") as { lookup: unknown }

const summaryOf = (stdout: string) => JSON.parse(stdout.trim().split("\n").pop()!)

describe("purge: how the run ended", () => {
  it.scopedLive(
    "throttled counts every SlowDown the server sent, the ones the client retried included",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({ faults: { all: { slowDownRate: 0.4 }, seed: 9 } })
        yield* Store.seed(server.fake.store, { bucket, count: 2500, prefix: "slow/" })
        const r = yield* purge(server.url, ["--prefix", "slow/", "--json", "--list-concurrency", "1"])
        assert.strictEqual(r.code, 0, r.stderr)
        const s = summaryOf(r.stdout)
        const stats = yield* server.fake.stats
        const sent = stats.log.filter((e) => e.code === "SlowDown").length
        assert.isAbove(sent, 0, "the fake sent SlowDown answers")
        assert.strictEqual(stats.byStatus["503"], sent, "every 503 was a SlowDown")
        assert.strictEqual(s.deleted, 2500)
        assert.strictEqual(s.throttled, sent)
      }),
    30_000
  )

  it.scopedLive(
    "a 403 (wrong secret) is `failed: <cause>`, not `stopped early: interrupted`",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        yield* Store.seed(server.fake.store, { bucket, count: 10, prefix: "denied/" })
        const wrong = ConfigProvider.fromMap(
          new Map([["COS_SECRET_ID", CosFake.testCredentials.secretId], ["COS_SECRET_KEY", "not-the-right-key"]])
        )
        const human = yield* purge(server.url, ["--prefix", "denied/"], wrong)
        assert.notInclude(human.stdout, "stopped early: interrupted")
        assert.match(human.stdout, /^failed: COS refused the request \(403 SignatureDoesNotMatch\)/m)
        assert.include(human.stdout, "COS_SECRET_KEY")
        const json = yield* purge(server.url, ["--prefix", "denied/", "--json"], wrong)
        assert.strictEqual(summaryOf(json.stdout).stoppedBy, "failed")
        assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "denied/")).length, 10)
        for (const r of [human, json]) {
          assert.strictEqual(r.code, 2)
          assert.notInclude(r.stdout + r.stderr, "not-the-right-key")
          assert.notInclude(r.stdout + r.stderr, Redacted.value(CosFake.testCredentials.secretKey))
        }
      }),
    30_000
  )

  it.live("a refused connection is `failed: cannot connect ...`", () =>
    Effect.gen(function*() {
      const r = yield* purge("http://127.0.0.1:9", ["--prefix", "x/"]) // nothing listens on the discard port
      assert.strictEqual(r.code, 1)
      assert.notInclude(r.stdout, "stopped early: interrupted")
      assert.match(r.stdout, /^failed: cannot connect to 127\.0\.0\.1:9 \(connection refused\)/m)
    }), 30_000)

  it.live(
    "a DNS failure is `failed: cannot resolve ...` (the resolver is stubbed: no query leaves the process)",
    () =>
      Effect.gen(function*() {
        const lookups: Array<string> = []
        const original = NodeDns.lookup
        NodeDns.lookup = (host: string, ...rest: Array<any>) => {
          lookups.push(host)
          const callback = rest[rest.length - 1]
          const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), {
            code: "ENOTFOUND",
            syscall: "getaddrinfo",
            hostname: host
          })
          process.nextTick(() => callback(error))
        }
        const r = yield* purge("http://cos.example.invalid", ["--prefix", "x/"]).pipe(
          Effect.ensuring(Effect.sync(() => (NodeDns.lookup = original)))
        )
        assert.isAbove(lookups.length, 0, "the stub answered the lookups")
        assert.strictEqual(r.code, 1)
        assert.notInclude(r.stdout, "stopped early: interrupted")
        assert.match(r.stdout, /^failed: cannot resolve cos\.example\.invalid \(DNS\)/m)
      }),
    30_000
  )

  it.scopedLive(
    "an --exclude or --include the engine cannot compile (empty, [z-a], a{) is refused with exit 2, naming the flag, nothing deleted",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        yield* Store.seed(server.fake.store, { bucket, count: 5, prefix: "bad/" })
        for (const glob of ["", "bad/[z-a]", "bad/a{"]) {
          const r = yield* purge(server.url, ["--prefix", "bad/", "--exclude", glob])
          assert.strictEqual(r.code, 2, `${JSON.stringify(glob)}: ${r.stdout} ${r.stderr}`)
          assert.include(r.stderr, `--exclude ${JSON.stringify(glob)} is not a valid glob`)
        }
        // the same for --include, named as the flag it came from
        const inc = yield* purge(server.url, ["--prefix", "bad/", "--include", "bad/[z-a]"])
        assert.strictEqual(inc.code, 2, inc.stderr)
        assert.include(inc.stderr, `--include "bad/[z-a]" is not a valid glob: it does not compile`)
        assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "bad/")).length, 5)
      }),
    30_000
  )

  it.scopedLive("a run stopped by --max-deletes exits 3 and says so", () =>
    Effect.gen(function*() {
      const server = yield* CosFakeServer.start({})
      yield* Store.seed(server.fake.store, { bucket, count: 50, prefix: "cap/" })
      const r = yield* purge(server.url, ["--prefix", "cap/", "--max-deletes", "20", "--concurrency", "1"])
      assert.strictEqual(r.code, 3, r.stderr)
      assert.include(r.stdout, "stopped early: maxDeletes")
      assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "cap/")).length, 30)
      const done = yield* purge(server.url, ["--prefix", "cap/", "--max-deletes", "100"])
      assert.strictEqual(done.code, 0, done.stderr)
    }), 30_000)
})
