import { CosClient, CosHttpClient, Deletion } from "@effect-cos/core"
import { CosFake, CosFakeServer } from "@effect-cos/testkit"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"

/** A server on 127.0.0.1 for the scope, counting the TCP connections it accepted. */
const server = (handler: Http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<{ readonly s: Http.Server; readonly connections: () => number }>((resume) => {
      let connections = 0
      const s = Http.createServer(handler)
      s.on("connection", () => connections++)
      s.listen(0, "127.0.0.1", () => resume(Effect.succeed({ s, connections: () => connections })))
    }),
    ({ s }) =>
      Effect.async<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ connections, s }) => ({
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    connections
  })))

const echo: Http.RequestListener = (req, res) => {
  const parts: Array<Buffer> = []
  req.on("data", (b: Buffer) => parts.push(b))
  req.on("end", () => {
    const body = Buffer.concat(parts)
    res.writeHead(201, { "content-type": "application/json", "set-cookie": ["a=1", "b=2"], "x-multi": ["x", "y"] })
    res.end(JSON.stringify({
      method: req.method,
      url: req.url,
      length: req.headers["content-length"],
      type: req.headers["content-type"],
      md5: req.headers["content-md5"],
      body: body.toString("utf8")
    }))
  })
}

// keys a batch delete must carry byte for byte: XML specials, astral characters, combining marks, spaces at the ends
const hostileKeys = [
  "dir/ leading and trailing ",
  "dir/<&>\"'.txt",
  "dir/😀 astral/🚀",
  "dir/e\u0301 combining",
  "dir/100% +plus?query#hash",
  "dir/\u00a0nbsp\u3000ideographic"
]

describe("CosHttpClient", () => {
  it.scopedLive("sends the body as given and reads status, headers, cookies and body", () =>
    Effect.gen(function*() {
      const { url } = yield* server(echo)
      const http = yield* HttpClient.HttpClient
      const body = new TextEncoder().encode("<Delete><Object><Key>a&amp;😀</Key></Object></Delete>")
      const response = yield* http.execute(
        HttpClientRequest.post(`${url}/?delete`).pipe(
          HttpClientRequest.setHeader("content-md5", "abc=="),
          HttpClientRequest.bodyUint8Array(body, "application/xml")
        )
      )
      assert.strictEqual(response.status, 201)
      assert.deepStrictEqual(response.headers["x-multi"], "x, y")
      assert.deepStrictEqual(Object.keys(response.cookies.cookies).sort(), ["a", "b"])
      const echoed = (yield* response.json) as Record<string, string>
      assert.deepStrictEqual(echoed, {
        method: "POST",
        url: "/?delete",
        length: String(body.byteLength),
        type: "application/xml",
        md5: "abc==",
        body: "<Delete><Object><Key>a&amp;😀</Key></Object></Delete>"
      })
      // the body was read once; every accessor gives it again
      assert.strictEqual(new TextDecoder().decode(yield* response.arrayBuffer), JSON.stringify(echoed))
      const chunks = yield* Stream.runCollect(response.stream)
      assert.strictEqual(new TextDecoder().decode([...chunks][0]), JSON.stringify(echoed))
    }).pipe(Effect.provide(CosHttpClient.layer())))

  it.scopedLive("keeps connections alive: many sequential requests over one TCP connection", () =>
    Effect.gen(function*() {
      const { connections, url } = yield* server(echo)
      const http = yield* HttpClient.HttpClient
      for (let i = 0; i < 20; i++) {
        const r = yield* http.get(`${url}/${i}`)
        assert.strictEqual(r.status, 201)
      }
      assert.strictEqual(connections(), 1)
    }).pipe(Effect.provide(CosHttpClient.layer())))

  it.scopedLive("an interrupted request is aborted: the server sees its connection closed", () =>
    Effect.gen(function*() {
      const arrived = yield* Deferred.make<void>()
      const closed = yield* Deferred.make<void>()
      const { url } = yield* server((req) => {
        Deferred.unsafeDone(arrived, Exit.void)
        req.socket.on("close", () => Deferred.unsafeDone(closed, Exit.void))
        // never answers
      })
      const http = yield* HttpClient.HttpClient
      const fiber = yield* Effect.fork(http.get(`${url}/slow`))
      yield* Deferred.await(arrived)
      yield* Fiber.interrupt(fiber)
      yield* Deferred.await(closed).pipe(Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "not closed" }))
    }).pipe(Effect.provide(CosHttpClient.layer())))

  it.scopedLive("a refused connection is a transport error", () =>
    Effect.gen(function*() {
      const http = yield* HttpClient.HttpClient
      // port 9 (discard) has no listener on 127.0.0.1 here: the connection is refused
      const exit = yield* Effect.exit(http.get("http://127.0.0.1:9/"))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(exit.cause), "Transport")
    }).pipe(Effect.provide(CosHttpClient.layer())))

  it.scopedLive("a purge over it against the fake COS deletes hostile keys exactly, and nothing else", () =>
    Effect.gen(function*() {
      const fake = yield* CosFakeServer.start()
      const client = yield* CosClient.make({ ...CosFake.testClientOptions, endpoint: fake.url })
      for (const key of [...hostileKeys, "keep/me"]) yield* client.putObject({ key, body: "x" })
      const deleted: Array<string> = []
      const summary = yield* Deletion.purge({
        prefix: "dir/",
        onDeleted: (ds) => Effect.sync(() => deleted.push(...ds.map((d) => d.key)))
      }).pipe(Effect.provideService(CosClient.CosClient, client))
      assert.strictEqual(summary.deleted, hostileKeys.length)
      assert.strictEqual(summary.failed, 0)
      assert.deepStrictEqual(deleted.sort(), [...hostileKeys].sort())
      const left = yield* client.listObjects({})
      assert.deepStrictEqual(left.contents.map((o) => o.key), ["keep/me"])
    }).pipe(Effect.provide(CosHttpClient.layer())))

  // Every request attempt runs under a timeout (30 s by default): one left running after its request would keep a
  // finished process alive that long, and hold its memory.
  it.scopedLive(
    "a finished purge leaves no timer running: every request's timeout ends with its request",
    () =>
      Effect.gen(function*() {
        const fake = yield* CosFakeServer.start()
        const client = yield* CosClient.make({ ...CosFake.testClientOptions, endpoint: fake.url })
        yield* Effect.forEach(
          Array.from({ length: 1200 }, (_, i) => `t/${i}`),
          (key) => client.putObject({ key, body: "" }),
          { concurrency: 16, discard: true }
        )
        const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length
        const before = timers()
        const summary = yield* Deletion.purge({ prefix: "t/", batchSize: 100, concurrency: 8, listConcurrency: 4 })
          .pipe(
            Effect.provideService(CosClient.CosClient, client)
          )
        assert.strictEqual(summary.deleted, 1200)
        assert.isAtLeast(summary.requests, 12)
        assert.isAtMost(timers(), before, "timers running after the purge, beyond those before it")
      }).pipe(Effect.provide(CosHttpClient.layer())),
    30_000
  )
})
