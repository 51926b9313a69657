import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as CosClient from "../src/CosClient.js"
import * as Credentials from "../src/Credentials.js"
import { makeMock, type Reply, type Sent, xml } from "./support/mockHttp.js"

const credentials = Credentials.fromStatic({
  secretId: "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q",
  secretKey: Redacted.make("BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz")
})

const options: CosClient.Options = {
  region: "ap-beijing",
  bucket: "examplebucket-1250000000",
  credentials,
  retry: { attempts: 3, baseDelay: "100 millis" }
}

const withClient = <A, E>(
  handler: (sent: Sent, n: number) => Reply,
  f: (client: CosClient.CosClient, sent: () => Effect.Effect<ReadonlyArray<Sent>>) => Effect.Effect<A, E>,
  opts: CosClient.Options = options
) =>
  Effect.gen(function*() {
    const mock = yield* makeMock(handler)
    const client = yield* CosClient.make(opts).pipe(Effect.provide(mock.layer))
    return yield* f(client, () => Ref.get(mock.sent))
  })

// cos-api.md §3 GET Bucket example, with encoding-type=url
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

const page2 = `<?xml version='1.0' encoding='utf-8' ?>
<ListBucketResult><Name>examplebucket-1250000000</Name><EncodingType>url</EncodingType><Prefix/>
<Marker>%E7%85%A7%E7%89%87/2020%E5%B9%B4/IMG0001.jpg</Marker><MaxKeys>2</MaxKeys><IsTruncated>false</IsTruncated>
<Contents><Key>z%2Bz</Key><LastModified>2020-12-10T03:37:32.000Z</LastModified><ETag>&quot;x&quot;</ETag><Size>0</Size>
<StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>`

describe("CosClient.listObjects", () => {
  it.effect("sends encoding-type=url and decodes keys, markers and common prefixes", () =>
    withClient(() => xml(page1), (client, sent) =>
      Effect.gen(function*() {
        const page = yield* client.listObjects({ prefix: "照片/", maxKeys: 2 })
        assert.strictEqual(page.isTruncated, true)
        assert.strictEqual(page.nextMarker, "照片/2020年/IMG0001.jpg")
        assert.deepStrictEqual(page.contents.map((o) => o.key), ["Tencent Cloud.jpg", "照片/2020年/IMG0001.jpg"])
        assert.strictEqual(page.contents[0]!.etag, "\"f173c1199e3d3b53dd91223cae16fb42\"")
        assert.strictEqual(page.contents[1]!.size, 1024)
        assert.strictEqual(page.contents[1]!.storageClass, "STANDARD_IA")
        assert.strictEqual(page.contents[0]!.lastModified.toISOString(), "2020-12-10T03:37:30.000Z")
        const [request] = yield* sent()
        assert.strictEqual(request!.method, "GET")
        assert.strictEqual(request!.url.host, "examplebucket-1250000000.cos.ap-beijing.myqcloud.com")
        assert.strictEqual(request!.url.protocol, "https:")
        assert.strictEqual(request!.url.search, "?encoding-type=url&max-keys=2&prefix=%E7%85%A7%E7%89%87%2F")
        assert.match(
          request!.headers["authorization"]!,
          /^q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&/
        )
        assert.match(request!.headers["authorization"]!, /q-url-param-list=encoding-type;max-keys;prefix&/)
      })))

  it.effect("streams every page via NextMarker", () =>
    withClient((_, n) => xml(n === 0 ? page1 : page2), (client, sent) =>
      Effect.gen(function*() {
        const keys = yield* client.listObjectsStream({ maxKeys: 2 }).pipe(Stream.map((o) => o.key), Stream.runCollect)
        assert.deepStrictEqual(Chunk.toReadonlyArray(keys), ["Tencent Cloud.jpg", "照片/2020年/IMG0001.jpg", "z+z"])
        const requests = yield* sent()
        assert.strictEqual(requests.length, 2)
        assert.strictEqual(requests[1]!.url.searchParams.get("marker"), "照片/2020年/IMG0001.jpg")
      })))
})

describe("CosClient.deleteObjects", () => {
  it.effect("builds the Delete body with Content-MD5 and reads per-key results", () =>
    withClient(
      () =>
        xml(`<?xml version='1.0' encoding='utf-8' ?>
<DeleteResult><Deleted><Key>a&amp;b</Key></Deleted><Error><Key>c</Key><Code>PathConflict</Code><Message>conflict</Message></Error></DeleteResult>`),
      (client, sent) =>
        Effect.gen(function*() {
          const result = yield* client.deleteObjects({ objects: [{ key: "a&b" }, { key: "c" }, { key: "d" }] })
          assert.deepStrictEqual(result.deleted.map((d) => d.key), ["a&b"])
          assert.deepStrictEqual(result.errors.map((d) => [d.key, d.code]), [["c", "PathConflict"]])
          assert.deepStrictEqual(result.missing, [{ key: "d" }])
          const [request] = yield* sent()
          assert.strictEqual(
            request!.body,
            "<Delete><Quiet>false</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object><Object><Key>d</Key></Object></Delete>"
          )
          assert.strictEqual(request!.url.search, "?delete")
          assert.strictEqual(request!.headers["content-type"], "application/xml")
        })
    ))
})
