import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as CosClient from "../src/CosClient.js"
import { verifySignature, withClient } from "./support/client.js"
import { xml } from "./support/mockHttp.js"

// docs/protocol.md §3 GET Bucket, with encoding-type=url
const page1 = `<?xml version='1.0' encoding='utf-8' ?>
<ListBucketResult>
  <Name>examplebucket-1250000000</Name>
  <EncodingType>url</EncodingType>
  <Prefix/>
  <Marker/>
  <MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextMarker>%E7%85%A7%E7%89%87/2020%E5%B9%B4/IMG0001.jpg</NextMarker>
  <Contents>
    <Key>Tencent%20Cloud.jpg</Key>
    <LastModified>2020-12-10T03:37:30.000Z</LastModified>
    <ETag>&quot;f173c1199e3d3b53dd91223cae16fb42&quot;</ETag>
    <Size>37</Size>
    <Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>%E7%85%A7%E7%89%87/2020%E5%B9%B4/IMG0001.jpg</Key>
    <LastModified>2020-12-10T03:37:31.000Z</LastModified>
    <ETag>&quot;67e4d6bc1d1bd8bbe5e8aab3c2ba7f7c&quot;</ETag>
    <Size>1024</Size>
    <Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>
    <StorageClass>STANDARD_IA</StorageClass>
  </Contents>
</ListBucketResult>`

const contents = (key: string) =>
  `<Contents><Key>${key}</Key><LastModified>2020-12-10T03:37:32.000Z</LastModified><ETag>&quot;x&quot;</ETag>` +
  `<Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>`

const listPage = (keys: ReadonlyArray<string>, next?: string, extra = "") =>
  `<?xml version='1.0' encoding='utf-8' ?>
<ListBucketResult><Name>examplebucket-1250000000</Name><EncodingType>url</EncodingType><Prefix/><Marker/>
<MaxKeys>1000</MaxKeys><IsTruncated>${next !== undefined}</IsTruncated>${
    next === undefined ? "" : `<NextMarker>${next}</NextMarker>`
  }${extra}${keys.map(contents).join("")}</ListBucketResult>`

const page2 = listPage(["z%2Bz"])

