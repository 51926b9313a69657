// Fault injection, quotas, stats and Clock-driven ages, in process under TestClock.
import { Signer } from "@effect-cos/core"
import { CosFake, Faults, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { deleteBody, inProcess, socket, tag, tags } from "./utils/transport.js"

const list = { method: "GET" } as const
const batch = (keys: ReadonlyArray<string>) => ({
  method: "POST",
  query: [["delete", ""]] as const,
  body: deleteBody(keys.map((key) => ({ key })))
})

describe("faults", () => {
  it.effect("failRequest(n) fails exactly the n-th request", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ faults: { script: [Faults.failRequest(2, "InternalError")] } })
      assert.strictEqual((yield* t.send(list)).status, 200)
      const second = yield* t.send(list)
      assert.strictEqual(second.status, 500)
      assert.strictEqual(tag(second.body, "Code"), "InternalError")
      assert.ok(second.headers["x-cos-trace-id"])
      assert.strictEqual((yield* t.send(list)).status, 200)
    }))

  it.effect("failNext(op, k) fails the next k requests of that operation only", () =>
    Effect.gen(function*() {
      const t = yield* inProcess()
      yield* t.fake.script(Faults.failNext("DeleteObjects", 2, "SlowDown"))
      assert.strictEqual((yield* t.send(list)).status, 200)
      const a = yield* t.send(batch(["a"]))
      const b = yield* t.send(batch(["a"]))
      assert.deepStrictEqual([a.status, tag(a.body, "Code"), b.status], [503, "SlowDown", 503])
      assert.strictEqual((yield* t.send(batch(["a"]))).status, 200)
    }))

  it.effect("Reset fails the in-process request with a transport error; Timeout never answers", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({
        faults: { script: [Faults.failRequest(1, "Reset"), Faults.failRequest(2, "Timeout")] }
      })
      const reset = yield* Effect.either(t.send(list))
      assert.ok(Either.isLeft(reset))
      assert.strictEqual((reset.left as { reason?: string }).reason, "Transport")
      const f = yield* Effect.fork(t.send(list))
      yield* TestClock.adjust("1 hour")
      assert.ok(Option.isNone(yield* Fiber.poll(f)))
      yield* Fiber.interrupt(f)
      const s = yield* t.fake.stats
      assert.deepStrictEqual([s.byStatus["reset"], s.byStatus["timeout"]], [1, 1])
    }))

  it.live("Reset destroys the socket on the server", () =>
    Effect.scoped(Effect.gen(function*() {
      const t = yield* socket({ faults: { script: [Faults.failRequest(1, "Reset")] } })
      const r = yield* Effect.either(t.send(list))
      assert.ok(Either.isLeft(r))
      assert.strictEqual((yield* t.send(list)).status, 200)
    })))

  it.effect("latency waits on the Clock", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ faults: { operations: { ListObjects: { latencyMs: 100 } } } })
      const f = yield* Effect.fork(t.send(list))
      yield* TestClock.adjust(99)
      assert.ok(Option.isNone(yield* Fiber.poll(f)))
      yield* TestClock.adjust(1)
      assert.strictEqual((yield* Fiber.join(f)).status, 200)
      const s = yield* t.fake.stats
      assert.strictEqual(s.log[0]!.durationMs, 100)
    }))

  it.effect("error rates inject roughly that share of failures, reproducibly", () =>
    Effect.gen(function*() {
      const run = Effect.gen(function*() {
        const t = yield* inProcess({ faults: { all: { slowDownRate: 0.2, internalErrorRate: 0.2 }, seed: 7 } })
        const statuses: Array<number> = []
        for (let i = 0; i < 300; i++) statuses.push((yield* t.send(list)).status)
        return statuses
      })
      const a = yield* run
      const slow = a.filter((s) => s === 503).length
      const internal = a.filter((s) => s === 500).length
      assert.ok(slow > 30 && slow < 90, `503s: ${slow}`)
      assert.ok(internal > 30 && internal < 90, `500s: ${internal}`)
      assert.deepStrictEqual(yield* run, a)
    }))

  it.effect("per-key InternalError inside a 200 batch-delete reply leaves those keys in place", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ faults: { batchKeyErrorRate: 0.5 } })
      yield* Store.seed(t.fake.store, { bucket: CosFake.testBucket, count: 100, prefix: "k" })
      const keys = yield* Store.keys(t.fake.store, CosFake.testBucket)
      const r = yield* t.send(batch(keys))
      assert.strictEqual(r.status, 200)
      const errors = (r.body.match(/<Error><Key>[^<]*<\/Key><Code>InternalError<\/Code>/g) ?? []).length
      assert.ok(errors > 20 && errors < 80, `errors: ${errors}`)
      assert.strictEqual((yield* Store.keys(t.fake.store, CosFake.testBucket)).length, errors)
      assert.strictEqual((yield* t.fake.stats).batchKeyErrors, errors)
    }))
})

