import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as CosClient from "../src/CosClient.js"
import * as Credentials from "../src/Credentials.js"
import { options, start, token, verifySignature, withClient } from "./support/client.js"
import { empty, makeMock, xml } from "./support/mockHttp.js"

const listOk = `<?xml version='1.0' encoding='utf-8' ?>
<ListBucketResult><Name>examplebucket-1250000000</Name><EncodingType>url</EncodingType><Prefix/><Marker/>
<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`

const cosError = (code: string, message: string, extra = "") =>
  `<?xml version='1.0' encoding='utf-8' ?>
<Error><Code>${code}</Code><Message>${message}</Message><Resource>examplebucket-1250000000.cos.ap-beijing.myqcloud.com/</Resource><RequestId>NjQ0NTRjY2ZfNTIzNjFj</RequestId><TraceId>OGVmYzZiMmQzYjA2OWNh</TraceId>${extra}</Error>`

/** Runs `effect` in a fiber while moving the TestClock forward, then returns its exit. */
const drive = <A, E>(effect: Effect.Effect<A, E>, ms = 60_000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    for (let t = 0; t < ms; t += 500) {
      yield* TestClock.adjust(500)
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return done.value
    }
    return yield* Fiber.await(fiber)
  })

describe("CosClient pipeline: signing", () => {
  it.effect("signs every request so a server can verify it, key time now-1 .. now+900", () =>
    withClient(() => xml(listOk), ({ client, sent }) =>
      Effect.gen(function*() {
        yield* client.listObjects({ prefix: "a b+c", marker: "m!'()*" })
        const [request] = yield* sent
        const check = verifySignature(request!)
        assert.isTrue(check.ok)
        const t = start / 1000
        assert.deepStrictEqual(check.parsed!.keyTime, { start: t - 1, end: t + 900 })
        assert.deepStrictEqual(check.parsed!.headerList, ["host"])
        // spaces as %20, never '+'; '+' itself encoded
        assert.include(request!.url.search, "prefix=a%20b%2Bc")
        assert.include(request!.url.search, "marker=m%21%27%28%29%2A")
      })))

  it.effect("sends x-cos-security-token for temporary credentials, outside the signature", () =>
    withClient(() => xml(listOk), ({ client, sent }) =>
      Effect.gen(function*() {
        yield* client.listObjects()
        const [request] = yield* sent
        assert.strictEqual(request!.headers["x-cos-security-token"], token)
        assert.isTrue(verifySignature(request!).ok)
        assert.notInclude(request!.headers["authorization"]!, "x-cos-security-token")
      }), {
      credentials: Credentials.fromStatic({
        secretId: "AKIDtemp",
        secretKey: Redacted.make("BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"),
        securityToken: Redacted.make(token)
      })
    }))

  it.effect("honours signatureTtlSeconds and extraSignedHeaders", () =>
    withClient(() => empty(200, { etag: "\"x\"" }), ({ client, sent }) =>
      Effect.gen(function*() {
        yield* client.putObject({ key: "a", body: "x", contentType: "text/plain" })
        const [request] = yield* sent
        const check = verifySignature(request!)
        assert.isTrue(check.ok)
        assert.strictEqual(check.parsed!.keyTime.end - check.parsed!.keyTime.start, 61)
        assert.deepStrictEqual(check.parsed!.headerList, ["content-length", "content-md5", "content-type", "host"])
      }), { signatureTtlSeconds: 60 }))
})