describe("CosClient.listObjects", () => {
  it.effect("sends encoding-type=url and decodes keys, markers and fields", () =>
    withClient(() => xml(page1), ({ client, sent }) =>
      Effect.gen(function*() {
        const page = yield* client.listObjects({ prefix: "照片/", maxKeys: 2 })
        assert.strictEqual(page.name, "examplebucket-1250000000")
        assert.strictEqual(page.isTruncated, true)
        assert.strictEqual(page.maxKeys, 2)
        assert.strictEqual(page.nextMarker, "照片/2020年/IMG0001.jpg")
        assert.deepStrictEqual(page.contents.map((o) => o.key), ["Tencent Cloud.jpg", "照片/2020年/IMG0001.jpg"])
        assert.deepStrictEqual(page.contents[0], {
          key: "Tencent Cloud.jpg",
          lastModified: new Date("2020-12-10T03:37:30.000Z"),
          etag: "\"f173c1199e3d3b53dd91223cae16fb42\"",
          size: 37,
          storageClass: "STANDARD"
        })
        assert.strictEqual(page.contents[1]!.storageClass, "STANDARD_IA")
        const [request] = yield* sent
        assert.strictEqual(request!.method, "GET")
        assert.strictEqual(request!.url.host, "examplebucket-1250000000.cos.ap-beijing.myqcloud.com")
        assert.strictEqual(request!.url.protocol, "https:")
        assert.strictEqual(request!.url.pathname, "/")
        assert.strictEqual(request!.url.search, "?encoding-type=url&max-keys=2&prefix=%E7%85%A7%E7%89%87%2F")
        assert.isTrue(verifySignature(request!).ok)
        assert.deepStrictEqual(verifySignature(request!).parsed!.urlParamList, ["encoding-type", "max-keys", "prefix"])
      })))

  it.effect("decodes Prefix, Marker and CommonPrefixes with a delimiter (doc example)", () =>
    withClient(
      () =>
        xml(`<?xml version='1.0' encoding='utf-8' ?>
<ListBucketResult>
  <Name>examplebucket-1250000000</Name>
  <EncodingType>url</EncodingType>
  <Prefix>%E7%85%A7%E7%89%87/</Prefix>
  <Marker>%E7%85%A7%E7%89%87/2019%E5%B9%B4/</Marker>
  <MaxKeys>1000</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>false</IsTruncated>
  <CommonPrefixes><Prefix>%E7%85%A7%E7%89%87/2020%E5%B9%B4/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>%E7%85%A7%E7%89%87/%E5%A4%B4%20%E5%83%8F/</Prefix></CommonPrefixes>
</ListBucketResult>`),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const page = yield* client.listObjects({ prefix: "照片/", delimiter: "/", marker: "照片/2019年/" })
          assert.strictEqual(page.prefix, "照片/")
          assert.strictEqual(page.marker, "照片/2019年/")
          assert.strictEqual(page.delimiter, "/")
          assert.strictEqual(page.nextMarker, undefined)
          assert.deepStrictEqual(page.commonPrefixes, ["照片/2020年/", "照片/头 像/"])
          assert.deepStrictEqual(page.contents, [])
          const [request] = yield* sent
          assert.strictEqual(request!.url.searchParams.get("delimiter"), "/")
          assert.strictEqual(request!.url.searchParams.get("marker"), "照片/2019年/")
        })
    ))

  it.effect("leaves keys as they are when COS did not url-encode them", () =>
    withClient(
      () =>
        xml(
          `<ListBucketResult><Name>b</Name><Prefix/><Marker/><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${
            contents("100%25 &amp; a%20b")
          }</ListBucketResult>`
        ),
      ({ client }) =>
        Effect.gen(function*() {
          const page = yield* client.listObjects()
          assert.deepStrictEqual(page.contents.map((c) => c.key), ["100%25 & a%20b"])
        })
    ))

  it.effect("decodes entities, CDATA and numeric references through the general parser", () =>
    withClient(
      () =>
        xml(
          `<ListBucketResult><!-- a comment sends this page to the general parser --><Name>b</Name><Prefix/><Marker/>` +
            `<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>${contents("<![CDATA[a&b]]>")}${
              contents("&#x41;&#66;&lt;")
            }</ListBucketResult>`
        ),
      ({ client }) =>
        Effect.gen(function*() {
          const page = yield* client.listObjects()
          assert.deepStrictEqual(page.contents.map((c) => c.key), ["a&b", "AB<"])
        })
    ))

  it.effect("fails with CosServiceError on COS's XML error (NoSuchBucket)", () =>
    withClient(
      () =>
        xml(
          `<?xml version='1.0' encoding='utf-8' ?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist.</Message><Resource>examplebucket-1250000000.cos.ap-beijing.myqcloud.com</Resource><RequestId>NjQ0NTRjY2ZfNTIzNjFj</RequestId><TraceId>OGVmYzZiMmQzYjA2OWNh</TraceId></Error>`,
          404
        ),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(client.listObjects())
          assert.strictEqual((yield* sent).length, 1)
          assert.strictEqual(error._tag, "CosServiceError")
          if (error._tag === "CosServiceError") {
            assert.strictEqual(error.code, "NoSuchBucket")
            assert.strictEqual(error.status, 404)
            assert.strictEqual(error.cosMessage, "The specified bucket does not exist.")
            assert.include(error.message, "NoSuchBucket")
          }
        })
    ))

  it.effect("takes the request id from x-cos-request-id when the body has none", () =>
    withClient(
      () => xml(`<Error><Code>InvalidArgument</Code><Message>bad max-keys</Message></Error>`, 400),
      ({ client }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(client.listObjects())
          assert.strictEqual(error._tag === "CosServiceError" && error.requestId, "NWQ1ZjY0MTRfMjBiZTI4MDlfNTRkMl8x")
        })
    ))

  it.effect("reports a 200 HTML page as CosDecodeError, without retrying", () =>
    withClient(
      () =>
        new Response("<!DOCTYPE html><html><body>Please log in to the Wi-Fi</body></html>", {
          status: 200,
          headers: { "content-type": "text/html; charset=utf-8" }
        }),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(client.listObjects())
          assert.strictEqual((yield* sent).length, 1)
          assert.strictEqual(error._tag, "CosDecodeError")
          if (error._tag === "CosDecodeError") {
            assert.include(error.detail, "HTML page")
            assert.include(error.bodySnippet, "Wi-Fi")
            assert.strictEqual(error.contentType, "text/html; charset=utf-8")
          }
        })
    ))

  it.effect("reports truncated XML as CosDecodeError with a readable detail and a short snippet", () =>
    withClient(() => xml(page1.slice(0, 600) + "x".repeat(1000)), ({ client }) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(client.listObjects())
        assert.strictEqual(error._tag, "CosDecodeError")
        if (error._tag === "CosDecodeError") {
          assert.include(error.detail, "not well-formed XML")
          assert.isTrue(error.bodySnippet.length <= 301)
          assert.include(error.message, "could not read the 200 answer")
        }
      })))

  it.effect("reports wrong content (JSON, another document, bad fields) as CosDecodeError", () =>
    Effect.gen(function*() {
      const bodies: ReadonlyArray<readonly [string, string]> = [
        ["{\"Contents\":[]}", "not well-formed XML"],
        ["<DeleteResult/>", "expected a <ListBucketResult> document"],
        [listPage([]).replace("<IsTruncated>false</IsTruncated>", ""), "IsTruncated is missing"],
        [listPage(["a"]).replace("<Size>0</Size>", "<Size>many</Size>"), "Size \"many\""],
        [listPage(["a"]).replace("2020-12-10T03:37:32.000Z", "yesterday"), "LastModified \"yesterday\""],
        [listPage(["%E7%85"]), "not valid url-encoding"],
        [listPage(["a"]).replace("<Key>a</Key>", ""), "has no <Key>"],
        ["", "empty body"]
      ]
      for (const [body, detail] of bodies) {
        const error = yield* withClient(() => xml(body), ({ client }) => Effect.flip(client.listObjects()))
        assert.strictEqual(error._tag, "CosDecodeError", body)
        if (error._tag === "CosDecodeError") assert.include(error.detail, detail)
      }
    }))

  it.effect("reports an <Error> inside a 200 as CosServiceError", () =>
    withClient(
      () => xml(`<Error><Code>InternalError</Code><Message>oops</Message></Error>`),
      ({ client }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(client.listObjects())
          assert.strictEqual(error._tag === "CosServiceError" && error.code, "InternalError")
        })
    ))

  it.effect("refuses invalid input before sending anything", () =>
    withClient(() => xml(page1), ({ client, sent }) =>
      Effect.gen(function*() {
        const inputs: ReadonlyArray<CosClient.ListObjectsInput> = [
          { bucket: "Example-1250000000" },
          { bucket: "examplebucket" },
          { bucket: "-examplebucket-1250000000" },
          { bucket: "examplebucket--1250000000" },
          { bucket: "a".repeat(40) + "-1250000000" },
          { maxKeys: 0 },
          { maxKeys: 1001 },
          { maxKeys: 1.5 },
          { prefix: "bad\uD800" }
        ]
        for (const input of inputs) {
          const error = yield* Effect.flip(client.listObjects(input))
          assert.strictEqual(error._tag, "CosInvalidRequest", JSON.stringify(input))
        }
        assert.strictEqual((yield* sent).length, 0)
      })))

  it.effect("needs a bucket when the client has no default", () =>
    withClient(() => xml(page1), ({ client, sent }) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(client.listObjects())
        assert.strictEqual(error._tag, "CosInvalidRequest")
        assert.include(error.message, "no bucket")
        assert.strictEqual((yield* sent).length, 0)
        yield* client.listObjects({ bucket: "examplebucket-1250000000" })
      }), { bucket: undefined }))
})