describe("quotas", () => {
  it.effect("list requests per second per bucket: over the rate gets 503 SlowDown until the clock moves", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ faults: { quotas: { listPerSecond: 5 } } })
      for (let i = 0; i < 5; i++) assert.strictEqual((yield* t.send(list)).status, 200)
      const over = yield* t.send(list)
      assert.strictEqual(over.status, 503)
      assert.strictEqual(tag(over.body, "Code"), "SlowDown")
      assert.strictEqual((yield* t.send({ method: "HEAD", key: "x" })).status, 404) // other operations unaffected
      yield* TestClock.adjust(200)
      assert.strictEqual((yield* t.send(list)).status, 200)
      assert.strictEqual((yield* t.send(list)).status, 503)
    }))

  it.effect("batch deletes per second, and a write budget where every key of a batch counts", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ faults: { quotas: { batchDeletePerSecond: 2, writeKeysPerSecond: 1500 } } })
      const thousand = Array.from({ length: 1000 }, (_, i) => `k${i}`)
      assert.strictEqual((yield* t.send(batch(thousand))).status, 200) // 1500 → 500 write tokens
      const second = yield* t.send(batch(thousand))
      assert.strictEqual(second.status, 503) // write budget, not the 2/s batch quota
      assert.strictEqual((yield* t.send(batch(["one"]))).status, 200) // 1 key fits, 2nd batch of the second
      assert.strictEqual((yield* t.send(batch(["two"]))).status, 503) // 3rd batch in the same second
      yield* TestClock.adjust(1000)
      assert.strictEqual((yield* t.send(batch(thousand))).status, 200)
      const s = yield* t.fake.stats
      assert.strictEqual(s.byOperationStatus["DeleteObjects 503"], 2)
      assert.strictEqual(s.byOperationStatus["DeleteObjects 200"], 3)
    }))
})

describe("read quota", () => {
  it.effect("GET/HEAD Object requests per second", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ faults: { quotas: { readPerSecond: 2 } } })
      const head = { method: "HEAD", key: "x" } as const
      assert.deepStrictEqual(
        [(yield* t.send(head)).status, (yield* t.send(head)).status, (yield* t.send(head)).status],
        [404, 404, 503]
      )
      assert.strictEqual((yield* t.send(list)).status, 200)
    }))
})

