import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { createHash } from "node:crypto"
import { verifySignature, withClient } from "./support/client.js"
import { empty, xml } from "./support/mockHttp.js"

describe("CosClient.putObject", () => {
  it.effect("PUTs the body with Content-MD5, type, forbid-overwrite, storage class and metadata", () =>
    withClient(
      () =>
        empty(200, {
          etag: "\"ee8de918d05640145b18f70f4c3aa602\"",
          "x-cos-version-id": "MTg0NDUxNTc1NjIzMTQ1MDAwODg",
          "x-cos-request-id": "NWQ1ZjY0MTRfMjBiZTI4MDlfNTRkMl8x"
        }),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const result = yield* client.putObject({
            key: "exampleobject(腾讯云)",
            body: "ObjectContent",
            contentType: "text/plain",
            forbidOverwrite: true,
            storageClass: "STANDARD_IA",
            metadata: { Project: "demo", "owner-id": "42" }
          })
          assert.deepStrictEqual(result, {
            etag: "\"ee8de918d05640145b18f70f4c3aa602\"",
            versionId: "MTg0NDUxNTc1NjIzMTQ1MDAwODg"
          })
          const [request] = yield* sent
          assert.strictEqual(request!.method, "PUT")
          assert.strictEqual(request!.url.pathname, "/exampleobject%28%E8%85%BE%E8%AE%AF%E4%BA%91%29")
          assert.strictEqual(request!.body, "ObjectContent")
          // docs/protocol.md §2 V1: MD5 of "ObjectContent"
          assert.strictEqual(request!.headers["content-md5"], "mQ/fVh815F3k6TAUm8m0eg==")
          assert.strictEqual(request!.headers["content-type"], "text/plain")
          assert.strictEqual(request!.headers["x-cos-forbid-overwrite"], "true")
          assert.strictEqual(request!.headers["x-cos-storage-class"], "STANDARD_IA")
          assert.strictEqual(request!.headers["x-cos-meta-project"], "demo")
          assert.strictEqual(request!.headers["x-cos-meta-owner-id"], "42")
          const check = verifySignature(request!)
          assert.isTrue(check.ok)
          assert.includeMembers([...check.parsed!.headerList], [
            "content-md5",
            "content-type",
            "x-cos-forbid-overwrite",
            "x-cos-meta-project"
          ])
        })
    ))

  it.effect("sends bytes as application/octet-stream by default", () =>
    withClient(() => empty(200, { etag: "\"x\"" }), ({ client, sent }) =>
      Effect.gen(function*() {
        const bytes = new Uint8Array([0, 1, 2, 255])
        const result = yield* client.putObject({ key: "bin", body: bytes })
        assert.deepStrictEqual(result, { etag: "\"x\"", versionId: undefined })
        const [request] = yield* sent
        assert.strictEqual(request!.headers["content-type"], "application/octet-stream")
        assert.strictEqual(request!.headers["content-md5"], createHash("md5").update(bytes).digest("base64"))
        assert.isUndefined(request!.headers["x-cos-forbid-overwrite"])
      })))

  it.effect("fails with FileAlreadyExists (409) without retrying", () =>
    withClient(
      () =>
        xml(
          `<Error><Code>FileAlreadyExists</Code><Message>The file already exists.</Message><RequestId>id</RequestId></Error>`,
          409
        ),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(client.putObject({ key: "a", body: "x", forbidOverwrite: true }))
          assert.strictEqual(error._tag === "CosServiceError" && error.code, "FileAlreadyExists")
          assert.strictEqual(error._tag === "CosServiceError" && error.status, 409)
          assert.strictEqual((yield* sent).length, 1)
        })
    ))

  it.effect("refuses invalid keys and metadata before sending", () =>
    withClient(() => empty(200), ({ client, sent }) =>
      Effect.gen(function*() {
        const inputs = [
          { key: "/a", body: "" },
          { key: "a", body: "", metadata: { "bad name": "x" } },
          { key: "a", body: "", metadata: { ok: "line\nbreak" } },
          { key: "a", body: "", metadata: { ok: "非ASCII" } }
        ]
        for (const input of inputs) {
          const error = yield* Effect.flip(client.putObject(input))
          assert.strictEqual(error._tag, "CosInvalidRequest")
        }
        assert.strictEqual((yield* sent).length, 0)
      })))
})

// docs/protocol.md §4 HEAD Object
const headHeaders = {
  "content-type": "image/jpeg",
  "content-length": "16",
  etag: "\"ee8de918d05640145b18f70f4c3aa602\"",
  "last-modified": "Fri, 04 Oct 2019 07:53:29 GMT",
  "x-cos-request-id": "NWQ1ZjY0MTRfMjBiZTI4MDlfNTRkMl8x",
  "x-cos-version-id": "MTg0NDUxNTc1NjIzMTQ1MDAwODg",
  "x-cos-storage-class": "ARCHIVE",
  "x-cos-meta-project": "demo"
}

