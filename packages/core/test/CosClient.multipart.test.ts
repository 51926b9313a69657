import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { verifySignature, withClient } from "./support/client.js"
import { empty, xml } from "./support/mockHttp.js"

const id1 = "17161929029c47cfb1797a799809ae4dc0c92d8f28a93b069bd429db063eeb6bf395ea1644"
const id2 = "1716334857aa47cfb1797a799809ae4dc0c92d8f28a93b069bd429db063eeb6bf395ea1644"

// docs/protocol.md "Multipart uploads": the documented example page (hyphenated Encoding-Type, empty markers).
const docPage = `<ListMultipartUploadsResult>
  <Bucket>examplebucket-1250000000</Bucket>
  <Encoding-Type>url</Encoding-Type>
  <KeyMarker/>
  <UploadIdMarker/>
  <NextKeyMarker>backup/db%20dump.tar</NextKeyMarker>
  <NextUploadIdMarker>${id1}</NextUploadIdMarker>
  <MaxUploads>2</MaxUploads>
  <IsTruncated>TRUE</IsTruncated>
  <Prefix>backup/</Prefix>
  <Delimiter>/</Delimiter>
  <Upload>
    <Key>backup/db%20dump.tar</Key>
    <UploadId>${id1}</UploadId>
    <StorageClass>Standard</StorageClass>
    <Initiator><ID>qcs::cam::uin/100000000001:uin/100000000011</ID><DisplayName>100000000011</DisplayName></Initiator>
    <Owner><ID>qcs::cam::uin/100000000001:uin/100000000001</ID><DisplayName>100000000001</DisplayName></Owner>
    <Initiated>2024-05-20T08:15:02.000Z</Initiated>
  </Upload>
  <CommonPrefixes><Prefix>backup/2024%2B/</Prefix></CommonPrefixes>
</ListMultipartUploadsResult>`

/** A 2017-style page: `EncodingType`, `CommonPrefixs`, asctime dates, elements out of the template's order. */
const page = (uploads: ReadonlyArray<readonly [string, string]>, next?: readonly [string, string]) =>
  `<ListMultipartUploadsResult><Bucket>examplebucket-1250000000</Bucket><EncodingType>url</EncodingType>` +
  `<IsTruncated>${next !== undefined}</IsTruncated>` +
  uploads.map(([k, id]) =>
    `<Upload><Initiated>Wed Jan 18 16:04:17 2017</Initiated><UploadId>${id}</UploadId><Key>${k}</Key></Upload>`
  ).join("") +
  (next === undefined
    ? ""
    : `<NextKeyMarker>${next[0]}</NextKeyMarker><NextUploadIdMarker>${next[1]}</NextUploadIdMarker>`) +
  `<CommonPrefixs><Prefix>p%2F</Prefix></CommonPrefixs><MaxUploads>1000</MaxUploads></ListMultipartUploadsResult>`