describe("CosClient.listObjectsStream", () => {
  it.effect("streams every page via NextMarker", () =>
    withClient((_, n) => xml(n === 0 ? page1 : page2), ({ client, sent }) =>
      Effect.gen(function*() {
        const keys = yield* client.listObjectsStream({ prefix: "p/", maxKeys: 2 }).pipe(
          Stream.map((o) => o.key),
          Stream.runCollect
        )
        assert.deepStrictEqual(Chunk.toReadonlyArray(keys), ["Tencent Cloud.jpg", "照片/2020年/IMG0001.jpg", "z+z"])
        const requests = yield* sent
        assert.strictEqual(requests.length, 2)
        assert.strictEqual(requests[0]!.url.searchParams.get("marker"), null)
        assert.strictEqual(requests[1]!.url.searchParams.get("marker"), "照片/2020年/IMG0001.jpg")
        assert.strictEqual(requests[1]!.url.searchParams.get("prefix"), "p/")
        assert.strictEqual(requests[1]!.url.searchParams.get("max-keys"), "2")
      })))

  it.effect("starts after the given marker", () =>
    withClient(() => xml(page2), ({ client, sent }) =>
      Effect.gen(function*() {
        yield* Stream.runDrain(client.listObjectsStream({ marker: "m" }))
        assert.strictEqual((yield* sent)[0]!.url.searchParams.get("marker"), "m")
      })))

  it.effect("stops at the first key >= endBefore, mid-page, without fetching further pages", () =>
    withClient(() => xml(listPage(["a", "b", "c", "d"], "d")), ({ client, sent }) =>
      Effect.gen(function*() {
        const keys = yield* Stream.runCollect(client.listObjectsStream({ endBefore: "c" }))
        assert.deepStrictEqual(Chunk.toReadonlyArray(keys).map((o) => o.key), ["a", "b"])
        assert.strictEqual((yield* sent).length, 1)
      })))

  it.effect("stops when NextMarker reaches endBefore", () =>
    withClient(
      (_, n) => xml(n < 2 ? listPage(["a", "b"], "b") : listPage(["c"])),
      ({ client, sent }) =>
        Effect.gen(function*() {
          const keys = yield* Stream.runCollect(client.listObjectsStream({ endBefore: "b" }))
          assert.deepStrictEqual(Chunk.toReadonlyArray(keys).map((o) => o.key), ["a"])
          assert.strictEqual((yield* sent).length, 1)
          const keys2 = yield* Stream.runCollect(client.listObjectsStream({ endBefore: "b0" }))
          assert.deepStrictEqual(Chunk.toReadonlyArray(keys2).map((o) => o.key), ["a", "b"])
          assert.strictEqual((yield* sent).length, 3)
          const keys3 = yield* Stream.runCollect(client.listObjectsStream({ endBefore: "a" }))
          assert.deepStrictEqual(Chunk.toReadonlyArray(keys3), [])
        })
    ))

  it.effect("compares endBefore in UTF-8 byte order (astral characters after U+FFxx)", () =>
    withClient(() => xml(listPage(["%EF%BD%81", "%F0%9F%98%80"])), ({ client }) =>
      Effect.gen(function*() {
        // "ａ" (U+FF41) < "😀" (U+1F600) in UTF-8, although "\uD83D" < "\uFF41" in UTF-16
        const keys = yield* Stream.runCollect(client.listObjectsStream({ endBefore: "😀" }))
        assert.deepStrictEqual(Chunk.toReadonlyArray(keys).map((o) => o.key), ["ａ"])
        assert.isTrue(CosClient.compareKeys("ａ", "😀") < 0)
        assert.isTrue("ａ" > "😀")
      })))

  it.effect("fails instead of looping when NextMarker does not advance", () =>
    withClient(() => xml(listPage(["a", "b"], "a")), ({ client, sent }) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Stream.runDrain(client.listObjectsStream({ marker: "a" })))
        assert.strictEqual(error._tag, "CosDecodeError")
        assert.include(error.message, "does not advance")
        assert.strictEqual((yield* sent).length, 1)
      })))

  it.effect("propagates a page's error into the stream", () =>
    withClient(
      (_, n) => n === 0 ? xml(page1) : xml(`<Error><Code>AccessDenied</Code><Message>no</Message></Error>`, 403),
      ({ client }) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(Stream.runDrain(client.listObjectsStream()))
          assert.strictEqual(error._tag === "CosServiceError" && error.code, "AccessDenied")
        })
    ))
})