describe("CosClient.headObject", () => {
  it.effect("decodes the headers of a 200", () =>
    withClient(() => empty(200, headHeaders), ({ client, sent }) =>
      Effect.gen(function*() {
        const result = yield* client.headObject({ key: "a b.jpg", versionId: "MTg0NDUxNTc1NjIzMTQ1MDAwODg" })
        assert.deepStrictEqual(result, {
          contentLength: 16,
          contentType: "image/jpeg",
          etag: "\"ee8de918d05640145b18f70f4c3aa602\"",
          lastModified: new Date("2019-10-04T07:53:29.000Z"),
          versionId: "MTg0NDUxNTc1NjIzMTQ1MDAwODg",
          storageClass: "ARCHIVE",
          metadata: { project: "demo" }
        })
        const [request] = yield* sent
        assert.strictEqual(request!.method, "HEAD")
        assert.strictEqual(request!.url.pathname, "/a%20b.jpg")
        assert.strictEqual(request!.url.search, "?versionId=MTg0NDUxNTc1NjIzMTQ1MDAwODg")
        assert.isTrue(verifySignature(request!).ok)
      })))

  it.effect("defaults the storage class to STANDARD", () =>
    withClient(() => {
      const { "x-cos-storage-class": _, ...standard } = headHeaders
      return empty(200, standard)
    }, ({ client }) =>
      Effect.gen(function*() {
        const result = yield* client.headObject({ key: "a" })
        assert.strictEqual(result.storageClass, "STANDARD")
        assert.strictEqual(result.versionId, "MTg0NDUxNTc1NjIzMTQ1MDAwODg")
      })))

  it.effect("maps a body-less 404 to NoSuchKey, 403 to AccessDenied", () =>
    withClient(
      (_, n) => empty(n === 0 ? 404 : 403, { "x-cos-request-id": "req-1", "x-cos-trace-id": "trace-1" }),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const missing = yield* Effect.flip(client.headObject({ key: "nope" }))
          assert.strictEqual(missing._tag, "CosServiceError")
          if (missing._tag === "CosServiceError") {
            assert.strictEqual(missing.code, "NoSuchKey")
            assert.strictEqual(missing.status, 404)
            assert.strictEqual(missing.requestId, "req-1")
            assert.strictEqual(missing.traceId, "trace-1")
          }
          const denied = yield* Effect.flip(client.headObject({ key: "secret" }))
          assert.strictEqual(denied._tag === "CosServiceError" && denied.code, "AccessDenied")
          assert.strictEqual((yield* sent).length, 2)
        })
    ))

  it.effect("sends conditions and maps 304 to NotModified, 412 to PreconditionFailed", () =>
    withClient((_, n) => empty(n === 0 ? 304 : 412), ({ client, sent }) =>
      Effect.gen(function*() {
        const notModified = yield* Effect.flip(
          client.headObject({ key: "a", ifNoneMatch: "\"x\"", ifModifiedSince: new Date("2019-10-04T07:53:29Z") })
        )
        assert.strictEqual(notModified._tag === "CosServiceError" && notModified.code, "NotModified")
        const failed = yield* Effect.flip(client.headObject({ key: "a", ifMatch: "\"y\"" }))
        assert.strictEqual(failed._tag === "CosServiceError" && failed.code, "PreconditionFailed")
        const [first, second] = yield* sent
        assert.strictEqual(first!.headers["if-none-match"], "\"x\"")
        assert.strictEqual(first!.headers["if-modified-since"], "Fri, 04 Oct 2019 07:53:29 GMT")
        assert.strictEqual(second!.headers["if-match"], "\"y\"")
        assert.includeMembers([...verifySignature(first!).parsed!.headerList], ["if-modified-since", "if-none-match"])
        assert.isTrue(verifySignature(first!).ok)
      })))

  it.effect("retries a body-less 503", () =>
    withClient((_, n) => n === 0 ? empty(503) : empty(200, headHeaders), ({ client, sent }) =>
      Effect.gen(function*() {
        const fiber = yield* Effect.fork(client.headObject({ key: "a" }))
        yield* TestClock.adjust("10 seconds")
        assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
        assert.strictEqual((yield* sent).length, 2)
      })))

  it.effect("fails with CosDecodeError when Last-Modified is missing", () =>
    withClient(() => empty(200, { "content-length": "1" }), ({ client }) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(client.headObject({ key: "a" }))
        assert.strictEqual(error._tag, "CosDecodeError")
      })))
})

describe("CosClient.headBucket", () => {
  it.effect("reports the bucket's region", () =>
    withClient(() => empty(200, { "x-cos-bucket-region": "ap-beijing", "x-cos-bucket-az-type": "MAZ" }), ({
      client,
      sent
    }) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* client.headBucket(), { region: "ap-beijing" })
        const [request] = yield* sent
        assert.strictEqual(request!.method, "HEAD")
        assert.strictEqual(request!.url.pathname, "/")
        assert.isTrue(verifySignature(request!).ok)
      })))

  it.effect("maps 404 to NoSuchBucket and 403 to AccessDenied", () =>
    withClient((_, n) => empty(n === 0 ? 404 : 403), ({ client }) =>
      Effect.gen(function*() {
        const missing = yield* Effect.flip(client.headBucket({ bucket: "gone-1250000000" }))
        assert.strictEqual(missing._tag === "CosServiceError" && missing.code, "NoSuchBucket")
        const denied = yield* Effect.flip(client.headBucket())
        assert.strictEqual(denied._tag === "CosServiceError" && denied.code, "AccessDenied")
        const invalid = yield* Effect.flip(client.headBucket({ bucket: "UPPER-1250000000" }))
        assert.strictEqual(invalid._tag, "CosInvalidRequest")
      })))
})