describe("stats and time", () => {
  it.effect("counters per operation and status, and a bounded request log", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ logCapacity: 3 })
      yield* t.send({ method: "PUT", key: "a", body: "1" })
      yield* t.send({ method: "GET", key: "a" })
      yield* t.send({ method: "GET", key: "missing" })
      yield* t.send(batch(["a", "b"]))
      const s = yield* t.fake.stats
      assert.strictEqual(s.requests, 4)
      assert.deepStrictEqual(s.byOperation, { PutObject: 1, GetObject: 2, DeleteObjects: 1 })
      assert.deepStrictEqual(s.byStatus, { "200": 3, "404": 1 })
      assert.strictEqual(s.deletedKeys, 2)
      assert.deepStrictEqual(s.log.map((e) => [e.operation, e.key ?? e.keys, e.status, e.code]), [
        ["GetObject", "a", 200, undefined],
        ["GetObject", "missing", 404, "NoSuchKey"],
        ["DeleteObjects", 2, 200, undefined]
      ])
      yield* t.fake.resetStats
      assert.strictEqual((yield* t.fake.stats).requests, 0)
    }))

  it.effect("GET /_fake/stats serves the counters only when enabled", () =>
    Effect.gen(function*() {
      const on = yield* inProcess({ statsEndpoint: true })
      yield* on.send(list)
      const r = yield* on.send({ method: "GET", key: "_fake/stats", credentials: "none" })
      assert.strictEqual(JSON.parse(r.body).requests, 1)
      const off = yield* inProcess()
      const r2 = yield* off.send({ method: "GET", key: "_fake/stats", credentials: "none" })
      assert.strictEqual(r2.status, 403)
    }))

  it.effect("objects age with the TestClock: LastModified is the Clock time of the write", () =>
    Effect.gen(function*() {
      const t = yield* inProcess()
      yield* Store.seed(t.fake.store, { bucket: CosFake.testBucket, count: 3, prefix: "old/", ageMs: (i) => i * 1000 })
      yield* TestClock.adjust("1 day")
      yield* t.send({ method: "PUT", key: "new", body: "x" })
      const r = yield* t.send(list)
      assert.deepStrictEqual(tags(r.body, "LastModified"), [
        "1970-01-02T00:00:00.000Z",
        "1970-01-01T00:00:00.000Z",
        "1969-12-31T23:59:59.000Z",
        "1969-12-31T23:59:58.000Z"
      ])
      const h = yield* Store.head(t.fake.store, CosFake.testBucket, "new")
      assert.strictEqual(h?.lastModified.getTime(), 86_400_000)
    }))

  it.effect("auth can be turned off for quick experiments", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ auth: false })
      assert.strictEqual((yield* t.send({ method: "GET", credentials: "none" })).status, 200)
    }))

  it.effect("seeding versions and delete markers in a versioned bucket", () =>
    Effect.gen(function*() {
      const t = yield* inProcess({ buckets: [{ name: CosFake.testBucket, versioning: "Enabled" }] })
      yield* Store.seed(t.fake.store, {
        bucket: CosFake.testBucket,
        count: 10,
        prefix: "v/",
        versions: 2,
        deleteMarker: (i) => i < 3
      })
      assert.strictEqual((yield* Store.keys(t.fake.store, CosFake.testBucket)).length, 7)
      const vs = yield* Store.versions(t.fake.store, CosFake.testBucket)
      assert.strictEqual(vs.length, 23)
      assert.deepStrictEqual(vs.slice(0, 3).map((v) => [v.isDeleteMarker, v.isLatest]), [[true, true], [false, false], [
        false,
        false
      ]])
      const page = yield* t.send({ method: "GET", query: [["versions", ""], ["max-keys", "3"]] })
      assert.strictEqual((page.body.match(/<DeleteMarker>/g) ?? []).length, 1)
    }))
})

