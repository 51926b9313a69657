// Tencent's own Node SDK (cos-nodejs-sdk-v5@3.0.0) against the socket server: it must not tell the fake from COS.
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createRequire } from "node:module"

const require = createRequire(import.meta.url)

const COS: any = require("cos-nodejs-sdk-v5")

interface SdkError {
  readonly statusCode?: number
  readonly code?: string
  readonly message?: string
}

const makeSdk = (server: CosFakeServer.CosFakeServer, extra: Record<string, unknown> = {}) =>
  new COS({
    SecretId: CosFake.testCredentials.secretId,
    SecretKey: Redacted.value(CosFake.testCredentials.secretKey),
    Domain: server.hostPort,
    Protocol: "http:",
    ...extra
  })

/** Calls an SDK method; succeeds with its data or fails with its error object. */

const call = (cos: any, method: string, params: Record<string, unknown>) =>
  Effect.async<any, SdkError>((resume) => {
    cos[method](
      { Bucket: CosFake.testBucket, Region: CosFake.testRegion, ...params },
      (err: SdkError | null, data: unknown) => resume(err ? Effect.fail(err) : Effect.succeed(data))
    )
  })

const keys = ["with spaces.txt", "照片/2020年/IMG 1.jpg", "!'()*+~&<>%?#", "folder/", "a/b/c", "plain"]