describe("CosClient pipeline: endpoint", () => {
  it.effect("uses the virtual host with the scheme option", () =>
    withClient(() => xml(listOk), ({ client, sent }) =>
      Effect.gen(function*() {
        yield* client.listObjects({ bucket: "other-1250000000" })
        const [request] = yield* sent
        assert.strictEqual(request!.url.origin, "http://other-1250000000.cos.ap-beijing.myqcloud.com")
      }), { scheme: "http" }))

  it.effect("sends to and signs the endpoint's host", () =>
    withClient(() => xml(listOk), ({ client, sent }) =>
      Effect.gen(function*() {
        yield* client.listObjects()
        yield* client.deleteObject({ key: "dir/a b" })
        const [list, del] = yield* sent
        assert.strictEqual(list!.url.origin, "http://127.0.0.1:9000")
        assert.strictEqual(del!.url.pathname, "/dir/a%20b")
        const check = verifySignature(list!)
        assert.isTrue(check.ok)
        assert.isTrue(verifySignature(del!).ok)
      }), { endpoint: "http://127.0.0.1:9000" }))

  it.effect("fills {Bucket} and {Region} templates; a bare host gets the scheme", () =>
    withClient(() => xml(listOk), ({ client, sent }) =>
      Effect.gen(function*() {
        yield* client.listObjects()
        yield* client.listObjects({ bucket: "logs-1250000000" })
        const [a, b] = yield* sent
        assert.strictEqual(a!.url.host, "examplebucket-1250000000.ap-beijing.cos.test:8443")
        assert.strictEqual(b!.url.host, "logs-1250000000.ap-beijing.cos.test:8443")
        assert.strictEqual(a!.url.protocol, "https:")
      }), { endpoint: "{Bucket}.{Region}.cos.test:8443" }))

  it.effect("refuses an endpoint with a path, or not http(s)", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      for (const endpoint of ["http://127.0.0.1:9000/bucket", "ftp://example.com", "http://[::1"]) {
        const error = yield* CosClient.make({ ...options, endpoint }).pipe(Effect.provide(mock.layer), Effect.flip)
        assert.strictEqual(error._tag, "CosInvalidRequest")
      }
    }))
})

describe("CosClient pipeline: retries", () => {
  it.effect("retries 5xx with growing, jittered backoff and signs each attempt anew", () =>
    withClient((_, n) => n < 2 ? xml(cosError("SlowDown", "Please reduce your request rate."), 503) : xml(listOk), ({
      client,
      sent
    }) =>
      Effect.gen(function*() {
        const exit = yield* drive(client.listObjects())
        assert.isTrue(Exit.isSuccess(exit))
        const requests = yield* sent
        assert.strictEqual(requests.length, 3)
        const gap1 = requests[1]!.at - requests[0]!.at
        const gap2 = requests[2]!.at - requests[1]!.at
        // base 2 s, doubling, jitter 0.8..1.2
        assert.isTrue(gap1 >= 1600 && gap1 <= 2400, `first backoff ${gap1}`)
        assert.isTrue(gap2 >= 3200 && gap2 <= 4800, `second backoff ${gap2}`)
        const keyTimes = requests.map((r) => verifySignature(r).parsed!.keyTime.start)
        assert.strictEqual(new Set(keyTimes).size, 3)
        assert.isTrue(requests.every((r) => verifySignature(r).ok))
      })))

  it.effect("stops after the configured attempts with the last error", () =>
    withClient(
      () => xml(cosError("InternalError", "We encountered an internal error."), 500),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const exit = yield* drive(client.listObjects())
          assert.strictEqual((yield* sent).length, 3)
          assert.isTrue(Exit.isFailure(exit))
          const error = yield* Effect.flip(exit)
          assert.strictEqual(error._tag, "CosServiceError")
          if (error._tag === "CosServiceError") {
            assert.strictEqual(error.code, "InternalError")
            assert.strictEqual(error.status, 500)
          }
        })
    ))

  it.effect("does not retry 4xx", () =>
    withClient(
      () => xml(cosError("AccessDenied", "Access Denied."), 403),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(client.listObjects())
          assert.strictEqual((yield* sent).length, 1)
          assert.strictEqual(error._tag, "CosServiceError")
          if (error._tag === "CosServiceError") {
            assert.strictEqual(error.code, "AccessDenied")
            assert.strictEqual(error.cosMessage, "Access Denied.")
            assert.strictEqual(error.requestId, "NjQ0NTRjY2ZfNTIzNjFj")
            assert.strictEqual(error.traceId, "OGVmYzZiMmQzYjA2OWNh")
            assert.strictEqual(error.resource, "examplebucket-1250000000.cos.ap-beijing.myqcloud.com/")
            assert.strictEqual(error.operation, "CosClient.listObjects")
          }
        })
    ))

  it.effect("retries transport failures and reports them readably, without secrets", () =>
    withClient(() => "transport-error", ({ client, sent }) =>
      Effect.gen(function*() {
        const exit = yield* drive(client.listObjects())
        assert.strictEqual((yield* sent).length, 4)
        const error = yield* Effect.flip(exit)
        assert.strictEqual(error._tag, "CosTransportError")
        assert.include(error.message, "ECONNREFUSED")
        const dump = JSON.stringify(error) + String(error) + error.message
        assert.notInclude(dump, token)
        assert.notInclude(dump, "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz")
        assert.notInclude(dump, "q-signature")
      }), {
      retry: { attempts: 4, baseDelay: "100 millis" },
      credentials: Credentials.fromStatic({
        secretId: "AKIDtemp",
        secretKey: Redacted.make("BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"),
        securityToken: Redacted.make(token)
      })
    }))

  it.effect("times out each attempt, aborts it, and retries", () =>
    withClient(() => "hang", ({ client, sent }) =>
      Effect.gen(function*() {
        const exit = yield* drive(client.listObjects(), 120_000)
        const requests = yield* sent
        assert.strictEqual(requests.length, 3)
        assert.isTrue(requests.every((r) => r.signal.aborted))
        const error = yield* Effect.flip(exit)
        assert.strictEqual(error._tag, "CosTimeoutError")
        assert.include(error.message, "10000 ms")
      })))

  it.effect("interrupting an operation aborts the HTTP request", () =>
    withClient(() => "hang", ({ client, sent }) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(client.listObjects())
        yield* TestClock.adjust(1000)
        yield* Fiber.interrupt(fiber)
        const [request] = yield* sent
        assert.isTrue(request!.signal.aborted)
      })))

  it.effect("retries a 5xx HTML page from a gateway, then reports it as undecodable", () =>
    withClient(
      () =>
        new Response("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", {
          status: 502,
          headers: { "content-type": "text/html" }
        }),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(yield* drive(client.listObjects()))
          assert.strictEqual((yield* sent).length, 3)
          assert.strictEqual(error._tag, "CosDecodeError")
          if (error._tag === "CosDecodeError") {
            assert.include(error.detail, "HTML page")
            assert.include(error.bodySnippet, "502 Bad Gateway")
            assert.strictEqual(error.status, 502)
          }
        })
    ))
})

