/**
 * Servers that do not answer like COS, through CosClient and through Deletion.purge: proxy error pages, truncated
 * XML, wrong content types, batch replies that leave keys out, huge pages, slow or absent answers, wrong secrets,
 * clock skew and expiring temporary credentials. The rule throughout: a key is counted deleted only if COS said so,
 * and a run that cannot trust its answers stops without deleting more.
 */
import { CosClient, CosHttpClient, Credentials, Deletion } from "@effect-cos/core"
import { CosFake, Store } from "@effect-cos/testkit"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { settle } from "./support/engineProperties.js"

// ---------------------------------------------------------------------------------------------------------------
// an in-process fake behind a hostile middlebox
// ---------------------------------------------------------------------------------------------------------------

type Op = "list" | "versions" | "delete" | "other"

interface Answer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** What the middlebox does with the fake's answer: replace it, or `undefined` to pass it on. */
type Rewrite = (op: Op, answer: Answer, n: number) => Answer | undefined

const opOf = (method: string, url: URL): Op =>
  method === "POST" && url.search.includes("delete")
    ? "delete"
    : method === "GET" && url.pathname === "/"
    ? (url.search.includes("versions") ? "versions" : "list")
    : "other"

/** The fake answers every request (so deletes really happen); the middlebox then rewrites what the client sees. */
const middlebox = (fake: CosFake.CosFake, rewrite: Rewrite): HttpClient.HttpClient => {
  const inner = CosFake.httpClient(fake)
  const counts = new Map<Op, number>()
  return HttpClient.make((request, url) =>
    Effect.gen(function*() {
      const response = yield* inner.execute(request)
      const op = opOf(request.method, url)
      const n = counts.get(op) ?? 0
      counts.set(op, n + 1)
      const body = request.method === "HEAD" || response.status === 204 ? "" : yield* Effect.orDie(response.text)
      const answer: Answer = { status: response.status, headers: { ...response.headers }, body }
      const out = rewrite(op, answer, n) ?? answer
      const { "content-length": _, ...headers } = out.headers
      return HttpClientResponse.fromWeb(
        request,
        new Response(out.status === 204 || request.method === "HEAD" ? null : out.body, {
          status: out.status,
          headers
        })
      )
    })
  )
}

const html502 = (): Answer => ({
  status: 502,
  headers: { "content-type": "text/html" },
  body: "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>" +
    "<hr><center>nginx</center></body></html>"
})

const bucket = CosFake.testBucket

interface Setup {
  readonly fake: CosFake.CosFake
  readonly client: CosClient.CosClient
}

/** A fake with `n` keys under `p/` (and 3 under `keep/`), a client through the middlebox, TestClock at 2026. */
const setup = (n: number, rewrite: Rewrite, options: Partial<CosClient.Options> = {}) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(Date.UTC(2026, 0, 1))
    const fake = yield* CosFake.make()
    yield* Store.seed(fake.store, { bucket, count: n, prefix: "p/", size: 10 })
    yield* Store.seed(fake.store, { bucket, count: 3, prefix: "keep/" })
    const client = yield* CosClient.make({
      ...CosFake.testClientOptions,
      retry: { attempts: 3, baseDelay: "10 millis" },
      timeout: "5 seconds",
      ...options
    }).pipe(Effect.provideService(HttpClient.HttpClient, middlebox(fake, rewrite)))
    return { fake, client } satisfies Setup
  })

