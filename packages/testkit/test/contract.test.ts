// One contract, two ways in: the in-process HttpClient and the socket server answer the same.
import { CosFake, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { createHash } from "node:crypto"
import type { Transport } from "./utils/transport.js"
import { deleteBody, inProcess, socket, tag, tags, unescapeXml } from "./utils/transport.js"

const ways: ReadonlyArray<readonly [string, (o?: CosFake.Options) => Effect.Effect<Transport, unknown, Scope.Scope>]> =
  [
    ["in-process", inProcess],
    ["socket", socket]
  ]

const put = (t: Transport, key: string, body = "x") => t.send({ method: "PUT", key, body })

describe.each(ways)("contract (%s)", (_name, make) => {
  const withFake = <A>(f: (t: Transport) => Effect.Effect<A, unknown>, options?: CosFake.Options) =>
    Effect.scoped(Effect.flatMap(make(options), f))

  it.live("PUT then HEAD and GET return the object with COS headers", () =>
    withFake((t) =>
      Effect.gen(function*() {
        const r = yield* put(t, "dir/hello.txt", "hello")
        assert.strictEqual(r.status, 200)
        const md5 = createHash("md5").update("hello").digest("hex")
        assert.strictEqual(r.headers["etag"], `"${md5}"`)
        assert.strictEqual(r.headers["server"], "tencent-cos")
        assert.ok(r.headers["x-cos-request-id"])
        assert.ok(r.headers["date"])
        const h = yield* t.send({ method: "HEAD", key: "dir/hello.txt" })
        assert.strictEqual(h.status, 200)
        assert.strictEqual(h.headers["content-length"], "5")
        assert.strictEqual(h.headers["etag"], `"${md5}"`)
        assert.strictEqual(h.body, "")
        const g = yield* t.send({ method: "GET", key: "dir/hello.txt" })
        assert.strictEqual(g.body, "hello")
      })
    ))

  it.live("conditional HEAD/GET (304, 412) and Range (206, 416)", () =>
    withFake((t) =>
      Effect.gen(function*() {
        const etag = (yield* put(t, "r", "0123456789")).headers["etag"]!
        const head = (headers: Record<string, string>) => t.send({ method: "HEAD", key: "r", headers })
        assert.strictEqual((yield* head({ "if-none-match": etag })).status, 304)
        assert.strictEqual((yield* head({ "if-match": "\"other\"" })).status, 412)
        assert.strictEqual((yield* head({ "if-match": etag })).status, 200)
        const future = new Date(Date.now() + 3_600_000).toUTCString()
        const past = new Date(Date.now() - 3_600_000).toUTCString()
        assert.strictEqual((yield* head({ "if-modified-since": future })).status, 304)
        assert.strictEqual((yield* head({ "if-modified-since": past })).status, 200)
        assert.strictEqual((yield* head({ "if-unmodified-since": past })).status, 412)
        const part = yield* t.send({ method: "GET", key: "r", headers: { range: "bytes=2-4" } })
        assert.deepStrictEqual([part.status, part.body, part.headers["content-range"]], [206, "234", "bytes 2-4/10"])
        const suffix = yield* t.send({ method: "GET", key: "r", headers: { range: "bytes=-3" } })
        assert.strictEqual(suffix.body, "789")
        const bad = yield* t.send({ method: "GET", key: "r", headers: { range: "bytes=20-" } })
        assert.strictEqual(bad.status, 416)
      })
    ))

  it.live("a missing key: HEAD 404 without body, GET 404 NoSuchKey as COS XML", () =>
    withFake((t) =>
      Effect.gen(function*() {
        const h = yield* t.send({ method: "HEAD", key: "nope" })
        assert.strictEqual(h.status, 404)
        assert.strictEqual(h.body, "")
        const g = yield* t.send({ method: "GET", key: "nope" })
        assert.strictEqual(g.status, 404)
        assert.strictEqual(tag(g.body, "Code"), "NoSuchKey")
        assert.ok(tag(g.body, "Message"))
        assert.ok(tag(g.body, "Resource")?.endsWith("/nope"))
        assert.strictEqual(tag(g.body, "RequestId"), g.headers["x-cos-request-id"])
        assert.strictEqual(tag(g.body, "TraceId"), g.headers["x-cos-trace-id"])
        assert.match(g.body, /^<\?xml version='1.0' encoding='utf-8' \?>\n<Error><Code>/)
      })
    ))

  it.live("GET Bucket: UTF-8 order, prefix, delimiter, marker chain via NextMarker, max-keys clamp", () =>
    withFake((t) =>
      Effect.gen(function*() {
        const keys = ["a/1", "a/2", "b", "c/d/e", "c/x", "\uFFFD", "\u{1F600}", "a b", "a+b"]
        for (const k of keys) yield* put(t, k)
        const all = yield* t.send({ method: "GET" })
        assert.deepStrictEqual(tags(all.body, "Key"), [...keys].sort(Store.compareUtf8))
        assert.strictEqual(tag(all.body, "IsTruncated"), "false")
        assert.strictEqual(tag(all.body, "NextMarker"), undefined)
        const d = yield* t.send({ method: "GET", query: [["delimiter", "/"]] })
        assert.deepStrictEqual(tags(d.body, "Prefix").slice(1), ["a/", "c/"])
        assert.deepStrictEqual(tags(d.body, "Key"), ["a b", "a+b", "b", "\uFFFD", "\u{1F600}"])
        const p = yield* t.send({ method: "GET", query: [["prefix", "c/"], ["delimiter", "/"]] })
        assert.deepStrictEqual(tags(p.body, "Key"), ["c/x"])
        assert.match(p.body, /<CommonPrefixes><Prefix>c\/d\/<\/Prefix><\/CommonPrefixes>/)
        // marker = a common prefix skips everything under it (docs/protocol.md §3)
        const m = yield* t.send({ method: "GET", query: [["delimiter", "/"], ["marker", "a/"]] })
        assert.deepStrictEqual(tags(m.body, "Prefix").slice(1), ["c/"])
        // a chain of 2-key pages yields every key once
        const seen: Array<string> = []
        let marker = ""
        for (let i = 0; i < 20; i++) {
          const page = yield* t.send({ method: "GET", query: [["max-keys", "2"], ["marker", marker]] })
          seen.push(...tags(page.body, "Key").map(unescapeXml))
          if (tag(page.body, "IsTruncated") === "false") break
          marker = unescapeXml(tag(page.body, "NextMarker")!)
        }
        assert.deepStrictEqual(seen, [...keys].sort(Store.compareUtf8))
        const big = yield* t.send({ method: "GET", query: [["max-keys", "5000"]] })
        assert.strictEqual(tag(big.body, "MaxKeys"), "1000")
        const bad = yield* t.send({ method: "GET", query: [["encoding-type", "base64"]] })
        assert.strictEqual(bad.status, 400)
      })
    ))

  it.live("encoding-type=url encodes Key, Prefix, Marker, NextMarker and CommonPrefixes", () =>
    withFake((t) =>
      Effect.gen(function*() {
        for (const k of ["照片/2020年/IMG 1.jpg", "Tencent Cloud.jpg", "x&y<z>"]) yield* put(t, k)
        const r = yield* t.send({ method: "GET", query: [["encoding-type", "url"], ["max-keys", "1"]] })
        assert.strictEqual(tag(r.body, "EncodingType"), "url")
        assert.deepStrictEqual(tags(r.body, "Key"), ["Tencent%20Cloud.jpg"])
        assert.strictEqual(tag(r.body, "NextMarker"), "Tencent%20Cloud.jpg")
        const d = yield* t.send({
          method: "GET",
          query: [["encoding-type", "url"], ["delimiter", "/"], ["prefix", "照片/"]]
        })
        assert.strictEqual(tags(d.body, "Prefix")[1], "%E7%85%A7%E7%89%87/2020%E5%B9%B4/")
        const all = yield* t.send({ method: "GET", query: [["encoding-type", "url"]] })
        assert.include(tags(all.body, "Key"), "x%26y%3Cz%3E")
      })
    ))

  it.live("both listings check encoding-type and max-keys alike; an empty delimiter is none", () =>
    withFake((t) =>
      Effect.gen(function*() {
        for (const k of ["a/1", "a/2", "b c"]) yield* put(t, k)
        for (const versions of [[], [["versions", ""]]] as const) {
          const list = (query: ReadonlyArray<readonly [string, string]>) =>
            t.send({ method: "GET", query: [...versions, ...query] })
          for (const bad of [[["encoding-type", "base64"]], [["max-keys", "ten"]], [["max-keys", "-1"]]] as const) {
            const r = yield* list(bad)
            assert.deepStrictEqual([r.status, tag(r.body, "Code")], [400, "InvalidArgument"], JSON.stringify(bad))
          }
          const url = yield* list([["encoding-type", "url"], ["max-keys", "2"], ["prefix", "b c"]])
          assert.strictEqual(tag(url.body, "EncodingType"), "url")
          assert.strictEqual(tag(url.body, "Prefix"), "b%20c")
          assert.strictEqual(tag(url.body, "MaxKeys"), "2")
          const noDelimiter = yield* list([["delimiter", ""]])
          assert.isUndefined(tag(noDelimiter.body, "Delimiter"))
          assert.deepStrictEqual(tags(noDelimiter.body, "Key"), ["a/1", "a/2", "b c"])
          const slash = yield* list([["delimiter", "/"]])
          assert.strictEqual(tag(slash.body, "Delimiter"), "/")
          assert.deepStrictEqual(tags(slash.body, "Key"), ["b c"])
        }
      })
    ))

  it.live("DELETE Object: 204 for present and absent keys", () =>
    withFake((t) =>
      Effect.gen(function*() {
        yield* put(t, "k")
        const d = yield* t.send({ method: "DELETE", key: "k" })
        assert.strictEqual(d.status, 204)
        assert.strictEqual((yield* t.send({ method: "HEAD", key: "k" })).status, 404)
        assert.strictEqual((yield* t.send({ method: "DELETE", key: "k" })).status, 204)
      })
    ))

  it.live("POST ?delete: Deleted entries (absent keys too), Quiet, and the body checks", () =>
    withFake((t) =>
      Effect.gen(function*() {
        yield* put(t, "a")
        yield* put(t, "b&c")
        const body = deleteBody([{ key: "a" }, { key: "b&c" }, { key: "never-existed" }])
        const r = yield* t.send({ method: "POST", query: [["delete", ""]], body })
        assert.strictEqual(r.status, 200)
        assert.deepStrictEqual(tags(r.body, "Key"), ["a", "b&amp;c", "never-existed"])
        assert.strictEqual((r.body.match(/<Deleted>/g) ?? []).length, 3)
        assert.deepStrictEqual(tags((yield* t.send({ method: "GET" })).body, "Key"), [])
        const q = yield* t.send({ method: "POST", query: [["delete", ""]], body: deleteBody([{ key: "z" }], true) })
        assert.match(q.body, /<DeleteResult\/>$/)
        const noMd5 = yield* t.send({ method: "POST", query: [["delete", ""]], body, contentMd5: false })
        assert.strictEqual(noMd5.status, 400)
        assert.strictEqual(tag(noMd5.body, "Code"), "InvalidRequest")
        const wrongMd5 = yield* t.send({
          method: "POST",
          query: [["delete", ""]],
          body,
          headers: { "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==" }
        })
        assert.strictEqual(tag(wrongMd5.body, "Code"), "InvalidDigest")
        const tooMany = deleteBody(Array.from({ length: 1001 }, (_, i) => ({ key: `k${i}` })))
        const r1001 = yield* t.send({ method: "POST", query: [["delete", ""]], body: tooMany })
        assert.strictEqual(r1001.status, 400)
        assert.strictEqual(tag(r1001.body, "Code"), "MalformedXML")
        const broken = yield* t.send({ method: "POST", query: [["delete", ""]], body: "<Delete><Object><Key>a</Key>" })
        assert.strictEqual(tag(broken.body, "Code"), "MalformedXML")
        const ctrl = yield* t.send({
          method: "POST",
          query: [["delete", ""]],
          body: "<Delete><Object><Key>a&#1;</Key></Object></Delete>"
        })
        assert.strictEqual(tag(ctrl.body, "Code"), "MalformedXML")
      })
    ))

  it.live("POST ?delete reads keys as an XML parser does: CRLF becomes LF, &#13; stays CR", () =>
    withFake((t) =>
      Effect.gen(function*() {
        yield* put(t, "a\nb")
        yield* put(t, "c\rd")
        const r = yield* t.send({
          method: "POST",
          query: [["delete", ""]],
          body: "<Delete><Object><Key>a\r\nb</Key></Object><Object><Key>c&#13;d</Key></Object></Delete>"
        })
        assert.strictEqual(r.status, 200)
        assert.deepStrictEqual(yield* Store.keys(t.fake.store, CosFake.testBucket), [])
      })
    ))

  it.live("versioning: versions, delete markers, listing hides marked keys, versionId delete restores", () =>
    withFake((t) =>
      Effect.gen(function*() {
        const gv0 = yield* t.send({ method: "GET", query: [["versioning", ""]] })
        assert.notInclude(gv0.body, "<Status>")
        yield* put(t, "old") // written before enabling: the null version
        const en = yield* t.send({
          method: "PUT",
          query: [["versioning", ""]],
          body: "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
        })
        assert.strictEqual(en.status, 200)
        assert.strictEqual(
          tag((yield* t.send({ method: "GET", query: [["versioning", ""]] })).body, "Status"),
          "Enabled"
        )
        const v1 = (yield* put(t, "k", "1")).headers["x-cos-version-id"]!
        const v2 = (yield* put(t, "k", "2")).headers["x-cos-version-id"]!
        assert.notStrictEqual(v1, v2)
        const d = yield* t.send({ method: "DELETE", key: "k" })
        assert.strictEqual(d.headers["x-cos-delete-marker"], "true")
        const marker = d.headers["x-cos-version-id"]!
        assert.deepStrictEqual(tags((yield* t.send({ method: "GET" })).body, "Key"), ["old"])
        const lv = yield* t.send({ method: "GET", query: [["versions", ""]] })
        assert.match(
          lv.body,
          new RegExp(
            `<DeleteMarker><Key>k</Key><VersionId>${marker}</VersionId><IsLatest>true</IsLatest>.*` +
              `<Version><Key>k</Key><VersionId>${v2}</VersionId><IsLatest>false</IsLatest>.*` +
              `<Version><Key>k</Key><VersionId>${v1}</VersionId><IsLatest>false</IsLatest>.*` +
              `<Version><Key>old</Key><VersionId>null</VersionId><IsLatest>true</IsLatest>`
          )
        )
        const g = yield* t.send({ method: "GET", key: "k" })
        assert.strictEqual(g.status, 404)
        const rm = yield* t.send({ method: "DELETE", key: "k", query: [["versionId", marker]] })
        assert.strictEqual(rm.headers["x-cos-delete-marker"], "true")
        assert.strictEqual((yield* t.send({ method: "GET", key: "k" })).body, "2")
        const old = yield* t.send({ method: "GET", key: "k", query: [["versionId", v1]] })
        assert.strictEqual(old.body, "1")
        // batch delete of versions reports VersionId and DeleteMarker fields
        const d2 = yield* t.send({ method: "DELETE", key: "k" })
        const m2 = d2.headers["x-cos-version-id"]!
        const b = yield* t.send({
          method: "POST",
          query: [["delete", ""]],
          body: deleteBody([{ key: "k", versionId: m2 }, { key: "k", versionId: v1 }, { key: "old" }])
        })
        assert.match(
          b.body,
          new RegExp(
            `<Deleted><Key>k</Key><VersionId>${m2}</VersionId><DeleteMarker>true</DeleteMarker>` +
              `<DeleteMarkerVersionId>${m2}</DeleteMarkerVersionId></Deleted>` +
              `<Deleted><Key>k</Key><VersionId>${v1}</VersionId></Deleted>` +
              `<Deleted><Key>old</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>`
          )
        )
        // paging versions with key-marker / version-id-marker visits each once
        const seen: Array<string> = []
        let km = ""
        let vm = ""
        for (let i = 0; i < 10; i++) {
          const page = yield* t.send({
            method: "GET",
            query: [["versions", ""], ["max-keys", "1"], ["key-marker", km], ["version-id-marker", vm]]
          })
          seen.push(...tags(page.body, "VersionId"))
          if (tag(page.body, "IsTruncated") === "false") break
          km = tag(page.body, "NextKeyMarker") ?? ""
          vm = tag(page.body, "NextVersionIdMarker") ?? ""
        }
        const expected = tags((yield* t.send({ method: "GET", query: [["versions", ""]] })).body, "VersionId")
        assert.strictEqual(expected.length, 3) // k: v2; old: its marker and the null version
        assert.deepStrictEqual(seen, expected)
      })
    ))

  it.live("versioning suspended: PUT and DELETE replace the null version", () =>
    withFake((t) =>
      Effect.gen(function*() {
        yield* Store.setVersioning(t.fake.store, CosFake.testBucket, "Enabled")
        yield* put(t, "k", "v")
        yield* Store.setVersioning(t.fake.store, CosFake.testBucket, "Suspended")
        const p = yield* put(t, "k", "n1")
        assert.strictEqual(p.headers["x-cos-version-id"], undefined)
        yield* put(t, "k", "n2")
        const vs = yield* Store.versions(t.fake.store, CosFake.testBucket)
        assert.deepStrictEqual(vs.map((v) => v.versionId === "null"), [true, false])
        const d = yield* t.send({ method: "DELETE", key: "k" })
        assert.strictEqual(d.headers["x-cos-version-id"], "null")
        const vs2 = yield* Store.versions(t.fake.store, CosFake.testBucket)
        assert.deepStrictEqual(vs2.map((v) => [v.versionId === "null", v.isDeleteMarker]), [[true, true], [
          false,
          false
        ]])
      })
    ))

  it.live("PUT: forbid-overwrite (never-versioned only), BadDigest", () =>
    withFake((t) =>
      Effect.gen(function*() {
        yield* put(t, "k")
        const f = yield* t.send({ method: "PUT", key: "k", body: "y", headers: { "x-cos-forbid-overwrite": "true" } })
        assert.strictEqual(f.status, 409)
        assert.strictEqual(tag(f.body, "Code"), "FileAlreadyExists")
        const bad = yield* t.send({
          method: "PUT",
          key: "j",
          body: "y",
          headers: { "content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==" }
        })
        assert.strictEqual(tag(bad.body, "Code"), "BadDigest")
        yield* Store.setVersioning(t.fake.store, CosFake.testBucket, "Enabled")
        const f2 = yield* t.send({ method: "PUT", key: "k", body: "y", headers: { "x-cos-forbid-overwrite": "true" } })
        assert.strictEqual(f2.status, 200)
      })
    ))

  it.live("signatures: wrong secret, unknown id, expired, anonymous, tampered header, pre-signed URL", () =>
    withFake((t) =>
      Effect.gen(function*() {
        yield* put(t, "k")
        const wrong = yield* t.send({
          method: "GET",
          credentials: { ...CosFake.testCredentials, secretKey: Redacted.make("wrong") }
        })
        assert.strictEqual(wrong.status, 403)
        assert.strictEqual(tag(wrong.body, "Code"), "SignatureDoesNotMatch")
        const unknown = yield* t.send({
          method: "GET",
          credentials: { ...CosFake.testCredentials, secretId: "AKIDnobody" }
        })
        assert.strictEqual(tag(unknown.body, "Code"), "InvalidAccessKeyId")
        const now = Math.floor(Date.now() / 1000)
        const expired = yield* t.send({ method: "GET", keyTime: { start: now - 2000, end: now - 1000 } })
        assert.strictEqual(expired.status, 403)
        assert.strictEqual(tag(expired.body, "Code"), "AccessDenied")
        assert.strictEqual(tag(expired.body, "Message"), "Request has expired")
        const anon = yield* t.send({ method: "GET", credentials: "none" })
        assert.strictEqual(tag(anon.body, "Code"), "AccessDenied")
        const pre = yield* t.send({ method: "GET", key: "k", presign: true })
        assert.strictEqual(pre.status, 200)
        const preWrong = yield* t.send({
          method: "GET",
          key: "k",
          presign: true,
          credentials: { ...CosFake.testCredentials, secretKey: Redacted.make("nope") }
        })
        assert.strictEqual(tag(preWrong.body, "Code"), "SignatureDoesNotMatch")
        // a signed query parameter changed after signing
        const listed = yield* t.send({ method: "GET", query: [["prefix", "a b+c"]] })
        assert.strictEqual(listed.status, 200)
      })
    ))

  it.live("temporary credentials need the matching x-cos-security-token", () => {
    const temp: CosFake.Credential = {
      secretId: "AKIDtemp",
      secretKey: Redacted.make("tempsecret"),
      securityToken: Redacted.make("tok-123")
    }
    return withFake((t) =>
      Effect.gen(function*() {
        const missing = yield* t.send({ method: "GET", credentials: temp })
        assert.strictEqual(missing.status, 403)
        assert.strictEqual(tag(missing.body, "Code"), "InvalidAccessKeyId")
        const ok = yield* t.send({ method: "GET", credentials: temp, headers: { "x-cos-security-token": "tok-123" } })
        assert.strictEqual(ok.status, 200)
        const bad = yield* t.send({ method: "GET", credentials: temp, headers: { "x-cos-security-token": "tok-999" } })
        assert.strictEqual(tag(bad.body, "Code"), "AccessDenied")
        const pre = yield* t.send({ method: "GET", credentials: temp, presign: true })
        assert.strictEqual(pre.status, 200)
      }), { credentials: [temp] })
  })

  it.live("Host routing: <bucket>.cos.<region>.<domain> picks the bucket, other hosts the default one", () =>
    withFake((t) =>
      Effect.gen(function*() {
        yield* put(t, "in-default")
        const other = "otherbucket-1250000000.cos.ap-beijing.example.com"
        yield* t.send({ method: "PUT", key: "in-other", body: "x", host: other })
        assert.deepStrictEqual(tags((yield* t.send({ method: "GET", host: other })).body, "Key"), ["in-other"])
        assert.deepStrictEqual(tags((yield* t.send({ method: "GET", host: "127.0.0.1:1" })).body, "Key"), [
          "in-default"
        ])
        const missing = yield* t.send({ method: "GET", host: "missing-1250000000.cos.ap-beijing.myqcloud.com" })
        assert.strictEqual(missing.status, 404)
        assert.strictEqual(tag(missing.body, "Code"), "NoSuchBucket")
        const hb = yield* t.send({ method: "HEAD", host: "missing-1250000000.cos.ap-beijing.myqcloud.com" })
        assert.strictEqual(hb.status, 404)
        assert.strictEqual((yield* t.send({ method: "HEAD" })).status, 200)
      }), {
      buckets: [CosFake.testBucket, { name: "otherbucket-1250000000", region: "ap-beijing" }]
    }))
  it.live("multipart: initiate, parts, list uploads (url-encoded), list parts, complete, abort, with COS's errors", () =>
    withFake((t) =>
      Effect.gen(function*() {
        const keys = ["mp/\u{1F4E6}", "mp/e\u0301", "mp/ sp ", "mp/a\nb", "mp/<&\"'>"]
        const ids: Array<string> = []
        for (const key of keys) {
          const r = yield* t.send({ method: "POST", key, query: [["uploads", ""]] })
          assert.strictEqual(r.status, 200)
          const id = tag(r.body, "UploadId")!
          assert.match(id, /^[0-9]{10}[0-9a-f]{64}$/)
          ids.push(id)
        }
        const body = "p".repeat(10)
        const part = yield* t.send({
          method: "PUT",
          key: keys[0]!,
          query: [["partNumber", "1"], ["uploadId", ids[0]!]],
          body
        })
        assert.strictEqual(part.status, 200)
        assert.strictEqual(part.headers["etag"], `"${createHash("md5").update(body).digest("hex")}"`)
        const list = yield* t.send({
          method: "GET",
          query: [["uploads", ""], ["encoding-type", "url"], ["prefix", "mp/"]]
        })
        assert.strictEqual(list.status, 200)
        assert.strictEqual(tag(list.body, "Encoding-Type"), "url")
        const listed = tags(list.body, "Key").map(decodeURIComponent)
        assert.deepStrictEqual(listed, [...keys].sort(Store.compareUtf8))
        const initiated = Date.parse(tags(list.body, "Initiated")[0]!)
        assert.ok(Math.abs(initiated - Date.now()) < 60_000)
        const parts = yield* t.send({ method: "GET", key: keys[0]!, query: [["uploadId", ids[0]!]] })
        assert.deepStrictEqual(tags(parts.body, "PartNumber"), ["1"])
        const completeBody = (n: number, etag: string) =>
          `<CompleteMultipartUpload><Part><PartNumber>${n}</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`
        const wrong = yield* t.send({
          method: "POST",
          key: keys[0]!,
          query: [["uploadId", ids[0]!]],
          body: completeBody(1, "&quot;0&quot;")
        })
        assert.deepStrictEqual([wrong.status, tag(wrong.body, "Code")], [400, "InvalidPart"])
        const done = yield* t.send({
          method: "POST",
          key: keys[0]!,
          query: [["uploadId", ids[0]!]],
          body: completeBody(1, part.headers["etag"]!.replace(/"/g, "&quot;"))
        })
        assert.strictEqual(done.status, 200)
        assert.match(unescapeXml(tag(done.body, "ETag")!), /^"[0-9a-f]{32}-1"$/)
        assert.strictEqual((yield* t.send({ method: "GET", key: keys[0]! })).body, body)
        const abort = yield* t.send({ method: "DELETE", key: keys[1]!, query: [["uploadId", ids[1]!]] })
        assert.strictEqual(abort.status, 204)
        for (const [key, id] of [[keys[1]!, ids[1]!], [keys[0]!, ids[0]!], [keys[2]!, ids[3]!]] as const) {
          const gone = yield* t.send({ method: "DELETE", key, query: [["uploadId", id]] })
          assert.deepStrictEqual([gone.status, tag(gone.body, "Code")], [404, "NoSuchUpload"])
        }
        const left = yield* t.send({ method: "GET", query: [["uploads", ""], ["prefix", "mp/"]] })
        assert.deepStrictEqual(
          tags(left.body, "UploadId"),
          [ids[2]!, ids[3]!, ids[4]!].sort((a, b) => Store.compareUtf8(keys[ids.indexOf(a)]!, keys[ids.indexOf(b)]!))
        )
        const badNumber = yield* t.send({
          method: "PUT",
          key: keys[2]!,
          query: [["partNumber", "0"], ["uploadId", ids[2]!]]
        })
        assert.deepStrictEqual([badNumber.status, tag(badNumber.body, "Code")], [400, "InvalidArgument"])
      })
    ))
})