describe("CosClient pipeline: clock skew", () => {
  const hour = 3600_000
  it.effect("learns the offset from the Date header of RequestTimeTooSkewed and retries once", () =>
    withClient(
      (_, n) =>
        n === 0
          ? xml(
            cosError(
              "RequestTimeTooSkewed",
              "The difference between the request time and the server's time is too large."
            ),
            403,
            {
              date: new Date(start + hour).toUTCString()
            }
          )
          : xml(listOk),
      ({ client, sent }) =>
        Effect.gen(function*() {
          yield* client.listObjects()
          yield* client.listObjects()
          const requests = yield* sent
          assert.strictEqual(requests.length, 3)
          const server = (start + hour) / 1000
          assert.strictEqual(verifySignature(requests[1]!).parsed!.keyTime.start, server - 1)
          // the offset is kept for later requests
          assert.strictEqual(verifySignature(requests[2]!).parsed!.keyTime.start, server - 1)
        })
    ))

  it.effect("uses <ServerTime> of an expired-signature AccessDenied", () =>
    withClient(
      (_, n) =>
        n === 0
          ? xml(
            cosError(
              "AccessDenied",
              "Request has expired",
              `<ServerTime>${new Date(start - hour).toISOString()}</ServerTime>`
            ),
            403
          )
          : xml(listOk),
      ({ client, sent }) =>
        Effect.gen(function*() {
          yield* client.listObjects()
          const requests = yield* sent
          assert.strictEqual(requests.length, 2)
          assert.strictEqual(verifySignature(requests[1]!).parsed!.keyTime.start, (start - hour) / 1000 - 1)
        })
    ))

  it.effect("gives up after one corrected retry", () =>
    withClient(
      () => xml(cosError("RequestTimeTooSkewed", "skewed"), 403, { date: new Date(start + hour).toUTCString() }),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(client.listObjects())
          assert.strictEqual((yield* sent).length, 2)
          assert.strictEqual(error._tag, "CosServiceError")
        })
    ))
})