describe("CosClient multipart", () => {
  it.effect("listMultipartUploads decodes every encoded field of the documented page and signs its query", () =>
    withClient(() => xml(docPage), ({ client, sent }) =>
      Effect.gen(function*() {
        const p = yield* client.listMultipartUploads({ prefix: "backup/", delimiter: "/", maxUploads: 2 })
        assert.deepStrictEqual([p.isTruncated, p.nextKeyMarker, p.nextUploadIdMarker], [
          true,
          "backup/db dump.tar",
          id1
        ])
        assert.deepStrictEqual(p.commonPrefixes, ["backup/2024+/"])
        assert.deepStrictEqual([p.keyMarker, p.uploadIdMarker, p.maxUploads, p.prefix, p.delimiter], [
          "",
          "",
          2,
          "backup/",
          "/"
        ])
        const u = p.uploads[0]!
        assert.deepStrictEqual([u.key, u.uploadId, u.storageClass], ["backup/db dump.tar", id1, "STANDARD"])
        assert.strictEqual(u.initiated.toISOString(), "2024-05-20T08:15:02.000Z")
        assert.strictEqual(u.initiator?.displayName, "100000000011")
        const [req] = yield* sent
        assert.strictEqual(
          req!.url.search,
          "?uploads&delimiter=%2F&encoding-type=url&max-uploads=2&prefix=backup%2F"
        )
        assert.isTrue(verifySignature(req!).ok)
      })))

  it.effect("the stream sends both markers back, decoded, and reads 2017 spellings and asctime as UTC", () =>
    withClient(
      (_, n) =>
        xml(
          n === 0
            ? page([["a%20b", id1]], ["a%20b", id1])
            : page([["a%20b", id2], ["c%0Ad", id1]])
        ),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const all = Chunk.toReadonlyArray(yield* Stream.runCollect(client.listMultipartUploadsStream()))
          assert.deepStrictEqual(all.map((u) => [u.key, u.uploadId]), [["a b", id1], ["a b", id2], ["c\nd", id1]])
          assert.strictEqual(all[0]!.initiated.toISOString(), "2017-01-18T16:04:17.000Z")
          const second = (yield* sent)[1]!
          assert.strictEqual(second.url.searchParams.get("key-marker"), "a b")
          assert.strictEqual(second.url.searchParams.get("upload-id-marker"), id1)
        })
    ))

  it.effect("the stream fails with CosDecodeError on markers that do not advance or are missing", () =>
    Effect.gen(function*() {
      const stuck = yield* withClient(
        () => xml(page([["a", id1]], ["a", id1])),
        ({ client }) =>
          Effect.flip(Stream.runDrain(client.listMultipartUploadsStream({ keyMarker: "a", uploadIdMarker: id1 })))
      )
      assert.strictEqual(stuck._tag, "CosDecodeError")
      assert.match((stuck as { detail: string }).detail, /do not advance/)
      const backwards = yield* withClient(
        () => xml(page([["a", id1]], ["a", id1])),
        ({ client }) => Effect.flip(Stream.runDrain(client.listMultipartUploadsStream({ keyMarker: "b" })))
      )
      assert.strictEqual(backwards._tag, "CosDecodeError")
      const noMarkers = yield* withClient(
        () =>
          xml(
            `<ListMultipartUploadsResult><IsTruncated>true</IsTruncated><Upload><Key>a</Key><UploadId>${id1}</UploadId>` +
              `<Initiated>2024-05-20T08:15:02.000Z</Initiated></Upload></ListMultipartUploadsResult>`
          ),
        ({ client }) => Effect.flip(Stream.runDrain(client.listMultipartUploadsStream()))
      )
      assert.strictEqual(noMarkers._tag, "CosDecodeError")
      assert.match((noMarkers as { detail: string }).detail, /without NextKeyMarker and NextUploadIdMarker/)
    }))

  it.effect("complete: an <Error> after keep-alive whitespace inside a 200 fails with its code", () =>
    withClient(
      () =>
        xml(
          "\n   \n  <?xml version='1.0' encoding='utf-8' ?><Error><Code>InvalidPart</Code><Message>no</Message></Error>"
        ),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const e = yield* Effect.flip(
            client.completeMultipartUpload({ key: "k", uploadId: id1, parts: [{ partNumber: 1, etag: "abc" }] })
          )
          assert.deepStrictEqual([e._tag, (e as { code?: string }).code], ["CosServiceError", "InvalidPart"])
          const req = (yield* sent)[0]!
          // The ETag is quoted as Upload Part returned it.
          assert.strictEqual(
            req.body,
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"abc\"</ETag></Part></CompleteMultipartUpload>"
          )
          assert.ok(req.headers["content-md5"])
          assert.strictEqual(req.url.search, `?uploadId=${id1}`)
        })
    ))

  it.effect("complete: a 200 result without ETag is not a success", () =>
    withClient(
      () => xml("<CompleteMultipartUploadResult><Key>k</Key></CompleteMultipartUploadResult>"),
      ({ client }) =>
        Effect.gen(function*() {
          const e = yield* Effect.flip(
            client.completeMultipartUpload({ key: "k", uploadId: id1, parts: [{ partNumber: 1, etag: "\"abc\"" }] })
          )
          assert.strictEqual(e._tag, "CosDecodeError")
        })
    ))

  it.effect("abort: 204 succeeds, a body-less 404 is NoSuchUpload, and a 404 is not retried", () =>
    withClient(
      (_, n) => (n === 0 ? empty(204) : empty(404)),
      ({ client, sent }) =>
        Effect.gen(function*() {
          yield* client.abortMultipartUpload({ key: "a b/c", uploadId: id1 })
          const e = yield* Effect.flip(client.abortMultipartUpload({ key: "a b/c", uploadId: id1 }))
          assert.deepStrictEqual([e._tag, (e as { code?: string }).code], ["CosServiceError", "NoSuchUpload"])
          const all = yield* sent
          assert.strictEqual(all.length, 2)
          assert.deepStrictEqual([all[0]!.method, all[0]!.url.pathname], ["DELETE", "/a%20b/c"])
        })
    ))

  it.effect("listParts reads ListPartsResult in any encoding-type spelling", () =>
    withClient(
      () =>
        xml(
          `<ListPartsResult><Bucket>examplebucket-1250000000</Bucket><Encoding-type>url</Encoding-type>` +
            `<Key>a%20b</Key><UploadId>${id1}</UploadId><StorageClass>Standard</StorageClass>` +
            `<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>` +
            `<MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>` +
            `<Part><PartNumber>1</PartNumber><LastModified>Wed Jan 18 16:04:17 2017</LastModified>` +
            `<ETag>&quot;x&quot;</ETag><Size>1048576</Size></Part>` +
            `<Part><PartNumber>2</PartNumber><LastModified>2020-05-20T08:15:02.000Z</LastModified>` +
            `<ETag>&quot;y&quot;</ETag><Size>5</Size></Part></ListPartsResult>`
        ),
      ({ client }) =>
        Effect.gen(function*() {
          const p = yield* client.listParts({ key: "a b", uploadId: id1, maxParts: 2 })
          assert.deepStrictEqual([p.key, p.storageClass, p.isTruncated, p.nextPartNumberMarker], [
            "a b",
            "STANDARD",
            true,
            2
          ])
          assert.deepStrictEqual(p.parts.map((x) => [x.partNumber, x.etag, x.size]), [[1, "\"x\"", 1048576], [
            2,
            "\"y\"",
            5
          ]])
        })
    ))

  it.effect("refuses bad input before any request", () =>
    withClient(() => empty(500), ({ client, sent }) =>
      Effect.gen(function*() {
        const errors = [
          yield* Effect.flip(client.listMultipartUploads({ maxUploads: 0 })),
          yield* Effect.flip(client.uploadPart({ key: "k", uploadId: "", partNumber: 1, body: "" })),
          yield* Effect.flip(client.uploadPart({ key: "k", uploadId: id1, partNumber: 0, body: "" })),
          yield* Effect.flip(client.completeMultipartUpload({ key: "k", uploadId: id1, parts: [] })),
          yield* Effect.flip(client.abortMultipartUpload({ key: "", uploadId: id1 }))
        ]
        assert.deepStrictEqual(errors.map((e) => e._tag), Array(5).fill("CosInvalidRequest"))
        assert.strictEqual((yield* sent).length, 0)
      })))
})