describe("cos-nodejs-sdk-v5 against the fake", () => {
  it.live("put, list (raw, url-encoded, delimited), delete singly and in batches", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* CosFakeServer.start()
      const cos = makeSdk(server)
      for (const k of keys) {
        const r = yield* call(cos, "putObject", { Key: k, Body: Buffer.from(`body of ${k}`) })
        assert.strictEqual(r.statusCode, 200)
      }
      const sorted = [...keys].sort(Store.compareUtf8)
      const list = yield* call(cos, "getBucket", {})
      assert.deepStrictEqual(list.Contents.map((c: { Key: string }) => c.Key), sorted)
      assert.strictEqual(list.IsTruncated, "false")

      const enc = yield* call(cos, "getBucket", { EncodingType: "url" })
      assert.deepStrictEqual(enc.Contents.map((c: { Key: string }) => decodeURIComponent(c.Key)), sorted)

      const paged: Array<string> = []
      let marker = ""
      for (;;) {
        const page = yield* call(cos, "getBucket", { MaxKeys: 2, Marker: marker, EncodingType: "url" })
        paged.push(...page.Contents.map((c: { Key: string }) => decodeURIComponent(c.Key)))
        if (page.IsTruncated !== "true") break
        marker = decodeURIComponent(page.NextMarker)
      }
      assert.deepStrictEqual(paged, sorted)

      const delim = yield* call(cos, "getBucket", { Delimiter: "/" })
      assert.deepStrictEqual(delim.CommonPrefixes.map((p: { Prefix: string }) => p.Prefix), ["a/", "folder/", "照片/"])
      assert.deepStrictEqual(delim.Contents.map((c: { Key: string }) => c.Key), [
        "!'()*+~&<>%?#",
        "plain",
        "with spaces.txt"
      ])

      const head = yield* call(cos, "headObject", { Key: "!'()*+~&<>%?#" })
      assert.strictEqual(head.statusCode, 200)

      const del = yield* call(cos, "deleteObject", { Key: "!'()*+~&<>%?#" })
      assert.strictEqual(del.statusCode, 204)
      const batch = yield* call(cos, "deleteMultipleObject", {
        Objects: keys.filter((k) => k !== "!'()*+~&<>%?#").map((Key) => ({ Key })).concat([{ Key: "absent" }])
      })
      assert.strictEqual(batch.Deleted.length, keys.length)
      assert.strictEqual(batch.Error.length, 0)
      const after = yield* call(cos, "getBucket", {})
      assert.deepStrictEqual(after.Contents, [])
    })))

  it.live("versioned bucket: listObjectVersions shows versions and delete markers", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* CosFakeServer.start()
      const cos = makeSdk(server)
      yield* call(cos, "putBucketVersioning", { VersioningConfiguration: { Status: "Enabled" } })
      const v = yield* call(cos, "getBucketVersioning", {})
      assert.strictEqual(v.VersioningConfiguration.Status, "Enabled")
      yield* call(cos, "putObject", { Key: "doc/a b.txt", Body: "1" })
      yield* call(cos, "putObject", { Key: "doc/a b.txt", Body: "2" })
      const d = yield* call(cos, "deleteObject", { Key: "doc/a b.txt" })
      assert.strictEqual(d.headers["x-cos-delete-marker"], "true")
      const lv = yield* call(cos, "listObjectVersions", { Prefix: "doc/" })
      assert.strictEqual(lv.Versions.length, 2)
      assert.strictEqual(lv.DeleteMarkers.length, 1)
      assert.strictEqual(lv.DeleteMarkers[0].IsLatest, "true")
      const batch = yield* call(cos, "deleteMultipleObject", {
        Objects: [
          ...lv.Versions.map((x: { Key: string; VersionId: string }) => ({ Key: x.Key, VersionId: x.VersionId })),
          ...lv.DeleteMarkers.map((x: { Key: string; VersionId: string }) => ({ Key: x.Key, VersionId: x.VersionId }))
        ]
      })
      assert.strictEqual(batch.Deleted.length, 3)
      const empty = yield* call(cos, "listObjectVersions", { Prefix: "doc/" })
      assert.strictEqual(empty.Versions.length + empty.DeleteMarkers.length, 0)
    })))

  it.live("a wrong secret gets 403 SignatureDoesNotMatch; an expired signature gets 403", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* CosFakeServer.start()
      const wrong = makeSdk(server, { SecretKey: "not-the-secret" })
      const e1 = yield* Effect.flip(call(wrong, "getBucket", {}))
      assert.strictEqual(e1.statusCode, 403)
      assert.strictEqual(e1.code, "SignatureDoesNotMatch")
      // The SDK signs for now-1 … now+900 s of its own clock; an hour behind, that window is over.
      const late = makeSdk(server, { SystemClockOffset: -3_600_000, CorrectClockSkew: false })
      const e2 = yield* Effect.flip(call(late, "getBucket", {}))
      assert.strictEqual(e2.statusCode, 403)
      assert.strictEqual(e2.code, "AccessDenied")
      // With clock-skew correction the SDK retries using the fake's Date header, and succeeds.
      const corrected = makeSdk(server, { SystemClockOffset: -3_600_000 })
      const ok = yield* call(corrected, "getBucket", {})
      assert.strictEqual(ok.statusCode, 200)
    })))

  it.live("temporary credentials: the SDK's SecurityToken is required and checked", () =>
    Effect.scoped(Effect.gen(function*() {
      const temp = {
        secretId: "AKIDtemporary",
        secretKey: Redacted.make("tmp-secret"),
        securityToken: Redacted.make("tok")
      }
      const server = yield* CosFakeServer.start({ credentials: [temp] })
      const withToken = makeSdk(server, { SecretId: "AKIDtemporary", SecretKey: "tmp-secret", SecurityToken: "tok" })
      assert.strictEqual((yield* call(withToken, "putObject", { Key: "t", Body: "x" })).statusCode, 200)
      const noToken = makeSdk(server, { SecretId: "AKIDtemporary", SecretKey: "tmp-secret" })
      const e = yield* Effect.flip(call(noToken, "getBucket", {}))
      assert.strictEqual(e.statusCode, 403)
      const wrongToken = makeSdk(server, { SecretId: "AKIDtemporary", SecretKey: "tmp-secret", SecurityToken: "other" })
      assert.strictEqual((yield* Effect.flip(call(wrongToken, "getBucket", {}))).code, "AccessDenied")
      // a pre-signed URL made by the SDK works with plain HTTP
      const url: string = withToken.getObjectUrl({
        Bucket: CosFake.testBucket,
        Region: CosFake.testRegion,
        Key: "t",
        Sign: true
      })
      const res = yield* Effect.promise(() => fetch(url))
      assert.strictEqual(res.status, 200)
      assert.strictEqual(yield* Effect.promise(() => res.text()), "x")
    })))
  it.live("multipart: multipartInit, multipartUpload, multipartListPart, multipartComplete, multipartList, multipartAbort", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* CosFakeServer.start()
      const cos = makeSdk(server)
      const keys = ["mp/\u{1F4E6} astral", "mp/cafe\u0301", "mp/ spaced ", "mp/line\nbreak", "mp/<a> & 'b' \"c\" %20+"]
      const ids = new Map<string, string>()
      for (const key of keys) {
        const init = yield* call(cos, "multipartInit", { Key: key })
        assert.strictEqual(init.statusCode, 200)
        assert.match(init.UploadId, /^[0-9]{10}[0-9a-f]{64}$/)
        ids.set(key, init.UploadId)
      }
      const key = keys[0]!
      const big = Buffer.alloc(1_048_576, 1)
      const p1 = yield* call(cos, "multipartUpload", { Key: key, UploadId: ids.get(key), PartNumber: 1, Body: big })
      const p2 = yield* call(cos, "multipartUpload", { Key: key, UploadId: ids.get(key), PartNumber: 2, Body: "end" })
      assert.strictEqual(p1.statusCode, 200)
      const parts = yield* call(cos, "multipartListPart", { Key: key, UploadId: ids.get(key) })
      assert.deepStrictEqual(parts.Part.map((p: { PartNumber: string }) => p.PartNumber), ["1", "2"])
      assert.strictEqual(parts.Part[0].ETag, p1.ETag)

      // Pages of two, fed back as the SDK's wholeMultipartList does; the SDK decodes nothing, so we do.
      const seen: Array<string> = []
      let keyMarker = ""
      let uploadIdMarker = ""
      for (;;) {
        const page = yield* call(cos, "multipartList", {
          Prefix: "mp/",
          EncodingType: "url",
          MaxUploads: 2,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker
        })
        seen.push(...page.Upload.map((u: { Key: string }) => decodeURIComponent(u.Key)))
        if (page.IsTruncated !== "true") break
        keyMarker = decodeURIComponent(page.NextKeyMarker)
        uploadIdMarker = page.NextUploadIdMarker
      }
      assert.deepStrictEqual(seen, [...keys].sort(Store.compareUtf8))

      const bad = yield* Effect.flip(call(cos, "multipartComplete", {
        Key: key,
        UploadId: ids.get(key),
        Parts: [{ PartNumber: 2, ETag: p2.ETag }, { PartNumber: 1, ETag: p1.ETag }]
      }))
      assert.strictEqual(bad.code, "InvalidPartOrder")
      const done = yield* call(cos, "multipartComplete", {
        Key: key,
        UploadId: ids.get(key),
        Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }]
      })
      assert.strictEqual(done.statusCode, 200)
      assert.match(done.ETag, /-2"$/)
      const head = yield* call(cos, "headObject", { Key: key })
      assert.strictEqual(head.headers["content-length"], String(big.length + 3))

      for (const k of keys.slice(1)) {
        const r = yield* call(cos, "multipartAbort", { Key: k, UploadId: ids.get(k) })
        assert.strictEqual(r.statusCode, 204)
      }
      const again = yield* Effect.flip(call(cos, "multipartAbort", { Key: keys[1], UploadId: ids.get(keys[1]!) }))
      assert.deepStrictEqual([again.statusCode, again.code], [404, "NoSuchUpload"])
      const empty = yield* call(cos, "multipartList", { Prefix: "mp/" })
      assert.deepStrictEqual(empty.Upload, [])
    })))
})
