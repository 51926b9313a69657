import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { createRequire } from "node:module"
import * as Signer from "../src/Signer.js"

const require = createRequire(import.meta.url)
const COS = require("cos-nodejs-sdk-v5") as { getAuthorization: (opt: Record<string, unknown>) => string }

// docs/protocol.md §2 "Test vectors"
const docId = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"
const docKey = "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"

describe("Signer: published vectors", () => {
  it("V1 upload an object (date signed)", () => {
    const s = Signer.sign({
      method: "PUT",
      path: "/exampleobject(腾讯云)",
      headers: {
        Date: "Thu, 16 May 2019 06:45:51 GMT",
        Host: "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
        "Content-Type": "text/plain",
        "Content-Length": "13",
        "Content-MD5": "mQ/fVh815F3k6TAUm8m0eg==",
        "x-cos-acl": "private",
        "x-cos-grant-read": "uin=\"100000000011\""
      },
      extraSignedHeaders: ["date"],
      keyTime: { start: 1557989151, end: 1557996351 },
      secretId: docId,
      secretKey: docKey
    })
    expect(s.signKey).toBe("eb2519b498b02ac213cb1f3d1a3d27a3b3c9bc5f")
    expect(s.urlParamList).toBe("")
    expect(s.httpParameters).toBe("")
    expect(s.headerList).toBe("content-length;content-md5;content-type;date;host;x-cos-acl;x-cos-grant-read")
    expect(s.httpHeaders).toBe(
      "content-length=13&content-md5=mQ%2FfVh815F3k6TAUm8m0eg%3D%3D&content-type=text%2Fplain&date=Thu%2C%2016%20May%202019%2006%3A45%3A51%20GMT&host=examplebucket-1250000000.cos.ap-beijing.myqcloud.com&x-cos-acl=private&x-cos-grant-read=uin%3D%22100000000011%22"
    )
    expect(s.httpString).toBe(`put\n/exampleobject(腾讯云)\n\n${s.httpHeaders}\n`)
    expect(s.httpStringSha1).toBe("8b2751e77f43a0995d6e9eb9477f4b685cca4172")
    expect(s.stringToSign).toBe("sha1\n1557989151;1557996351\n8b2751e77f43a0995d6e9eb9477f4b685cca4172\n")
    expect(s.signature).toBe("3b8851a11a569213c17ba8fa7dcf2abec6935172")
    expect(s.authorization).toBe(
      `q-sign-algorithm=sha1&q-ak=${docId}&q-sign-time=1557989151;1557996351&q-key-time=1557989151;1557996351` +
        "&q-header-list=content-length;content-md5;content-type;date;host;x-cos-acl;x-cos-grant-read" +
        "&q-url-param-list=&q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172"
    )
  })

  it("V2 download an object (date signed, query)", () => {
    const s = Signer.sign({
      method: "GET",
      path: "/exampleobject(腾讯云)",
      query: { "response-content-type": "application/octet-stream", "response-cache-control": "max-age=600" },
      headers: {
        Date: "Thu, 16 May 2019 06:55:53 GMT",
        Host: "examplebucket-1250000000.cos.ap-beijing.myqcloud.com"
      },
      extraSignedHeaders: ["date"],
      keyTime: { start: 1557989753, end: 1557996953 },
      secretId: docId,
      secretKey: docKey
    })
    expect(s.signKey).toBe("937914bf490e9e8c189836aad2052e4feeb35eaf")
    expect(s.urlParamList).toBe("response-cache-control;response-content-type")
    expect(s.httpParameters).toBe(
      "response-cache-control=max-age%3D600&response-content-type=application%2Foctet-stream"
    )
    expect(s.headerList).toBe("date;host")
    expect(s.httpHeaders).toBe(
      "date=Thu%2C%2016%20May%202019%2006%3A55%3A53%20GMT&host=examplebucket-1250000000.cos.ap-beijing.myqcloud.com"
    )
    expect(s.httpStringSha1).toBe("54ecfe22f59d3514fdc764b87a32d8133ea611e6")
    expect(s.stringToSign).toBe("sha1\n1557989753;1557996953\n54ecfe22f59d3514fdc764b87a32d8133ea611e6\n")
    expect(s.signature).toBe("01681b8c9d798a678e43b685a9f1bba0f6c0e012")
  })

  it("V3 old-edition upload", () => {
    const s = Signer.sign({
      method: "PUT",
      path: "/testfile2",
      headers: {
        Host: "bucket1-1254000000.cos.ap-beijing.myqcloud.com",
        "x-cos-content-sha1": "7b502c3a1f48c8609ae212cdfb639dee39673f5e",
        "x-cos-storage-class": "nearline"
      },
      keyTime: { start: 1417773892, end: 1417853898 },
      secretId: docId,
      secretKey: docKey
    })
    expect(s.headerList).toBe("host;x-cos-content-sha1;x-cos-storage-class")
    expect(s.httpString).toBe(`put\n/testfile2\n\n${s.httpHeaders}\n`)
    expect(s.signature).toBe("84f5be2187452d2fe276dbdca932143ef8161145")
  })

  it("V4 old-edition download with Range", () => {
    const s = Signer.sign({
      method: "GET",
      path: "/testfile",
      headers: { Host: "bucket1-1254000000.cos.ap-beijing.myqcloud.com", Range: "bytes=0-3" },
      keyTime: { start: 1417773892, end: 1417853898 },
      secretId: docId,
      secretKey: docKey
    })
    expect(s.httpHeaders).toBe("host=bucket1-1254000000.cos.ap-beijing.myqcloud.com&range=bytes%3D0-3")
    expect(s.signature).toBe("4b6cbab14ce01381c29032423481ebffd514e8be")
  })

  it("V5 cos-go-sdk-v5 TestNewAuthorization", () => {
    const s = Signer.sign({
      method: "PUT",
      path: "/testfile2",
      headers: {
        Host: "testbucket-125000000.cos.ap-guangzhou.myqcloud.com",
        "x-cos-content-sha1": "db8ac1c259eb89d4a131b253bacfca5f319d54f2",
        "x-cos-stroage-class": "nearline"
      },
      keyTime: { start: 1480932292, end: 1481012292 },
      secretId: "QmFzZTY0IGlzIGEgZ2VuZXJp",
      secretKey: "AKIDZfbOA78asKUYBcXFrJD0a1ICvR98JM"
    })
    expect(s.signature).toBe("ce4ac0ecbcdb30538b3fee0a97cc6389694ce53a")
  })

  it("does not sign Date unless asked, like the SDKs", () => {
    const s = Signer.sign({
      method: "GET",
      path: "/",
      headers: { Date: "x", Host: "h", "x-cos-security-token": "tok", "User-Agent": "u" },
      keyTime: { start: 1, end: 2 },
      secretId: "id",
      secretKey: "key"
    })
    expect(s.headerList).toBe("host")
  })

  it("round-trips an Authorization value through parseAuthorization", () => {
    const s = Signer.sign({
      method: "POST",
      path: "/",
      query: { delete: "" },
      headers: { Host: "h", "Content-MD5": "abc" },
      keyTime: { start: 10, end: 20 },
      secretId: "AKIDx",
      secretKey: "k"
    })
    const parsed = Signer.parseAuthorization(s.authorization)
    expect(parsed).toEqual({
      algorithm: "sha1",
      secretId: "AKIDx",
      signTime: { start: 10, end: 20 },
      keyTime: { start: 10, end: 20 },
      headerList: ["content-md5", "host"],
      urlParamList: ["delete"],
      signature: s.signature
    })
  })
})

