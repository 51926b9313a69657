import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { createHash } from "node:crypto"
import * as CosClient from "../src/CosClient.js"
import * as Xml from "../src/internal/xml.js"
import { verifySignature, withClient } from "./support/client.js"
import { empty, xml } from "./support/mockHttp.js"

describe("CosClient.deleteObject", () => {
  it.effect("DELETEs the key's path and reads x-cos-version-id / x-cos-delete-marker", () =>
    withClient(
      () => empty(204, { "x-cos-version-id": "MTg0NDUxNTc1NjIzMTQ1MDAwODg", "x-cos-delete-marker": "true" }),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const result = yield* client.deleteObject({ key: "exampleobject(腾讯云) !'*+~.txt" })
          assert.deepStrictEqual(result, { versionId: "MTg0NDUxNTc1NjIzMTQ1MDAwODg", deleteMarker: true })
          const [request] = yield* sent
          assert.strictEqual(request!.method, "DELETE")
          assert.strictEqual(
            request!.url.pathname,
            "/exampleobject%28%E8%85%BE%E8%AE%AF%E4%BA%91%29%20%21%27%2A%2B~.txt"
          )
          assert.strictEqual(request!.url.search, "")
          assert.isTrue(verifySignature(request!).ok)
        })
    ))

  it.effect("sends versionId (signed as versionid) and reports an unversioned delete", () =>
    withClient(
      (_, n) => n === 1 ? empty(204, { "x-cos-version-id": "null" }) : empty(204),
      ({ client, sent }) =>
        Effect.gen(function*() {
          yield* client.deleteObject({ key: "never-versioned", versionId: "" })
          const a = yield* client.deleteObject({ key: "a/b", versionId: "null" })
          assert.deepStrictEqual(a, { versionId: "null", deleteMarker: false })
          const b = yield* client.deleteObject({ key: "a/./b" })
          assert.deepStrictEqual(b, { versionId: undefined, deleteMarker: false })
          const [plain, first, second] = yield* sent
          assert.strictEqual(plain!.url.search, "")
          assert.strictEqual(first!.url.search, "?versionId=null")
          assert.deepStrictEqual(verifySignature(first!).parsed!.urlParamList, ["versionid"])
          assert.isTrue(verifySignature(first!).ok)
          // dot-segments are glued with %2F so nothing normalises them away
          assert.strictEqual(second!.url.pathname, "/a%2F.%2Fb")
          assert.isTrue(verifySignature(second!).ok)
        })
    ))

  it.effect("fails with CosServiceError on COS errors", () =>
    withClient(() => xml(`<Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>`, 403), ({
      client
    }) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(client.deleteObject({ key: "a" }))
        assert.strictEqual(error._tag === "CosServiceError" && error.code, "AccessDenied")
      })))

  it.effect("refuses invalid keys before sending", () =>
    withClient(() => empty(204), ({ client, sent }) =>
      Effect.gen(function*() {
        const bad = ["", "/leading", ".", "..", "a".repeat(851), "照".repeat(284), "x\uDC00"]
        for (const key of bad) {
          const error = yield* Effect.flip(client.deleteObject({ key }))
          assert.strictEqual(error._tag, "CosInvalidRequest", key.slice(0, 10))
        }
        const slash = yield* Effect.flip(client.deleteObject({ key: "/a" }))
        assert.include(slash.message, "begins with '/'")
        assert.strictEqual((yield* sent).length, 0)
        yield* client.deleteObject({ key: "照".repeat(283) + "a" }) // 850 bytes
        yield* client.deleteObject({ key: "./" })
        assert.strictEqual((yield* sent).length, 2)
      })))
})

const deleteResult = (inner: string) => `<?xml version='1.0' encoding='utf-8' ?>\n<DeleteResult>${inner}</DeleteResult>`