describe("request checks at the handler", () => {
  const host = `${CosFake.testBucket}.cos.${CosFake.testRegion}.myqcloud.com`
  const empty = new Uint8Array(0)

  it.effect("a PUT or batch delete without Content-Length gets 411 MissingContentLength", () =>
    Effect.gen(function*() {
      const fake = yield* CosFake.make({ auth: false })
      const put = yield* fake.handle({ method: "PUT", url: "/k", headers: { host }, body: new Uint8Array([1]) })
      assert.strictEqual(put._tag === "Response" && put.status, 411)
      const del = yield* fake.handle({
        method: "POST",
        url: "/?delete",
        headers: { host, "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==" },
        body: empty
      })
      assert.strictEqual(del._tag === "Response" && del.status, 411)
    }))

  it.effect("an Upload Part checks its body as a PUT does: 411 without Content-Length, BadDigest, truncation", () =>
    Effect.gen(function*() {
      const fake = yield* CosFake.make({ auth: false })
      const init = yield* fake.handle({ method: "POST", url: "/k?uploads", headers: { host }, body: empty })
      const body = init._tag === "Response" ? Buffer.from(init.body).toString("utf8") : ""
      const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(body)?.[1]
      assert.isDefined(uploadId, body)
      const part = (headers: Record<string, string>) =>
        fake.handle({
          method: "PUT",
          url: `/k?partNumber=1&uploadId=${uploadId}`,
          headers: { host, ...headers },
          body: new Uint8Array([1, 2, 3])
        })
      const missing = yield* part({})
      assert.strictEqual(missing._tag === "Response" && missing.status, 411)
      const bad = yield* part({ "content-length": "3", "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==" })
      assert.strictEqual(bad._tag === "Response" && bad.status, 400)
      assert.include(bad._tag === "Response" ? Buffer.from(bad.body).toString("utf8") : "", "<Code>BadDigest</Code>")
      const short = yield* part({ "content-length": "2" })
      assert.strictEqual(short._tag === "Response" && short.status, 200)
      const parts = yield* fake.handle({
        method: "GET",
        url: `/k?uploadId=${uploadId}`,
        headers: { host },
        body: empty
      })
      assert.include(parts._tag === "Response" ? Buffer.from(parts.body).toString("utf8") : "", "<Size>2</Size>")
    }))

  it.effect("signature edge cases: a listed header missing, a listed parameter changed, a future key time", () =>
    Effect.gen(function*() {
      const fake = yield* CosFake.make()
      const sign = (query: ReadonlyArray<readonly [string, string]>, headers: Record<string, string>, start = -1) =>
        Signer.authorization({
          method: "GET",
          path: "/",
          query,
          headers,
          keyTime: { start, end: start + 900 },
          secretId: CosFake.testCredentials.secretId,
          secretKey: CosFake.testCredentials.secretKey
        })
      const code = (
        r: CosFake.FakeResponse
      ) => (r._tag === "Response" ? `${r.status} ${tag(String(r.body), "Code")}` : r._tag)
      const auth = sign([["prefix", "a"]], { host, "x-cos-meta-a": "1" })
      const ok = yield* fake.handle({
        method: "GET",
        url: "/?prefix=a",
        headers: { host, "x-cos-meta-a": "1", authorization: auth },
        body: empty
      })
      assert.strictEqual(code(ok), "200 undefined")
      const missing = yield* fake.handle({
        method: "GET",
        url: "/?prefix=a",
        headers: { host, authorization: auth },
        body: empty
      })
      assert.strictEqual(code(missing), "403 SignatureDoesNotMatch")
      const changed = yield* fake.handle({
        method: "GET",
        url: "/?prefix=b",
        headers: { host, "x-cos-meta-a": "1", authorization: auth },
        body: empty
      })
      assert.strictEqual(code(changed), "403 SignatureDoesNotMatch")
      const future = yield* fake.handle({
        method: "GET",
        url: "/",
        headers: { host, authorization: sign([], { host }, 3600) },
        body: empty
      })
      assert.strictEqual(code(future), "403 AccessDenied")
      // headers outside the list (added after signing, like the Node SDK's token) do not matter
      const extra = yield* fake.handle({
        method: "GET",
        url: "/?prefix=a",
        headers: { host, "x-cos-meta-a": "1", "x-other": "z", authorization: auth },
        body: empty
      })
      assert.strictEqual(code(extra), "200 undefined")
    }))
})