describe("Signer: equals cos-nodejs-sdk-v5 getAuthorization", () => {
  const nasty = fc.constantFrom(..."!'()*+~&<>%?# /=;,:@$[]{}|\\^`\"".split(""))
  const keyChar = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(..."abcXYZ019-_./".split("")) },
    { weight: 2, arbitrary: nasty },
    { weight: 1, arbitrary: fc.constantFrom("腾", "讯", "云", "é", "😀", "ß") }
  )
  const key = fc.array(keyChar, { minLength: 1, maxLength: 24 }).map((cs) => cs.join(""))
  const value = fc.array(fc.oneof(keyChar, fc.constant("")), { maxLength: 16 }).map((cs) => cs.join(""))
  // Parameter and header names: the SDK sorts by the raw lower-cased name, we by the encoded one (docs/protocol.md §2
  // "Sorting subtlety"); both agree for the token characters real names use.
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/)
  const headerName = fc.oneof(
    name.map((n) => `x-cos-${n}`),
    fc.constantFrom("Content-Type", "Content-MD5", "Range", "If-Match", "Cache-Control", "User-Agent", "Date")
  )

  it("over random methods, keys, query parameters and headers", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("GET", "PUT", "POST", "DELETE", "HEAD"),
        key,
        fc.dictionary(name, value, { maxKeys: 5 }),
        fc.dictionary(headerName, value.filter((v) => v !== ""), { maxKeys: 5 }),
        fc.integer({ min: 1_000_000_000, max: 2_000_000_000 }),
        (method, objectKey, query, headers, start) => {
          const keyTime = `${start};${start + 900}`
          const allHeaders = { ...headers, Host: "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com" }
          const theirs = COS.getAuthorization({
            SecretId: "AKIDsecretid",
            SecretKey: "secret/key+=",
            Method: method,
            Key: objectKey,
            Query: { ...query },
            Headers: allHeaders,
            KeyTime: keyTime
          })
          const ours = Signer.authorization({
            method,
            path: objectKey.startsWith("/") ? objectKey : "/" + objectKey,
            query,
            headers: allHeaders,
            keyTime: { start, end: start + 900 },
            secretId: "AKIDsecretid",
            secretKey: "secret/key+="
          })
          expect(ours).toBe(theirs)
        }
      ),
      { numRuns: 500 }
    )
  })
})

describe("Signer: presigned query and path encoding", () => {
  it("puts the q-* fields and the token in a query string", () => {
    const q = Signer.presignQuery({
      method: "GET",
      path: "/a b",
      headers: { host: "h" },
      keyTime: { start: 1557989753, end: 1557996953 },
      secretId: "AKID",
      secretKey: "k"
    })
    expect(q).toMatch(/^q-sign-algorithm=sha1&q-ak=AKID&q-sign-time=1557989753%3B1557996953&/)
    expect(q).toContain("&q-header-list=host&q-url-param-list=&q-signature=")
  })

  it("encodes keys for the path with / kept and dot segments protected", () => {
    expect(Signer.encodeKeyPath("photos/2020年/a b!(1).jpg")).toBe(
      "/photos/2020%E5%B9%B4/a%20b%21%281%29.jpg"
    )
    expect(Signer.encodeKeyPath("a/../b")).toBe("/a%2F..%2Fb")
    expect(new URL("http://h" + Signer.encodeKeyPath("./x")).pathname).toBe("/.%2Fx")
  })
})