/** Runs a purge of `p/` to its end; returns its exit, the summary it reported and the keys it reported deleted. */
const purge = (s: Setup, options: Partial<Deletion.PurgeOptions> = {}, step: Duration.DurationInput = "50 millis") =>
  Effect.gen(function*() {
    let summary: Deletion.Summary | undefined
    const reported: Array<string> = []
    const exit = yield* settle(
      Deletion.purge({
        prefix: "p/",
        batchSize: 100,
        concurrency: 2,
        ...options,
        onSummary: (x) => Effect.sync(() => (summary = x)),
        onDeleted: (d) => Effect.sync(() => reported.push(...d.map((x) => x.key)))
      }).pipe(Effect.provideService(CosClient.CosClient, s.client)),
      step
    )
    const left = yield* Store.keys(s.fake.store, bucket, "p/")
    const keep = yield* Store.keys(s.fake.store, bucket, "keep/")
    return { exit, summary: summary!, reported, left, keep }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const e = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (e === undefined) throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return e
}

// ---------------------------------------------------------------------------------------------------------------

describe("hostile answers through Deletion.purge", () => {
  it.effect("an HTML 502 page on every listing: the run fails naming it, after a few retries, deleting nothing", () =>
    Effect.gen(function*() {
      let lists = 0
      const s = yield* setup(250, (op) => {
        if (op !== "list") return undefined
        lists++
        return html502()
      })
      const r = yield* purge(s)
      const e = failureOf(r.exit)
      assert.strictEqual(e._tag, "CosDecodeError")
      assert.include(e.message, "HTML")
      assert.include(e.message, "502")
      assert.isAtLeast(lists, 2, "a gateway error is worth another attempt")
      assert.isAtMost(lists, 12, "but not forever")
      assert.strictEqual(r.left.length, 250)
      assert.strictEqual(r.summary.deleted, 0)
    }))

  it.effect("a transient HTML 502 is retried and the run completes", () =>
    Effect.gen(function*() {
      const s = yield* setup(250, (op, _, n) => (op === "list" && n < 2 ? html502() : undefined))
      const r = yield* purge(s)
      assert.isTrue(Exit.isSuccess(r.exit))
      assert.strictEqual(r.summary.deleted, 250)
      assert.deepStrictEqual(r.left, [])
      assert.strictEqual(r.keep.length, 3)
    }))

  it.effect("an HTML 502 on every batch delete: no key is counted deleted, every key failed", () =>
    Effect.gen(function*() {
      // The proxy answers instead of COS (here COS did act: the worst case for a client that trusts 502 pages).
      const s = yield* setup(250, (op) => (op === "delete" ? html502() : undefined))
      const r = yield* purge(s)
      assert.strictEqual(r.summary.deleted, 0)
      assert.strictEqual(r.summary.failed + r.summary.skipped, 250)
      assert.isAbove(r.summary.failed, 0)
      assert.deepStrictEqual(r.reported, [])
      assert.strictEqual(r.summary.matched, r.summary.deleted + r.summary.failed + r.summary.skipped)
    }))

  it.effect("a truncated listing fails the run before any delete", () =>
    Effect.gen(function*() {
      const s = yield* setup(
        250,
        (op, a) => (op === "list" ? { ...a, body: a.body.slice(0, Math.floor(a.body.length / 2)) } : undefined)
      )
      const r = yield* purge(s)
      const e = failureOf(r.exit)
      assert.strictEqual(e._tag, "CosDecodeError")
      assert.strictEqual(r.left.length, 250)
      assert.strictEqual(r.summary.deleted, 0)
      const stats = yield* s.fake.stats
      assert.strictEqual(stats.byOperation["DeleteObjects"] ?? 0, 0)
    }))

  it.effect("a truncated versions page without NextKeyMarker: the listing goes on from its last entry", () =>
    Effect.gen(function*() {
      // 2500 keys: three pages of versions. Before the pagination rule, a truncated page without NextKeyMarker
      // was taken for the last one, and the run ended "successfully" after the first 1000 keys.
      let stripped = 0
      const s = yield* setup(2500, (op, a) => {
        if (op !== "versions" || !a.body.includes("<NextKeyMarker>")) return undefined
        stripped++
        return {
          ...a,
          body: a.body.replace(
            /<NextKeyMarker>[^<]*<\/NextKeyMarker>|<NextVersionIdMarker>[^<]*<\/NextVersionIdMarker>|<NextVersionIdMarker\/>/g,
            ""
          )
        }
      })
      const r = yield* purge(s, { versions: "all", batchSize: 1000 })
      assert.isTrue(Exit.isSuccess(r.exit), String(r.exit))
      assert.isAtLeast(stripped, 2)
      assert.strictEqual(r.summary.listed, 2500)
      assert.strictEqual(r.summary.deleted, 2500)
      assert.deepStrictEqual(r.left, [])
      assert.strictEqual(r.keep.length, 3)
    }))

  it.effect("a versions listing whose marker does not advance fails the run instead of looping", () =>
    Effect.gen(function*() {
      let first: Answer | undefined
      let lists = 0
      const s = yield* setup(2500, (op, a) => {
        if (op !== "versions") return undefined
        lists++
        first ??= a
        return first // every page is the first one again: the same NextKeyMarker forever
      })
      const r = yield* purge(s, { versions: "all", batchSize: 1000 })
      const e = failureOf(r.exit)
      assert.strictEqual(e._tag, "CosDecodeError")
      assert.include(e.message, "do not advance")
      assert.strictEqual(lists, 2, "the second page shows the marker stuck: no third request")
      assert.isAtMost(r.summary.deleted, 1000)
      assert.strictEqual(r.summary.matched, r.summary.deleted + r.summary.failed + r.summary.skipped)
      assert.strictEqual(r.keep.length, 3)
    }))

  it.effect("an objects listing whose marker does not advance fails the run instead of ending early", () =>
    Effect.gen(function*() {
      let first: Answer | undefined
      const s = yield* setup(2500, (op, a) => {
        if (op !== "list") return undefined
        first ??= a
        return first
      })
      const r = yield* purge(s, { listConcurrency: 1 })
      const e = failureOf(r.exit)
      assert.strictEqual(e._tag, "CosDecodeError")
      assert.include(e.message, "does not advance")
      assert.isAtMost(r.summary.deleted, 1000)
      assert.strictEqual(r.keep.length, 3)
    }))

  it.effect("a truncated batch-delete reply: the keys COS did delete are counted failed, never deleted", () =>
    Effect.gen(function*() {
      const s = yield* setup(
        250,
        (op, a) => (op === "delete" ? { ...a, body: a.body.slice(0, Math.floor(a.body.length * 0.6)) } : undefined)
      )
      const r = yield* purge(s)
      assert.strictEqual(r.summary.deleted, 0, "nothing was confirmed")
      assert.strictEqual(r.summary.failed, 250)
      assert.deepStrictEqual(r.reported, [])
      assert.isTrue(r.summary.failures.every((f) => f.code === "CosDecodeError"))
      // What really happened: the fake deleted them. A second run finds nothing left to do.
      assert.deepStrictEqual(r.left, [])
      const again = yield* purge(s)
      assert.strictEqual(again.summary.listed, 0)
    }))

  it.effect("a 200 batch reply that leaves keys out: those count as failed (not confirmed), the rest deleted", () =>
    Effect.gen(function*() {
      let dropped = 0
      const s = yield* setup(250, (op, a) => {
        if (op !== "delete") return undefined
        // Drop every third <Deleted> entry, and add one for a key that was never sent.
        let i = 0
        const body = a.body.replace(/<Deleted>.*?<\/Deleted>/g, (m) => (i++ % 3 === 0 ? (dropped++, "") : m))
          .replace("</DeleteResult>", "<Deleted><Key>keep/0</Key></Deleted></DeleteResult>")
        return { ...a, body }
      })
      const r = yield* purge(s, { quiet: false })
      assert.isTrue(Exit.isSuccess(r.exit))
      assert.isAbove(dropped, 0)
      assert.strictEqual(r.summary.failed, dropped)
      assert.strictEqual(r.summary.deleted, 250 - dropped)
      assert.strictEqual(r.reported.length, 250 - dropped)
      assert.isTrue(r.summary.failures.every((f) => f.code === "NotConfirmed"))
      assert.isFalse(r.reported.includes("keep/0"), "a key never sent is never counted")
      assert.strictEqual(r.keep.length, 3)
    }))

  it.effect("batch deletes that never get an answer: the run ends, every key failed as timed out, none deleted", () =>
    Effect.gen(function*() {
      const s = yield* setup(250, () => undefined, { timeout: "1 second" })
      yield* s.fake.setFaults({ operations: { DeleteObjects: { timeoutRate: 1 } } })
      const started = yield* Clock.currentTimeMillis
      const r = yield* purge(s, {}, "500 millis")
      const took = (yield* Clock.currentTimeMillis) - started
      assert.isTrue(Exit.isSuccess(r.exit), "per-key failures do not fail the run")
      assert.strictEqual(r.summary.deleted, 0)
      assert.strictEqual(r.summary.failed, 250)
      assert.isTrue(r.summary.failures.every((f) => f.code === "CosTimeoutError"))
      assert.strictEqual(r.left.length, 250)
      // 3 batches in flight at most 2 at a time, each 3 engine rounds x 3 client attempts of 1 s, plus backoff.
      assert.isBelow(took, 60_000, `took ${took} ms of (test) time`)
    }))

  it.effect("a JSON answer is refused; valid COS XML under a wrong content type is read", () =>
    Effect.gen(function*() {
      const json = yield* setup(50, (op) =>
        op === "list"
          ? { status: 200, headers: { "content-type": "application/json" }, body: "{\"Contents\":[]}" }
          : undefined)
      const r1 = yield* purge(json)
      const e = failureOf(r1.exit)
      assert.strictEqual(e._tag, "CosDecodeError")
      assert.strictEqual(r1.left.length, 50)

      const plain = yield* setup(
        50,
        (op, a) => (op === "list" ? { ...a, headers: { ...a.headers, "content-type": "text/plain" } } : undefined)
      )
      const r2 = yield* purge(plain)
      assert.isTrue(Exit.isSuccess(r2.exit))
      assert.strictEqual(r2.summary.deleted, 50)
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// authentication
// ---------------------------------------------------------------------------------------------------------------

const wrongSecret = "wrongSecretKey-H5-not-the-real-one-0001"

describe("authentication against the fake", () => {
  it.effect("a wrong secret: SignatureDoesNotMatch, not retried, named in the error, the secret not shown", () =>
    Effect.gen(function*() {
      const s = yield* setup(20, () => undefined, {
        credentials: Credentials.fromStatic({
          secretId: CosFake.testCredentials.secretId,
          secretKey: Redacted.make(wrongSecret)
        })
      })
      const head = yield* Effect.exit(s.client.headBucket())
      const e1 = failureOf(head)
      assert.strictEqual(e1._tag, "CosServiceError")
      const list = yield* Effect.exit(s.client.listObjects({ prefix: "p/" }))
      const e = failureOf(list)
      assert.strictEqual(e._tag === "CosServiceError" ? e.code : e._tag, "SignatureDoesNotMatch")
      assert.include(e.message, "SignatureDoesNotMatch")
      assert.notInclude(e.message, wrongSecret)
      assert.notInclude(JSON.stringify(e), wrongSecret)
      assert.notInclude(String(list), wrongSecret)
      const stats = yield* s.fake.stats
      assert.strictEqual(stats.byOperation["ListObjects"], 1, "not retried")

      // The engine stops at once too: one listing request, no delete.
      const r = yield* purge(s)
      assert.strictEqual(failureOf(r.exit)._tag, "CosServiceError")
      assert.strictEqual(r.left.length, 20)
      const after = yield* s.fake.stats
      assert.strictEqual(after.byOperation["ListObjects"], 2)
      assert.strictEqual(after.byOperation["DeleteObjects"] ?? 0, 0)
    }))

  it.effect("an unknown SecretId: InvalidAccessKeyId, not retried", () =>
    Effect.gen(function*() {
      const s = yield* setup(5, () => undefined, {
        credentials: Credentials.fromStatic({
          secretId: "AKIDunknownH5000000000000000000000000",
          secretKey: CosFake.testCredentials.secretKey
        })
      })
      const e = failureOf(yield* Effect.exit(s.client.listObjects({ prefix: "p/" })))
      assert.strictEqual(e._tag === "CosServiceError" ? e.code : e._tag, "InvalidAccessKeyId")
      assert.strictEqual((yield* s.fake.stats).byOperation["ListObjects"], 1)
    }))

  it.effect("a client clock 2 hours behind COS is corrected from the Date header and the run completes", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.UTC(2026, 0, 1))
      const fake = yield* CosFake.make()
      yield* Store.seed(fake.store, { bucket, count: 120, prefix: "p/" })
      const inner = CosFake.httpClient(fake)
      // COS's clock: the client's plus two hours.
      const cosClock = (client: Clock.Clock): Clock.Clock => {
        const shift = 2 * 3600_000
        return {
          [Clock.ClockTypeId]: Clock.ClockTypeId,
          unsafeCurrentTimeMillis: () => client.unsafeCurrentTimeMillis() + shift,
          currentTimeMillis: Effect.map(client.currentTimeMillis, (t) => t + shift),
          unsafeCurrentTimeNanos: () => client.unsafeCurrentTimeNanos() + BigInt(shift) * 1_000_000n,
          currentTimeNanos: Effect.map(client.currentTimeNanos, (t) => t + BigInt(shift) * 1_000_000n),
          sleep: (d) => client.sleep(d)
        }
      }
      const skewed = HttpClient.make((request) =>
        Effect.flatMap(Effect.clock, (c) => Effect.withClock(inner.execute(request), cosClock(c)))
      )
      const client = yield* CosClient.make({ ...CosFake.testClientOptions }).pipe(
        Effect.provideService(HttpClient.HttpClient, skewed)
      )
      const exit = yield* settle(
        Deletion.purge({ prefix: "p/" }).pipe(Effect.provideService(CosClient.CosClient, client))
      )
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      if (Exit.isSuccess(exit)) assert.strictEqual(exit.value.deleted, 120)
      assert.deepStrictEqual(yield* Store.keys(fake.store, bucket, "p/"), [])
      const stats = yield* fake.stats
      // One refused request taught the client the offset; everything after was accepted.
      assert.strictEqual(stats.byStatus["403"] ?? 0, 1)
    }))

  it.effect("expiring temporary credentials are fetched again before they expire; old ones are never sent late", () =>
    Effect.gen(function*() {
      const t0 = Date.UTC(2026, 0, 1)
      yield* TestClock.setTime(t0)
      const issued: Array<Credentials.Credentials> = []
      const fetch = Effect.map(Clock.currentTimeMillis, (now) => {
        const n = issued.length + 1
        const c: Credentials.Credentials = {
          secretId: `AKIDtemporaryH5${String(n).padStart(22, "0")}`,
          secretKey: Redacted.make(`tmpSecretH5-${n}-abcdefghijklmnop`),
          securityToken: Redacted.make(`tmpTokenH5-${n}-qrstuvwxyz`),
          expiresAt: new Date(now + 3600_000)
        }
        issued.push(c)
        return c
      })
      const provider = yield* Credentials.refreshing(fetch)
      // The fake knows three generations of temporary keys and refuses any of them after its expiry.
      const generations = [1, 2, 3].map((n) => ({
        secretId: `AKIDtemporaryH5${String(n).padStart(22, "0")}`,
        secretKey: Redacted.make(`tmpSecretH5-${n}-abcdefghijklmnop`),
        securityToken: Redacted.make(`tmpTokenH5-${n}-qrstuvwxyz`)
      }))
      const fake = yield* CosFake.make({ credentials: generations })
      yield* Store.seed(fake.store, { bucket, count: 10, prefix: "p/" })
      let lateUse = 0
      const inner = CosFake.httpClient(fake)
      const expiring = HttpClient.make((request) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const id = /q-ak=([^&]+)/.exec(request.headers["authorization"] ?? "")?.[1]
          const c = issued.find((x) => x.secretId === id)
          if (c?.expiresAt !== undefined && now >= c.expiresAt.getTime()) lateUse++
          return yield* inner.execute(request)
        })
      )
      const client = yield* CosClient.make({ ...CosFake.testClientOptions, credentials: provider }).pipe(
        Effect.provideService(HttpClient.HttpClient, expiring)
      )
      yield* client.listObjects({ prefix: "p/" })
      yield* TestClock.adjust("56 minutes") // within refreshBefore (5 min) of expiry: fetched again
      yield* client.listObjects({ prefix: "p/" })
      yield* TestClock.adjust("50 minutes")
      const page = yield* client.listObjects({ prefix: "p/" })
      yield* TestClock.adjust("2 hours")
      const exit = yield* settle(
        Deletion.purge({ prefix: "p/" }).pipe(Effect.provideService(CosClient.CosClient, client))
      )
      assert.strictEqual(page.contents.length, 10)
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(issued.length, 3, "t0, t0+56min (5 min before expiry), t0+226min")
      assert.strictEqual(lateUse, 0)
      assert.strictEqual((yield* fake.stats).byStatus["403"] ?? 0, 0)
    }))
})

// ---------------------------------------------------------------------------------------------------------------
// real sockets: slow, silent and huge answers
// ---------------------------------------------------------------------------------------------------------------

/** A loopback server whose handler the test supplies; closed (connections destroyed) with the scope. */
const server = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const s = Http.createServer(handler)
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed(s)))
    }),
    (s) =>
      Effect.async<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`))

// Both the platform's node:http client and our own (CosHttpClient, what the binary uses) face the same servers.
const clients = [
  { name: "NodeHttpClient.layer", layer: NodeHttpClient.layer },
  { name: "CosHttpClient.layer", layer: CosHttpClient.layer() }
] as const

const socketClient = (
  http: Layer.Layer<HttpClient.HttpClient>,
  endpoint: string,
  options: Partial<CosClient.Options> = {}
) =>
  CosClient.make({
    ...CosFake.testClientOptions,
    endpoint,
    timeout: "300 millis",
    retry: { attempts: 2, baseDelay: "10 millis" },
    ...options
  }).pipe(Effect.provide(http))

const listXml = (n: number, pad = "") => {
  let xml = "<?xml version='1.0' encoding='utf-8' ?><ListBucketResult><Name>" + bucket +
    "</Name><Prefix>p/</Prefix><Marker/><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
  for (let i = 0; i < n; i++) {
    xml += `<Contents><Key>p/${String(i).padStart(7, "0")}${pad}</Key>` +
      `<LastModified>2020-12-10T03:37:30.000Z</LastModified><ETag>&quot;f173c1199e3d3b53dd91223cae16fb42&quot;</ETag>` +
      `<Size>37</Size><Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>` +
      `<StorageClass>STANDARD</StorageClass></Contents>`
  }
  return xml + "</ListBucketResult>"
}

for (const { layer: http, name } of clients) {
  describe(`hostile servers on a socket (${name})`, () => {
    it.scopedLive("a server that never answers: every attempt times out, the error says so", () =>
      Effect.gen(function*() {
        let requests = 0
        const url = yield* server(() => {
          requests++ // ... and never respond
        })
        const client = yield* socketClient(http, url)
        const started = Date.now()
        const e = failureOf(yield* Effect.exit(client.listObjects({ prefix: "p/" })))
        const took = Date.now() - started
        assert.strictEqual(e._tag, "CosTimeoutError")
        assert.include(e.message, "300")
        assert.strictEqual(requests, 2, "each attempt was sent, then given up on")
        assert.isBelow(took, 3000)
      }))

    it.scopedLive("a body that trickles slower than the timeout: the attempt times out instead of waiting", () =>
      Effect.gen(function*() {
        const timers: Array<NodeJS.Timeout> = []
        yield* Effect.addFinalizer(() => Effect.sync(() => timers.forEach(clearInterval)))
        const url = yield* server((_, res) => {
          res.writeHead(200, { "content-type": "application/xml" })
          const body = listXml(50)
          let i = 0
          timers.push(setInterval(() => {
            if (i >= body.length) return res.end()
            res.write(body.slice(i, i + 10))
            i += 10
          }, 50))
        })
        const client = yield* socketClient(http, url)
        const started = Date.now()
        const e = failureOf(yield* Effect.exit(client.listObjects({ prefix: "p/" })))
        assert.strictEqual(e._tag, "CosTimeoutError")
        assert.isBelow(Date.now() - started, 3000)
      }))

    it.scopedLive("a server that closes the connection mid-body: a transport error, retried, then reported", () =>
      Effect.gen(function*() {
        let requests = 0
        const url = yield* server((_, res) => {
          requests++
          res.writeHead(200, { "content-type": "application/xml", "content-length": "100000" })
          res.write(listXml(3).slice(0, 200))
          setTimeout(() => res.socket?.destroy(), 10)
        })
        const client = yield* socketClient(http, url, { timeout: "5 seconds" })
        const e = failureOf(yield* Effect.exit(client.listObjects({ prefix: "p/" })))
        assert.strictEqual(e._tag, "CosTransportError")
        assert.strictEqual(requests, 2)
      }))

    it.scopedLive(
      "a huge list page (~30 MB, 100 000 entries where COS sends at most 1000) is read within seconds",
      () =>
        Effect.gen(function*() {
          // Sane behaviour: the page is decoded (it is well-formed COS XML, just oversized) without hanging; what the
          // client does not do is stream it, so the bound is the per-attempt timeout.
          const body = Buffer.from(listXml(100_000, "-padding-padding-padding-padding-padding-padding"))
          const url = yield* server((_, res) => {
            res.writeHead(200, { "content-type": "application/xml", "content-length": String(body.length) })
            res.end(body)
          })
          const client = yield* socketClient(http, url, { timeout: "20 seconds" })
          const started = Date.now()
          const page = yield* client.listObjects({ prefix: "p/" })
          assert.isAbove(body.length, 30_000_000)
          assert.strictEqual(page.contents.length, 100_000)
          assert.strictEqual(page.contents[99_999]!.key, "p/0099999-padding-padding-padding-padding-padding-padding")
          assert.isBelow(Date.now() - started, 10_000)
        }),
      20_000
    )
  })
}