// docs/protocol.md §3 GET Bucket Object Versions
const versionsPage1 = `<?xml version='1.0' encoding='utf-8' ?>
<ListVersionsResult>
  <EncodingType>url</EncodingType>
  <Name>examplebucket-1250000000</Name>
  <Prefix/>
  <KeyMarker/>
  <VersionIdMarker/>
  <MaxKeys>3</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextKeyMarker>a%20b</NextKeyMarker>
  <NextVersionIdMarker/>
  <Version>
    <Key>a%20a</Key>
    <VersionId>MTg0NDUxNzgyODk2ODc1NjY0NzQ</VersionId>
    <IsLatest>true</IsLatest>
    <LastModified>2020-12-10T03:37:30.000Z</LastModified>
    <ETag>&quot;f173c1199e3d3b53dd91223cae16fb42&quot;</ETag>
    <Size>37</Size>
    <StorageClass>STANDARD</StorageClass>
    <Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>
  </Version>
  <DeleteMarker>
    <Key>a%20b</Key>
    <VersionId>MTg0NDUxNzgyODk2ODc1NjY0NzU</VersionId>
    <IsLatest>true</IsLatest>
    <LastModified>2020-12-11T03:37:30.000Z</LastModified>
    <Owner><ID>1250000000</ID><DisplayName>1250000000</DisplayName></Owner>
  </DeleteMarker>
  <Version>
    <Key>a%20b</Key>
    <VersionId>null</VersionId>
    <IsLatest>false</IsLatest>
    <LastModified>2020-12-09T03:37:30.000Z</LastModified>
    <ETag>&quot;67e4d6bc1d1bd8bbe5e8aab3c2ba7f7c&quot;</ETag>
    <Size>5</Size>
    <StorageClass>STANDARD_IA</StorageClass>
  </Version>
</ListVersionsResult>`