describe("CosClient.deleteObjects", () => {
  it.effect("POSTs ?delete with the Delete body, Content-MD5 and Content-Type, signed", () =>
    withClient(
      () => xml(deleteResult("<Deleted><Key>a</Key></Deleted><Deleted><Key>b</Key></Deleted>")),
      ({ client, sent }) =>
        Effect.gen(function*() {
          yield* client.deleteObjects({ objects: [{ key: "a" }, { key: "b", versionId: "MTg0NDU" }] })
          const [request] = yield* sent
          assert.strictEqual(request!.method, "POST")
          assert.strictEqual(request!.url.pathname, "/")
          assert.strictEqual(request!.url.search, "?delete")
          assert.strictEqual(
            request!.body,
            "<Delete><Quiet>false</Quiet><Object><Key>a</Key></Object>" +
              "<Object><Key>b</Key><VersionId>MTg0NDU</VersionId></Object></Delete>"
          )
          assert.strictEqual(request!.headers["content-type"], "application/xml")
          assert.strictEqual(
            request!.headers["content-md5"],
            createHash("md5").update(Buffer.from(request!.body)).digest("base64")
          )
          const check = verifySignature(request!)
          assert.isTrue(check.ok)
          assert.deepStrictEqual(check.parsed!.headerList, ["content-length", "content-md5", "content-type", "host"])
          assert.deepStrictEqual(check.parsed!.urlParamList, ["delete"])
        })
    ))

  it.effect("escapes XML specials so COS reads back the same keys", () =>
    withClient(() => xml(deleteResult("")), ({ client, sent }) =>
      Effect.gen(function*() {
        const keys = ["a&b", "<x>", "q\"uote's", "]]>", "tab\there", "照片/😀", "&amp;"]
        yield* client.deleteObjects({ objects: keys.map((key) => ({ key })), quiet: true })
        const [request] = yield* sent
        assert.include(request!.body, "<Quiet>true</Quiet>")
        const parsed = Xml.parseGeneral(request!.body)
        assert.strictEqual(parsed._tag, "Ok")
        if (parsed._tag === "Ok") {
          const sentKeys = parsed.root.children.filter((c) => c.name === "Object").map((o) => Xml.childText(o, "Key"))
          assert.deepStrictEqual(sentKeys, keys)
        }
      })))

  it.effect("non-quiet: per-key Deleted and Error entries, and keys COS did not mention as missing", () =>
    withClient(
      () =>
        xml(deleteResult(`
  <Deleted><Key>a</Key></Deleted>
  <Deleted><Key>b</Key><VersionId>MTg0NDU</VersionId></Deleted>
  <Deleted><Key>c</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>MTg0NDV</DeleteMarkerVersionId></Deleted>
  <Error><Key>d</Key><Code>PathConflict</Code><Message>path conflict</Message></Error>
  <Error><Key>e</Key><VersionId>v1</VersionId><Code>InternalError</Code><Message>try again</Message></Error>`)),
      ({ client }) =>
        Effect.gen(function*() {
          const result = yield* client.deleteObjects({
            objects: [
              { key: "a" },
              { key: "b", versionId: "MTg0NDU" },
              { key: "c" },
              { key: "d" },
              { key: "e", versionId: "v1" },
              { key: "f" },
              { key: "b", versionId: "other" }
            ]
          })
          assert.deepStrictEqual(result.deleted, [
            { _tag: "Deleted", key: "a", versionId: undefined, deleteMarker: false, deleteMarkerVersionId: undefined },
            { _tag: "Deleted", key: "b", versionId: "MTg0NDU", deleteMarker: false, deleteMarkerVersionId: undefined },
            { _tag: "Deleted", key: "c", versionId: undefined, deleteMarker: true, deleteMarkerVersionId: "MTg0NDV" }
          ])
          assert.deepStrictEqual(result.errors, [
            { _tag: "Error", key: "d", versionId: undefined, code: "PathConflict", message: "path conflict" },
            { _tag: "Error", key: "e", versionId: "v1", code: "InternalError", message: "try again" }
          ])
          assert.deepStrictEqual(result.missing, [{ key: "f" }, { key: "b", versionId: "other" }])
          // Aligned with the keys sent: the engine reads outcomes[i] for objects[i], nothing to match again.
          assert.deepStrictEqual(
            result.outcomes.map((o) =>
              o === undefined ? "missing" : o._tag === "Deleted" ? o.key : `${o.key}:${o.code}`
            ),
            ["a", "b", "c", "d:PathConflict", "e:InternalError", "missing", "missing"]
          )
        })
    ))

  it.effect("outcomes: aligned with the keys sent, in any reply order, for keys sent twice, and for versionId \"\"", () =>
    withClient(
      () =>
        xml(deleteResult(
          "<Error><Key>z</Key><Code>AccessDenied</Code><Message>no</Message></Error>" +
            "<Deleted><Key>b</Key><VersionId>v2</VersionId></Deleted><Deleted><Key>a</Key></Deleted>" +
            "<Deleted><Key>n</Key></Deleted>"
        )),
      ({ client }) =>
        Effect.gen(function*() {
          const objects = [
            { key: "a" },
            { key: "b", versionId: "v2" },
            { key: "z" },
            { key: "a" },
            { key: "n", versionId: "" },
            { key: "q" }
          ]
          const result = yield* client.deleteObjects({ objects })
          assert.strictEqual(result.outcomes.length, objects.length)
          assert.deepStrictEqual(
            result.outcomes.map((o) =>
              o === undefined ? "missing" : o._tag === "Deleted" ? `deleted ${o.key}` : o.code
            ),
            ["deleted a", "deleted b", "AccessDenied", "deleted a", "deleted n", "missing"]
          )
          assert.deepStrictEqual(result.missing, [{ key: "q" }])
        })
    ))

  it.effect("quiet: every key not in <Error> is deleted", () =>
    withClient(
      (_, n) =>
        xml(
          n === 0
            ? "<DeleteResult/>"
            : deleteResult("<Error><Key>b</Key><Code>AccessDenied</Code><Message>no</Message></Error>")
        ),
      ({ client }) =>
        Effect.gen(function*() {
          const objects = [{ key: "a" }, { key: "b" }, { key: "c", versionId: "v" }]
          const all = yield* client.deleteObjects({ objects, quiet: true })
          assert.deepStrictEqual(all.deleted.map((d) => [d.key, d.versionId]), [["a", undefined], ["b", undefined], [
            "c",
            "v"
          ]])
          assert.deepStrictEqual(all.errors, [])
          assert.deepStrictEqual(all.missing, [])
          const some = yield* client.deleteObjects({ objects, quiet: true })
          assert.deepStrictEqual(some.deleted.map((d) => d.key), ["a", "c"])
          assert.deepStrictEqual(some.errors.map((d) => [d.key, d.code]), [["b", "AccessDenied"]])
          assert.deepStrictEqual(some.missing, [])
          assert.deepStrictEqual(
            some.outcomes.map((o) => o?._tag === "Error" ? o.code : o?._tag),
            ["Deleted", "AccessDenied", "Deleted"]
          )
          assert.deepStrictEqual(all.outcomes.map((o) => o?.key), ["a", "b", "c"])
        })
    ))

  it.effect("sends an empty versionId (never-versioned bucket) as none, and matches replies that omit VersionId", () =>
    withClient(
      () =>
        xml(deleteResult(
          "<Deleted><Key>a</Key></Deleted><Deleted><Key>b</Key></Deleted><Deleted><Key>c</Key><VersionId>v</VersionId></Deleted>"
        )),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const result = yield* client.deleteObjects({
            objects: [{ key: "a", versionId: "" }, { key: "b", versionId: "MTg0NDU" }, { key: "c" }]
          })
          assert.deepStrictEqual(result.missing, [])
          const [request] = yield* sent
          assert.strictEqual(
            request!.body,
            "<Delete><Quiet>false</Quiet><Object><Key>a</Key></Object>" +
              "<Object><Key>b</Key><VersionId>MTg0NDU</VersionId></Object><Object><Key>c</Key></Object></Delete>"
          )
        })
    ))

  it.effect("reads keys with entities and unicode from the reply", () =>
    withClient(
      () => xml(deleteResult("<Deleted><Key>a&amp;b &lt;照片&gt; &#x1F600;</Key></Deleted>")),
      ({ client }) =>
        Effect.gen(function*() {
          const result = yield* client.deleteObjects({ objects: [{ key: "a&b <照片> 😀" }] })
          assert.deepStrictEqual(result.missing, [])
          assert.strictEqual(result.deleted[0]!.key, "a&b <照片> 😀")
        })
    ))

  it.effect("refuses 0 or more than 1000 keys before sending; takes exactly 1000", () =>
    withClient(() => xml(deleteResult("")), ({ client, sent }) =>
      Effect.gen(function*() {
        const none = yield* Effect.flip(client.deleteObjects({ objects: [] }))
        assert.strictEqual(none._tag, "CosInvalidRequest")
        const keys = Array.from({ length: 1001 }, (_, i) => ({ key: `k${i}` }))
        const tooMany = yield* Effect.flip(client.deleteObjects({ objects: keys }))
        assert.strictEqual(tooMany._tag, "CosInvalidRequest")
        assert.include(tooMany.message, "1001")
        assert.strictEqual((yield* sent).length, 0)
        const result = yield* client.deleteObjects({ objects: keys.slice(0, 1000), quiet: true })
        assert.strictEqual(result.deleted.length, 1000)
      })))

  it.effect("refuses keys that cannot travel in XML (control characters, CR, LF), pointing to deleteObject", () =>
    withClient(() => xml(deleteResult("")), ({ client, sent }) =>
      Effect.gen(function*() {
        for (const key of ["a\nb", "a\rb", "a\u0001b", "a\u001Fb", "a\uFFFEb", "a\uFFFF", "a\uD800b", "/a", ""]) {
          const error = yield* Effect.flip(client.deleteObjects({ objects: [{ key: "ok" }, { key }] }))
          assert.strictEqual(error._tag, "CosInvalidRequest", JSON.stringify(key))
        }
        const lf = yield* Effect.flip(client.deleteObjects({ objects: [{ key: "a\nb" }] }))
        assert.include(lf.message, "deleteObject")
        assert.strictEqual((yield* sent).length, 0)
        assert.isTrue(CosClient.isXmlSafeKey("tab\tok 照片 😀 \u0085"))
        assert.isFalse(CosClient.isXmlSafeKey("a\nb"))
        assert.isFalse(CosClient.isXmlSafeKey("a\uDFFF"))
      })))

  it.effect("fails with CosServiceError on a request-level error, retrying only 5xx", () =>
    withClient(
      (_, n) =>
        n === 0
          ? xml(
            `<Error><Code>MalformedXML</Code><Message>delete key size is greater than 1000</Message></Error>`,
            400
          )
          : n === 1
          ? xml(`<Error><Code>ServiceUnavailable</Code><Message>busy</Message></Error>`, 503)
          : xml(deleteResult("<Deleted><Key>a</Key></Deleted>")),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(client.deleteObjects({ objects: [{ key: "a" }] }))
          assert.strictEqual(error._tag === "CosServiceError" && error.code, "MalformedXML")
          assert.strictEqual((yield* sent).length, 1)
          const fiber = yield* Effect.fork(client.deleteObjects({ objects: [{ key: "a" }] }))
          yield* TestClock.adjust("10 seconds")
          const exit = yield* Fiber.await(fiber)
          assert.isTrue(Exit.isSuccess(exit))
          const requests = yield* sent
          assert.strictEqual(requests.length, 3)
          assert.strictEqual(requests[2]!.body, requests[1]!.body)
          assert.strictEqual(requests[2]!.headers["content-md5"], requests[1]!.headers["content-md5"])
        })
    ))

  it.effect("fails with CosDecodeError on an answer that is not a DeleteResult", () =>
    withClient(
      (_, n) =>
        n === 0
          ? xml("<DeleteResult><Deleted><Key>a</Key></Deleted>")
          : xml(deleteResult("<Deleted><VersionId/></Deleted>")),
      ({ client }) =>
        Effect.gen(function*() {
          const truncated = yield* Effect.flip(client.deleteObjects({ objects: [{ key: "a" }] }))
          assert.strictEqual(truncated._tag, "CosDecodeError")
          const noKey = yield* Effect.flip(client.deleteObjects({ objects: [{ key: "a" }] }))
          assert.strictEqual(noKey._tag, "CosDecodeError")
          assert.include(noKey.message, "<Deleted> entry has no <Key>")
        })
    ))
})