const versionsPage2 = `<ListVersionsResult><EncodingType>url</EncodingType><Name>examplebucket-1250000000</Name>
<Prefix/><KeyMarker>a%20b</KeyMarker><VersionIdMarker/><MaxKeys>3</MaxKeys><IsTruncated>false</IsTruncated>
<Version><Key>c</Key><VersionId/><IsLatest>true</IsLatest><LastModified>2020-12-10T03:37:30.000Z</LastModified>
<ETag>&quot;x&quot;</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Version></ListVersionsResult>`

describe("CosClient.listObjectVersions", () => {
  it.effect("decodes versions and delete markers in listing order", () =>
    withClient(() => xml(versionsPage1), ({ client, sent }) =>
      Effect.gen(function*() {
        const page = yield* client.listObjectVersions({ prefix: "a", maxKeys: 3 })
        assert.strictEqual(page.isTruncated, true)
        assert.strictEqual(page.nextKeyMarker, "a b")
        assert.strictEqual(page.nextVersionIdMarker, "")
        assert.deepStrictEqual(page.versions.map((v) => [v._tag, v.key, v.versionId, v.isLatest]), [
          ["Version", "a a", "MTg0NDUxNzgyODk2ODc1NjY0NzQ", true],
          ["DeleteMarker", "a b", "MTg0NDUxNzgyODk2ODc1NjY0NzU", true],
          ["Version", "a b", "null", false]
        ])
        const v = page.versions[2]!
        assert.isTrue(v._tag === "Version" && v.size === 5 && v.storageClass === "STANDARD_IA")
        assert.strictEqual(page.versions[1]!.lastModified.toISOString(), "2020-12-11T03:37:30.000Z")
        const [request] = yield* sent
        assert.strictEqual(request!.url.search, "?versions&encoding-type=url&max-keys=3&prefix=a")
        assert.isTrue(verifySignature(request!).ok)
      })))

  it.effect("streams pages with key-marker and an empty version-id-marker", () =>
    withClient((_, n) => xml(n === 0 ? versionsPage1 : versionsPage2), ({ client, sent }) =>
      Effect.gen(function*() {
        const all = yield* Stream.runCollect(client.listObjectVersionsStream({ prefix: "a" }))
        assert.deepStrictEqual(Chunk.toReadonlyArray(all).map((v) => `${v._tag}:${v.key}:${v.versionId}`), [
          "Version:a a:MTg0NDUxNzgyODk2ODc1NjY0NzQ",
          "DeleteMarker:a b:MTg0NDUxNzgyODk2ODc1NjY0NzU",
          "Version:a b:null",
          "Version:c:"
        ])
        const requests = yield* sent
        assert.strictEqual(requests.length, 2)
        assert.include(requests[1]!.url.search, "key-marker=a%20b")
        assert.include(requests[1]!.url.search, "&version-id-marker=")
        assert.strictEqual(requests[1]!.url.searchParams.get("version-id-marker"), "")
        const check = verifySignature(requests[1]!)
        assert.isTrue(check.ok)
        assert.include(check.parsed!.urlParamList, "version-id-marker")
      })))

  it.effect("sends a non-empty NextVersionIdMarker back as version-id-marker", () =>
    withClient(
      (_, n) =>
        xml(
          n === 0
            ? versionsPage1.replace("<NextVersionIdMarker/>", "<NextVersionIdMarker>MTg0NDU</NextVersionIdMarker>")
            : versionsPage2
        ),
      ({ client, sent }) =>
        Effect.gen(function*() {
          yield* Stream.runDrain(client.listObjectVersionsStream())
          assert.strictEqual((yield* sent)[1]!.url.searchParams.get("version-id-marker"), "MTg0NDU")
        })
    ))

  it.effect("fails with CosDecodeError on a malformed versions page", () =>
    withClient(() => xml(versionsPage1.replace("<IsLatest>true</IsLatest>", "<IsLatest>maybe</IsLatest>")), ({
      client
    }) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(client.listObjectVersions())
        assert.strictEqual(error._tag, "CosDecodeError")
        assert.include(error.message, "IsLatest")
      })))

  it.effect("fails with CosServiceError on COS errors and refuses bad input", () =>
    withClient(() => xml(`<Error><Code>NoSuchBucket</Code><Message>none</Message></Error>`, 404), ({
      client,
      sent
    }) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(client.listObjectVersions())
        assert.strictEqual(error._tag === "CosServiceError" && error.code, "NoSuchBucket")
        const invalid = yield* Effect.flip(client.listObjectVersions({ maxKeys: 5000 }))
        assert.strictEqual(invalid._tag, "CosInvalidRequest")
        assert.strictEqual((yield* sent).length, 1)
      })))
})
