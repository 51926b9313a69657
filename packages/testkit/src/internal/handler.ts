import { Signer } from "@effect-cos/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createHash } from "node:crypto"
import type * as Faults from "../Faults.js"
import { MalformedXml, parseDelete, parseXml } from "./deleteXml.js"
import type { FaultState, StatsState } from "./faults.js"
import { type Bucket, type DeleteOutcome, type StoreImpl, Upload, type Version } from "./store.js"
import { utf8Length } from "./utf8.js"

/** A request as the fake sees it: header names lower-case, `url` = raw path + query as sent. */
export interface FakeRequest {
  readonly method: string
  readonly url: string
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: Uint8Array
}

export type FakeResponse =
  | {
    readonly _tag: "Response"
    readonly status: number
    readonly headers: Record<string, string>
    readonly body: string | Uint8Array
  }
  | { readonly _tag: "Reset" }
  | { readonly _tag: "Timeout" }

export interface FakeCredential {
  readonly secretId: string
  readonly secretKey: Redacted.Redacted<string> | string
  /** Temporary credentials: requests must carry this `x-cos-security-token`. */
  readonly securityToken?: Redacted.Redacted<string> | string | undefined
}

export interface HandlerConfig {
  readonly store: StoreImpl
  readonly credentials: ReadonlyArray<FakeCredential>
  readonly auth: boolean
  readonly defaultBucket: string | undefined
  readonly faults: FaultState
  readonly stats: StatsState
  readonly statsEndpoint: boolean
}

// ---------------------------------------------------------------------------------------------------------------
// XML helpers (string concatenation: list pages are the hot path, docs/protocol.md §3 element order)
// ---------------------------------------------------------------------------------------------------------------

const XML_DECL = "<?xml version='1.0' encoding='utf-8' ?>\n"
const needsEscape = /[&<>"']/
export const xmlEscape = (s: string): string =>
  needsEscape.test(s) ?
    s.replace(/[&<>"']/g, (c) =>
      c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&apos;") :
    s

/** encoding-type=url: the path encoder of docs/protocol.md §1 with `/` kept. */
const urlEncodeKey = (s: string): string => Signer.encode(s).replace(/%2F/g, "/")

/** An element with already-escaped text; empty text gives `<X></X>`, which every client reads as empty. */
const el = (name: string, value: string) => `<${name}>${value}</${name}>`

let lastIsoMs = NaN
let lastIso = ""
const iso = (ms: number): string => {
  if (ms !== lastIsoMs) {
    lastIsoMs = ms
    lastIso = new Date(ms).toISOString()
  }
  return lastIso
}

let lastEtag = ""
let lastEtagXml = ""
/** ETags are quoted, so escaping is never free: memoise the last one (seeded objects share theirs). */
const etagXml = (etag: string): string => {
  if (etag !== lastEtag) {
    lastEtag = etag
    lastEtagXml = xmlEscape(etag)
  }
  return lastEtagXml
}

const ownerXml = (bucket: string): string => {
  const appId = bucket.slice(bucket.lastIndexOf("-") + 1)
  return `<Owner><ID>${appId}</ID><DisplayName>${appId}</DisplayName></Owner>`
}

// ---------------------------------------------------------------------------------------------------------------
// request parsing
// ---------------------------------------------------------------------------------------------------------------

/** Plain percent-decoding: `+` stays `+` (docs/protocol.md §2 "Fake-server verification"). */
const pctDecode = (s: string): string => (s.includes("%") ? decodeURIComponent(s) : s)

const parseQuery = (raw: string): Array<readonly [string, string]> => {
  if (raw === "") return []
  const out: Array<readonly [string, string]> = []
  for (const part of raw.split("&")) {
    if (part === "") continue
    const i = part.indexOf("=")
    out.push(i < 0 ? [pctDecode(part), ""] : [pctDecode(part.slice(0, i)), pctDecode(part.slice(i + 1))])
  }
  return out
}

const hostRe = /^([a-z0-9-]+-[0-9]+)\.cos\.[a-z0-9-]+\.[^:]+(?::[0-9]+)?$/

const operationOf = (method: string, isBucket: boolean, query: Map<string, string>): Faults.Operation => {
  if (isBucket) {
    switch (method) {
      case "GET":
        if (query.has("uploads")) return "ListMultipartUploads"
        if (query.has("versions")) return "ListObjectVersions"
        if (query.has("versioning")) return "GetBucketVersioning"
        return query.size === 0 || !hasSubresource(query) ? "ListObjects" : "Unknown"
      case "HEAD":
        return "HeadBucket"
      case "PUT":
        return query.has("versioning") ? "PutBucketVersioning" : "Unknown"
      case "POST":
        return query.has("delete") ? "DeleteObjects" : "Unknown"
    }
    return "Unknown"
  }
  const upload = uploadIdOf(query) !== undefined
  switch (method) {
    case "GET":
      return upload ? "ListParts" : "GetObject"
    case "HEAD":
      return "HeadObject"
    case "PUT":
      return upload ? "UploadPart" : "PutObject"
    case "DELETE":
      return upload ? "AbortMultipartUpload" : "DeleteObject"
    case "POST":
      return query.has("uploads") ? "CreateMultipartUpload" : upload ? "CompleteMultipartUpload" : "Unknown"
  }
  return "Unknown"
}

/** SDKs spell it `uploadId`; signing lower-cases names, so accept either. */
const uploadIdOf = (query: Map<string, string>): string | undefined => query.get("uploadId") ?? query.get("uploadid")

/** 1 MiB: the smallest part but the last (docs/protocol.md "Multipart uploads"). */
const MIN_PART = 1_048_576

const listParams = new Set(["prefix", "delimiter", "marker", "max-keys", "encoding-type"])
const hasSubresource = (query: Map<string, string>) => {
  for (const k of query.keys()) {
    if (!listParams.has(k) && !k.startsWith("q-") && k !== "x-cos-security-token") return true
  }
  return false
}

// ---------------------------------------------------------------------------------------------------------------
// responses
// ---------------------------------------------------------------------------------------------------------------

let requestCounter = 0
const newRequestId = (now: number) =>
  Buffer.from(`${Math.floor(now / 1000).toString(16)}_${(++requestCounter).toString(16)}_fake`).toString("base64")

class Ctx {
  readonly requestId: string
  code: string | undefined
  keys: number | undefined
  constructor(readonly now: number, readonly method: string, readonly resource: string) {
    this.requestId = newRequestId(now)
  }
  headers(extra?: Record<string, string>): Record<string, string> {
    return {
      "date": new Date(this.now).toUTCString(),
      "server": "tencent-cos",
      "x-cos-request-id": this.requestId,
      ...extra
    }
  }
  ok(status: number, body: string | Uint8Array, extra?: Record<string, string>): FakeResponse {
    const h = this.headers(extra)
    if (typeof body === "string" && body !== "") h["content-type"] ??= "application/xml"
    if (h["content-length"] === undefined) {
      h["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.length)
    }
    return { _tag: "Response", status, headers: h, body: this.method === "HEAD" ? "" : body }
  }
  error(status: number, code: string, message: string, extra?: Record<string, string>): FakeResponse {
    this.code = code
    const traceId = Buffer.from(`${this.requestId}-trace`).toString("base64")
    const h = this.headers({ "x-cos-trace-id": traceId, ...extra })
    // HEAD answers carry no body (docs/protocol.md §4).
    if (this.method === "HEAD") return { _tag: "Response", status, headers: { ...h, "content-length": "0" }, body: "" }
    const body = `${XML_DECL}<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>` +
      `<Resource>${xmlEscape(this.resource)}</Resource><RequestId>${this.requestId}</RequestId>` +
      `<TraceId>${traceId}</TraceId></Error>`
    h["content-type"] = "application/xml"
    h["content-length"] = String(Buffer.byteLength(body))
    return { _tag: "Response", status, headers: h, body }
  }
  fault(f: Faults.Fault): FakeResponse {
    switch (f) {
      case "Reset":
        return { _tag: "Reset" }
      case "Timeout":
        return { _tag: "Timeout" }
      case "SlowDown":
        return this.error(503, "SlowDown", "Please reduce your request rate.")
      case "ServiceUnavailable":
        return this.error(503, "ServiceUnavailable", "Service is unavailable. Please retry.")
      case "InternalError":
        return this.error(500, "InternalError", "We encountered an internal error. Please try again.")
    }
  }
}

const authorizationFields = (value: string): Map<string, string> => {
  const fields = new Map<string, string>()
  for (const part of value.split("&")) {
    const i = part.indexOf("=")
    if (i >= 0) fields.set(part.slice(0, i), part.slice(i + 1))
  }
  return fields
}

const keyTimeRe = /^(-?[0-9]+);(-?[0-9]+)$/
const parseKeyTime = (s: string | undefined): Signer.KeyTime | undefined => {
  const m = keyTimeRe.exec(s ?? "")
  return m === null ? undefined : { start: Number(m[1]), end: Number(m[2]) }
}

/**
 * `Signer.fromFields`, but also reading a negative start time: a client signing `now - 1` under a `TestClock` at
 * the epoch sends `-1;899`. Real COS would refuse that; the fake serves tests, so it accepts it.
 */
const parseFields = (fields: ReadonlyMap<string, string>): Signer.ParsedAuthorization | undefined => {
  const signTime = parseKeyTime(fields.get("q-sign-time"))
  const keyTime = parseKeyTime(fields.get("q-key-time"))
  if (signTime === undefined || keyTime === undefined) return undefined
  const base = Signer.fromFields(new Map([...fields, ["q-sign-time", "0;0"], ["q-key-time", "0;0"]]))
  return base === undefined ? undefined : { ...base, signTime, keyTime }
}

const unversionedDelete: DeleteOutcome = { deleteMarker: false, versionId: undefined }

const md5Base64 = (b: Uint8Array) => createHash("md5").update(b).digest("base64")

// ---------------------------------------------------------------------------------------------------------------
// the handler
// ---------------------------------------------------------------------------------------------------------------

export const makeHandler = (cfg: HandlerConfig) => {
  const credentialsById = new Map(cfg.credentials.map((c) => [c.secretId, c] as const))

  const verify = (
    ctx: Ctx,
    req: FakeRequest,
    path: string,
    query: ReadonlyArray<readonly [string, string]>
  ): FakeResponse | undefined => {
    const header = req.headers["authorization"]
    let parsed: Signer.ParsedAuthorization | undefined
    let presigned = false
    if (header !== undefined && header !== "") {
      parsed = parseFields(authorizationFields(header))
    } else if (query.some(([k]) => k === "q-sign-algorithm" || k === "q-ak" || k === "q-signature")) {
      presigned = true
      parsed = parseFields(new Map(query.filter(([k]) => k.startsWith("q-"))))
    } else {
      return ctx.error(403, "AccessDenied", "Access Denied.")
    }
    if (parsed === undefined || parsed.algorithm !== "sha1") {
      return ctx.error(403, "AccessDenied", "Authorization format is invalid.")
    }
    const cred = credentialsById.get(parsed.secretId)
    if (cred === undefined) {
      return ctx.error(403, "InvalidAccessKeyId", "The Access Key Id you provided does not exist in our records.")
    }
    const nowSec = Math.floor(ctx.now / 1000)
    if (
      nowSec < parsed.signTime.start || nowSec > parsed.signTime.end || nowSec < parsed.keyTime.start ||
      nowSec > parsed.keyTime.end
    ) return ctx.error(403, "AccessDenied", "Request has expired")
    if (cred.securityToken !== undefined) {
      const sent = req.headers["x-cos-security-token"] ?? query.find(([k]) => k === "x-cos-security-token")?.[1]
      if (sent === undefined || sent === "") {
        return ctx.error(403, "InvalidAccessKeyId", "Temporary credentials need x-cos-security-token.")
      }
      const expected = typeof cred.securityToken === "string" ?
        cred.securityToken :
        Redacted.value(cred.securityToken)
      if (sent !== expected) return ctx.error(403, "AccessDenied", "The security token is invalid.")
    }
    const mismatch = () =>
      ctx.error(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
      )
    const headers: Array<readonly [string, string]> = []
    for (const name of parsed.headerList) {
      const v = req.headers[name]
      if (v === undefined) return mismatch()
      headers.push([name, v])
    }
    const params: Array<readonly [string, string]> = []
    if (parsed.urlParamList.length > 0) {
      const byName = new Map<string, readonly [string, string]>()
      for (const kv of query) {
        if (presigned && kv[0].startsWith("q-")) continue
        byName.set(Signer.encode(kv[0]).toLowerCase(), kv)
      }
      for (const name of parsed.urlParamList) {
        const kv = byName.get(name)
        if (kv === undefined) return mismatch()
        params.push(kv)
      }
    }
    const expected = Signer.sign({
      method: req.method,
      path,
      query: params,
      headers,
      exactHeaders: parsed.headerList,
      keyTime: parsed.keyTime,
      secretId: cred.secretId,
      secretKey: cred.secretKey
    }).signature
    return expected === parsed.signature ? undefined : mismatch()
  }

  /** `max-keys` within the configured listing page size (Faults.Config.listPageSize). */
  const pageSize = (maxKeys: number | undefined): number | undefined => {
    const cap = cfg.faults.config.listPageSize
    return maxKeys === undefined || cap === undefined ? maxKeys : Math.min(maxKeys, Math.max(1, Math.floor(cap)))
  }

  const listObjects = (ctx: Ctx, bucket: Bucket, q: Map<string, string>): FakeResponse => {
    const encodingType = q.get("encoding-type")
    if (encodingType !== undefined && encodingType !== "url") {
      return ctx.error(400, "InvalidArgument", "encoding-type must be url")
    }
    const maxKeys = pageSize(parseMaxKeys(q.get("max-keys")))
    if (maxKeys === undefined) return ctx.error(400, "InvalidArgument", "max-keys is invalid")
    const prefix = q.get("prefix") ?? ""
    const delimiter = q.get("delimiter")
    const marker = q.get("marker") ?? ""
    const r = bucket.list({ prefix, delimiter: delimiter === "" ? undefined : delimiter, marker, maxKeys })
    const enc = encodingType === "url" ? urlEncodeKey : xmlEscape
    const owner = ownerXml(bucket.name)
    let xml = `${XML_DECL}<ListBucketResult><Name>${bucket.name}</Name>` +
      (encodingType === "url" ? "<EncodingType>url</EncodingType>" : "") +
      el("Prefix", enc(prefix)) + el("Marker", enc(marker)) + `<MaxKeys>${maxKeys}</MaxKeys>` +
      (delimiter !== undefined && delimiter !== "" ? el("Delimiter", xmlEscape(delimiter)) : "") +
      `<IsTruncated>${r.isTruncated}</IsTruncated>` +
      (r.nextMarker !== undefined ? el("NextMarker", enc(r.nextMarker)) : "")
    for (const cp of r.commonPrefixes) xml += `<CommonPrefixes>${el("Prefix", enc(cp))}</CommonPrefixes>`
    for (const [key, v] of r.contents) {
      xml += `<Contents><Key>${enc(key)}</Key><LastModified>${iso(v.lastModified)}</LastModified><ETag>` +
        etagXml(v.etag) +
        `</ETag><Size>${v.size}</Size>${owner}<StorageClass>${v.storageClass}</StorageClass></Contents>`
    }
    xml += "</ListBucketResult>"
    return ctx.ok(200, xml, { "x-cos-bucket-region": bucket.region })
  }

  const listVersions = (ctx: Ctx, bucket: Bucket, q: Map<string, string>): FakeResponse => {
    const encodingType = q.get("encoding-type")
    if (encodingType !== undefined && encodingType !== "url") {
      return ctx.error(400, "InvalidArgument", "encoding-type must be url")
    }
    const maxKeys = pageSize(parseMaxKeys(q.get("max-keys")))
    if (maxKeys === undefined) return ctx.error(400, "InvalidArgument", "max-keys is invalid")
    const prefix = q.get("prefix") ?? ""
    const delimiter = q.get("delimiter")
    const keyMarker = q.get("key-marker") ?? ""
    const versionIdMarker = q.get("version-id-marker")
    const r = bucket.listVersions({
      prefix,
      delimiter: delimiter === "" ? undefined : delimiter,
      keyMarker,
      versionIdMarker,
      maxKeys
    })
    const enc = encodingType === "url" ? urlEncodeKey : xmlEscape
    const owner = ownerXml(bucket.name)
    let xml = `${XML_DECL}<ListVersionsResult>` +
      (encodingType === "url" ? "<EncodingType>url</EncodingType>" : "") +
      `<Name>${bucket.name}</Name>` + el("Prefix", enc(prefix)) + el("KeyMarker", enc(keyMarker)) +
      el("VersionIdMarker", xmlEscape(versionIdMarker ?? "")) + `<MaxKeys>${maxKeys}</MaxKeys>` +
      `<IsTruncated>${r.isTruncated}</IsTruncated>` +
      (r.nextKeyMarker !== undefined ? el("NextKeyMarker", enc(r.nextKeyMarker)) : "") +
      (r.nextVersionIdMarker !== undefined ? el("NextVersionIdMarker", xmlEscape(r.nextVersionIdMarker)) : "") +
      (delimiter !== undefined && delimiter !== "" ? el("Delimiter", xmlEscape(delimiter)) : "")
    for (const cp of r.commonPrefixes) xml += `<CommonPrefixes>${el("Prefix", enc(cp))}</CommonPrefixes>`
    for (const { isLatest, key, version: v } of r.versions) {
      const id = el("VersionId", bucket.renderId(v.versionId))
      xml += v.deleteMarker ?
        `<DeleteMarker><Key>${enc(key)}</Key>${id}<IsLatest>${isLatest}</IsLatest>` +
        `<LastModified>${iso(v.lastModified)}</LastModified>${owner}</DeleteMarker>` :
        `<Version><Key>${enc(key)}</Key>${id}<IsLatest>${isLatest}</IsLatest>` +
        `<LastModified>${iso(v.lastModified)}</LastModified><ETag>${etagXml(v.etag)}</ETag>` +
        `<Size>${v.size}</Size><StorageClass>${v.storageClass}</StorageClass>${owner}</Version>`
    }
    xml += "</ListVersionsResult>"
    return ctx.ok(200, xml, { "x-cos-bucket-region": bucket.region })
  }

  const objectHeaders = (bucket: Bucket, v: Version): Record<string, string> => {
    const h: Record<string, string> = {
      "content-type": v.data?.contentType ?? "application/octet-stream",
      "content-length": String(v.size),
      "etag": v.etag,
      "last-modified": new Date(v.lastModified).toUTCString()
    }
    if (bucket.versioning !== "NeverEnabled") h["x-cos-version-id"] = v.versionId
    if (v.storageClass !== "STANDARD") h["x-cos-storage-class"] = v.storageClass
    for (const [k, val] of v.data?.meta ?? []) h[k] = val
    return h
  }

  const keyProblem = (ctx: Ctx, key: string): FakeResponse | undefined => {
    // docs/protocol.md §1: 1–850 UTF-8 bytes, no CAN/EM/SUB/ESC.
    if (utf8Length(key) > 850) return ctx.error(400, "KeyTooLong", "The key is longer than 850 bytes.")
    if (/[\u0018-\u001b]/.test(key)) return ctx.error(400, "InvalidURI", "The key contains a forbidden character.")
    return undefined
  }

  const getOrHead = (ctx: Ctx, bucket: Bucket, key: string, q: Map<string, string>, req: FakeRequest) => {
    const versionId = q.get("versionId") ?? q.get("versionid")
    const v = bucket.get(key, versionId)
    if (v === undefined) {
      return versionId !== undefined && bucket.objects.has(key) ?
        ctx.error(404, "NoSuchVersion", "The specified version does not exist.") :
        ctx.error(404, "NoSuchKey", "The specified key does not exist.")
    }
    if (v.deleteMarker) {
      const extra: Record<string, string> = { "x-cos-delete-marker": "true" }
      if (bucket.versioning !== "NeverEnabled") extra["x-cos-version-id"] = v.versionId
      return ctx.error(404, "NoSuchKey", "The specified key does not exist.", extra)
    }
    const h = objectHeaders(bucket, v)
    // Preconditions (docs/protocol.md §4 HEAD Object): If-Match / If-Unmodified-Since → 412, If-None-Match /
    // If-Modified-Since → 304. HTTP dates have whole seconds.
    const modifiedSec = Math.floor(v.lastModified / 1000)
    const dateSec = (s: string | undefined) => {
      if (s === undefined) return undefined
      const t = Date.parse(s)
      return Number.isNaN(t) ? undefined : Math.floor(t / 1000)
    }
    const etagMatches = (s: string) => s.split(",").some((e) => e.trim() === v.etag || e.trim() === "*")
    const ifMatch = req.headers["if-match"]
    const ifUnmodified = dateSec(req.headers["if-unmodified-since"])
    if (
      (ifMatch !== undefined && !etagMatches(ifMatch)) ||
      (ifMatch === undefined && ifUnmodified !== undefined && modifiedSec > ifUnmodified)
    ) return ctx.error(412, "PreconditionFailed", "At least one of the preconditions you specified did not hold.")
    const ifNoneMatch = req.headers["if-none-match"]
    const ifModified = dateSec(req.headers["if-modified-since"])
    if (
      (ifNoneMatch !== undefined && etagMatches(ifNoneMatch)) ||
      (ifNoneMatch === undefined && ifModified !== undefined && modifiedSec <= ifModified)
    ) {
      const { "content-length": _, "content-type": __, ...rest } = h
      return ctx.ok(304, "", { ...rest, "content-length": "0" })
    }
    const body = v.data?.body ?? new Uint8Array(v.size)
    const range = req.headers["range"]
    if (range !== undefined) {
      const m = /^bytes=([0-9]*)-([0-9]*)$/.exec(range.trim())
      if (m !== null && (m[1] !== "" || m[2] !== "")) {
        const size = body.length
        let start: number
        let end: number
        if (m[1] === "") {
          start = Math.max(0, size - Number(m[2]))
          end = size - 1
        } else {
          start = Number(m[1])
          end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1)
        }
        if (start >= size || start > end) {
          return ctx.error(416, "InvalidRange", "The requested range is not satisfiable", {
            "content-range": `bytes */${size}`
          })
        }
        const part = body.subarray(start, end + 1)
        return ctx.ok(206, part, {
          ...h,
          "content-length": String(part.length),
          "content-range": `bytes ${start}-${end}/${size}`
        })
      }
    }
    return ctx.ok(200, body, h)
  }

  const putObject = (ctx: Ctx, bucket: Bucket, key: string, req: FakeRequest): FakeResponse => {
    const problem = keyProblem(ctx, key)
    if (problem) return problem
    const lengthHeader = req.headers["content-length"]
    if (lengthHeader === undefined || !/^[0-9]+$/.test(lengthHeader)) {
      return ctx.error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    }
    // docs/protocol.md §4: a Content-Length smaller than the body truncates it.
    const length = Number(lengthHeader)
    const body = length < req.body.length ? req.body.subarray(0, length) : req.body
    const md5 = req.headers["content-md5"]
    if (md5 !== undefined && md5 !== md5Base64(body)) {
      return ctx.error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    }
    if (req.headers["x-cos-forbid-overwrite"] === "true" && bucket.versioning === "NeverEnabled") {
      const existing = bucket.get(key)
      if (existing !== undefined && !existing.deleteMarker) {
        return ctx.error(409, "FileAlreadyExists", "The object already exists and x-cos-forbid-overwrite is true.")
      }
    }
    const meta: Array<readonly [string, string]> = []
    for (const [k, v] of Object.entries(req.headers)) {
      if (k.startsWith("x-cos-meta-") && v !== undefined) meta.push([k, v])
    }
    const etag = `"${createHash("md5").update(body).digest("hex")}"`
    const v = bucket.put(key, {
      size: body.length,
      etag,
      storageClass: (req.headers["x-cos-storage-class"] ?? "STANDARD").toUpperCase(),
      data: { body: Uint8Array.from(body), contentType: req.headers["content-type"], meta }
    }, ctx.now)
    const extra: Record<string, string> = { "etag": etag }
    if (bucket.versioning === "Enabled") extra["x-cos-version-id"] = v.versionId
    return ctx.ok(200, "", extra)
  }

  const deleteObject = (ctx: Ctx, bucket: Bucket, key: string, q: Map<string, string>): FakeResponse => {
    const versionId = q.get("versionId") ?? q.get("versionid")
    const r = versionId === undefined ? bucket.deleteCurrent(key, ctx.now) : bucket.deleteVersion(key, versionId)
    cfg.stats.deletedKeys++
    const extra: Record<string, string> = {}
    if (r.deleteMarker) extra["x-cos-delete-marker"] = "true"
    if (r.versionId !== undefined && (bucket.versioning !== "NeverEnabled" || versionId !== undefined)) {
      extra["x-cos-version-id"] = r.versionId
    }
    return ctx.ok(204, "", extra)
  }

  const deleteObjects = (ctx: Ctx, bucket: Bucket, req: FakeRequest): FakeResponse => {
    const md5 = req.headers["content-md5"]
    if (md5 === undefined) {
      return ctx.error(400, "InvalidRequest", "Missing required header for this request: Content-MD5")
    }
    if (req.headers["content-length"] === undefined) {
      return ctx.error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    }
    if (md5 !== md5Base64(req.body)) {
      return ctx.error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
    }
    let parsed
    try {
      parsed = parseDelete(req.body)
    } catch (e) {
      if (e instanceof MalformedXml) {
        return ctx.error(
          400,
          "MalformedXML",
          e.message.startsWith("delete key size") ?
            e.message :
            "The XML you provided was not well-formed or did not validate against our published schema."
        )
      }
      throw e
    }
    if (!cfg.faults.admit(bucket.name, "DeleteObjects", parsed.objects.length, ctx.now)) {
      return ctx.error(503, "SlowDown", "Please reduce your request rate.")
    }
    ctx.keys = parsed.objects.length
    // Never-versioned bucket: every plain delete answers the same, so remove them together (see Bucket.deleteMany).
    const together = bucket.versioning === "NeverEnabled"
    const plain: Array<string> = []
    let xml = ""
    for (const o of parsed.objects) {
      const keyXml = `<Key>${xmlEscape(o.key)}</Key>`
      const vXml = o.versionId !== undefined ? el("VersionId", xmlEscape(o.versionId)) : ""
      if (cfg.faults.batchKeyError()) {
        cfg.stats.batchKeyErrors++
        xml += `<Error>${keyXml}${vXml}<Code>InternalError</Code><Message>We encountered an internal error. ` +
          `Please try again.</Message></Error>`
        continue
      }
      let r: DeleteOutcome
      if (together && o.versionId === undefined) {
        plain.push(o.key)
        r = unversionedDelete
      } else {
        r = o.versionId === undefined ?
          bucket.deleteCurrent(o.key, ctx.now) :
          bucket.deleteVersion(o.key, o.versionId)
      }
      cfg.stats.deletedKeys++
      if (parsed.quiet) continue
      xml += `<Deleted>${keyXml}${vXml}` +
        (r.deleteMarker ?
          `<DeleteMarker>true</DeleteMarker>${el("DeleteMarkerVersionId", xmlEscape(r.versionId ?? ""))}` :
          "") +
        "</Deleted>"
    }
    bucket.deleteMany(plain)
    return ctx.ok(200, xml === "" ? `${XML_DECL}<DeleteResult/>` : `${XML_DECL}<DeleteResult>${xml}</DeleteResult>`)
  }

  const putVersioning = (ctx: Ctx, bucket: Bucket, req: FakeRequest): FakeResponse => {
    let status: string | undefined
    try {
      const root = parseXml(req.body)
      if (root.name !== "VersioningConfiguration") throw new MalformedXml("root")
      status = root.children.find((c) => c.name === "Status")?.text.trim()
    } catch (e) {
      if (!(e instanceof MalformedXml)) throw e
    }
    if (status !== "Enabled" && status !== "Suspended") {
      return ctx.error(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema."
      )
    }
    bucket.versioning = status
    return ctx.ok(200, "")
  }

  const getVersioning = (ctx: Ctx, bucket: Bucket): FakeResponse =>
    ctx.ok(
      200,
      bucket.versioning === "NeverEnabled" ?
        `${XML_DECL}<VersioningConfiguration/>` :
        `${XML_DECL}<VersioningConfiguration><Status>${bucket.versioning}</Status></VersioningConfiguration>`
    )

  // --- multipart uploads (docs/protocol.md "Multipart uploads") ------------------------------------------------

  const noSuchUpload = (ctx: Ctx) =>
    ctx.error(
      404,
      "NoSuchUpload",
      "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )

  /** The upload named by the query, if it exists and belongs to this key. */
  const findUpload = (bucket: Bucket, key: string, q: Map<string, string>): Upload | undefined => {
    const u = bucket.uploads.get(uploadIdOf(q) ?? "")
    return u !== undefined && u.key === key ? u : undefined
  }

  const initiate = (ctx: Ctx, bucket: Bucket, key: string, req: FakeRequest): FakeResponse => {
    const problem = keyProblem(ctx, key)
    if (problem) return problem
    const meta: Array<readonly [string, string]> = []
    for (const [k, v] of Object.entries(req.headers)) {
      if (k.startsWith("x-cos-meta-") && v !== undefined) meta.push([k, v])
    }
    const contentType = req.headers["content-type"]
    const u = new Upload(
      key,
      cfg.store.nextUploadId(ctx.now),
      ctx.now,
      (req.headers["x-cos-storage-class"] || "STANDARD").toUpperCase(),
      contentType === "" ? undefined : contentType,
      meta
    )
    bucket.uploads.set(u.uploadId, u)
    return ctx.ok(
      200,
      `${XML_DECL}<InitiateMultipartUploadResult>${el("Bucket", bucket.name)}${el("Key", xmlEscape(key))}` +
        `${el("UploadId", u.uploadId)}</InitiateMultipartUploadResult>`
    )
  }

  const uploadPart = (ctx: Ctx, bucket: Bucket, key: string, q: Map<string, string>, req: FakeRequest) => {
    const raw = q.get("partNumber") ?? q.get("partnumber") ?? ""
    const n = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : NaN
    if (!(n >= 1 && n <= 10_000)) return ctx.error(400, "InvalidArgument", "partNumber must be from 1 to 10000.")
    const u = findUpload(bucket, key, q)
    if (u === undefined) return noSuchUpload(ctx)
    const lengthHeader = req.headers["content-length"]
    if (lengthHeader === undefined || !/^[0-9]+$/.test(lengthHeader)) {
      return ctx.error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    }
    const length = Number(lengthHeader)
    const body = length < req.body.length ? req.body.subarray(0, length) : req.body
    const md5 = req.headers["content-md5"]
    if (md5 !== undefined && md5 !== md5Base64(body)) {
      return ctx.error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    }
    const etag = `"${createHash("md5").update(body).digest("hex")}"`
    u.parts.set(n, { etag, body: Uint8Array.from(body), lastModified: ctx.now })
    return ctx.ok(200, "", { "etag": etag })
  }

  const unquote = (etag: string) => etag.trim().replace(/^"|"$/g, "")

  const complete = (ctx: Ctx, bucket: Bucket, key: string, q: Map<string, string>, req: FakeRequest) => {
    const u = findUpload(bucket, key, q)
    if (u === undefined) return noSuchUpload(ctx)
    const md5 = req.headers["content-md5"]
    if (md5 !== undefined && md5 !== md5Base64(req.body)) {
      return ctx.error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    }
    const malformed = () =>
      ctx.error(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema."
      )
    const sent: Array<{ readonly n: number; readonly etag: string }> = []
    try {
      const root = parseXml(req.body)
      if (root.name !== "CompleteMultipartUpload") return malformed()
      for (const c of root.children) {
        if (c.name !== "Part") return malformed()
        const num = c.children.find((f) => f.name === "PartNumber")?.text.trim() ?? ""
        const etag = c.children.find((f) => f.name === "ETag")?.text
        if (!/^[0-9]{1,5}$/.test(num) || etag === undefined) return malformed()
        sent.push({ n: Number(num), etag })
      }
    } catch (e) {
      if (e instanceof MalformedXml) return malformed()
      throw e
    }
    if (sent.length === 0) return malformed()
    for (let i = 1; i < sent.length; i++) {
      if (sent[i]!.n <= sent[i - 1]!.n) {
        return ctx.error(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
      }
    }
    const invalidPart = () =>
      ctx.error(
        400,
        "InvalidPart",
        "One or more of the specified parts could not be found, or the ETag did not match, or the part numbers are not continuous."
      )
    // COS wants continuous numbers from 1 (S3 allows gaps).
    const chosen: Array<{ readonly etag: string; readonly body: Uint8Array }> = []
    for (let i = 0; i < sent.length; i++) {
      const p = u.parts.get(sent[i]!.n)
      if (sent[i]!.n !== i + 1 || p === undefined || unquote(p.etag) !== unquote(sent[i]!.etag)) return invalidPart()
      chosen.push(p)
    }
    for (let i = 0; i < chosen.length - 1; i++) {
      if (chosen[i]!.body.length < MIN_PART) {
        return ctx.error(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
      }
    }
    const body = Buffer.concat(chosen.map((p) => p.body))
    const digests = Buffer.concat(chosen.map((p) => Buffer.from(unquote(p.etag), "hex")))
    const etag = `"${createHash("md5").update(digests).digest("hex")}-${chosen.length}"`
    const v = bucket.put(key, {
      size: body.length,
      etag,
      storageClass: u.storageClass,
      data: { body: Uint8Array.from(body), contentType: u.contentType, meta: u.meta }
    }, ctx.now)
    bucket.uploads.delete(u.uploadId)
    const extra: Record<string, string> = {}
    if (bucket.versioning === "Enabled") extra["x-cos-version-id"] = v.versionId
    const host = `${bucket.name}.cos.${bucket.region}.myqcloud.com`
    return ctx.ok(
      200,
      `${XML_DECL}<CompleteMultipartUploadResult xmlns="http://www.qcloud.com/document/product/436/7751">` +
        el("Location", xmlEscape(`http://${host}/${urlEncodeKey(key)}`)) + el("Bucket", bucket.name) +
        el("Key", xmlEscape(key)) + el("ETag", xmlEscape(etag)) + "</CompleteMultipartUploadResult>",
      extra
    )
  }

  const abort = (ctx: Ctx, bucket: Bucket, key: string, q: Map<string, string>): FakeResponse => {
    const u = findUpload(bucket, key, q)
    if (u === undefined) return noSuchUpload(ctx)
    bucket.uploads.delete(u.uploadId)
    return ctx.ok(204, "")
  }

  const principalXml = (bucket: Bucket, name: "Initiator" | "Owner") => {
    const appId = bucket.name.slice(bucket.name.lastIndexOf("-") + 1)
    return `<${name}><ID>qcs::cam::uin/${appId}:uin/${appId}</ID><DisplayName>${appId}</DisplayName></${name}>`
  }

  const listParts = (ctx: Ctx, bucket: Bucket, key: string, q: Map<string, string>): FakeResponse => {
    const encodingType = q.get("encoding-type")
    if (encodingType !== undefined && encodingType !== "" && encodingType !== "url") {
      return ctx.error(400, "InvalidArgument", "encoding-type must be url")
    }
    const maxParts = parseMaxKeys(q.get("max-parts"))
    if (maxParts === undefined || maxParts < 1) return ctx.error(400, "InvalidArgument", "max-parts is invalid")
    const markerRaw = q.get("part-number-marker") ?? ""
    if (markerRaw !== "" && !/^[0-9]+$/.test(markerRaw)) {
      return ctx.error(400, "InvalidArgument", "part-number-marker is invalid")
    }
    const marker = markerRaw === "" ? 0 : Number(markerRaw)
    const u = findUpload(bucket, key, q)
    if (u === undefined) return noSuchUpload(ctx)
    const numbers = Array.from(u.parts.keys()).filter((n) => n > marker).sort((a, b) => a - b)
    const page = numbers.slice(0, maxParts)
    const truncated = numbers.length > maxParts
    const url = encodingType === "url"
    let xml = `${XML_DECL}<ListPartsResult>${el("Bucket", bucket.name)}` +
      (url ? el("Encoding-type", "url") : "") + el("Key", url ? urlEncodeKey(key) : xmlEscape(key)) +
      el("UploadId", u.uploadId) + principalXml(bucket, "Initiator") + principalXml(bucket, "Owner") +
      el("StorageClass", u.storageClass) + el("PartNumberMarker", String(marker)) +
      (truncated ? el("NextPartNumberMarker", String(page[page.length - 1])) : "") +
      el("MaxParts", String(maxParts)) + el("IsTruncated", String(truncated))
    for (const n of page) {
      const p = u.parts.get(n)!
      xml += `<Part>${el("PartNumber", String(n))}${el("LastModified", iso(p.lastModified))}` +
        `${el("ETag", xmlEscape(p.etag))}${el("Size", String(p.body.length))}</Part>`
    }
    return ctx.ok(200, xml + "</ListPartsResult>")
  }

  const listUploads = (ctx: Ctx, bucket: Bucket, q: Map<string, string>): FakeResponse => {
    const encodingType = q.get("encoding-type")
    if (encodingType !== undefined && encodingType !== "" && encodingType !== "url") {
      return ctx.error(400, "InvalidArgument", "encoding-type must be url")
    }
    const maxUploads = parseMaxKeys(q.get("max-uploads"))
    if (maxUploads === undefined || maxUploads < 1) return ctx.error(400, "InvalidArgument", "max-uploads is invalid")
    const prefix = q.get("prefix") ?? ""
    const delimiter = q.get("delimiter") || undefined
    const keyMarker = q.get("key-marker") ?? ""
    // Without key-marker, upload-id-marker is ignored; empty values are as good as absent.
    const uploadIdMarker = keyMarker === "" ? "" : q.get("upload-id-marker") ?? ""
    const r = bucket.listUploads({ prefix, delimiter, keyMarker, uploadIdMarker, maxUploads })
    const url = encodingType === "url"
    const enc = url ? urlEncodeKey : xmlEscape
    let xml = `${XML_DECL}<ListMultipartUploadsResult>${el("Bucket", bucket.name)}` +
      el("Encoding-Type", url ? "url" : "") + el("KeyMarker", enc(keyMarker)) + el("UploadIdMarker", uploadIdMarker) +
      (r.isTruncated ? el("NextKeyMarker", enc(r.nextKeyMarker ?? "")) : "") +
      (r.isTruncated ? el("NextUploadIdMarker", r.nextUploadIdMarker ?? "") : "") +
      el("MaxUploads", String(maxUploads)) + el("IsTruncated", String(r.isTruncated)) + el("Prefix", enc(prefix)) +
      el("Delimiter", xmlEscape(delimiter ?? ""))
    for (const u of r.uploads) {
      xml += `<Upload>${el("Key", enc(u.key))}${el("UploadId", u.uploadId)}${el("StorageClass", u.storageClass)}` +
        principalXml(bucket, "Initiator") + principalXml(bucket, "Owner") +
        `${el("Initiated", iso(u.initiated))}</Upload>`
    }
    for (const cp of r.commonPrefixes) xml += `<CommonPrefixes>${el("Prefix", enc(cp))}</CommonPrefixes>`
    return ctx.ok(200, xml + "</ListMultipartUploadsResult>", { "x-cos-bucket-region": bucket.region })
  }

  return (req: FakeRequest): Effect.Effect<FakeResponse> =>
    Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      const method = req.method.toUpperCase()
      const qi = req.url.indexOf("?")
      const rawPath = qi < 0 ? req.url : req.url.slice(0, qi)
      const host = req.headers["host"] ?? ""
      let path: string
      let query: Array<readonly [string, string]>
      try {
        path = pctDecode(rawPath)
        query = parseQuery(qi < 0 ? "" : req.url.slice(qi + 1))
      } catch {
        const ctx = new Ctx(start, method, host + rawPath)
        return ctx.error(400, "InvalidURI", "Couldn't parse the specified URI.")
      }
      if (cfg.statsEndpoint && path === "/_fake/stats" && method === "GET") {
        const body = JSON.stringify(cfg.stats.snapshot())
        return {
          _tag: "Response",
          status: 200,
          headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
          body
        } as const
      }
      const q = new Map(query)
      const m = hostRe.exec(host.toLowerCase())
      const bucketName = m !== null ? m[1] : cfg.defaultBucket
      const isBucket = path === "/"
      const key = isBucket ? undefined : path.slice(1)
      const op = operationOf(method, isBucket, q)
      const ctx = new Ctx(start, method, host + path)
      const decision = cfg.faults.decide(op)
      const seq = cfg.faults.requests
      const respond = (): FakeResponse => {
        if (decision.fault !== undefined) return ctx.fault(decision.fault)
        const bucket = bucketName === undefined ? undefined : cfg.store.buckets.get(bucketName)
        if (bucket === undefined) return ctx.error(404, "NoSuchBucket", "The specified bucket does not exist.")
        if (cfg.auth) {
          const denied = verify(ctx, req, path, query)
          if (denied !== undefined) return denied
        }
        if (op !== "DeleteObjects" && !cfg.faults.admit(bucket.name, op, 1, ctx.now)) {
          return ctx.error(503, "SlowDown", "Please reduce your request rate.")
        }
        switch (op) {
          case "ListObjects":
            return listObjects(ctx, bucket, q)
          case "ListObjectVersions":
            return listVersions(ctx, bucket, q)
          case "HeadBucket":
            return ctx.ok(200, "", { "x-cos-bucket-region": bucket.region })
          case "GetBucketVersioning":
            return getVersioning(ctx, bucket)
          case "PutBucketVersioning":
            return putVersioning(ctx, bucket, req)
          case "PutObject":
            return putObject(ctx, bucket, key!, req)
          case "GetObject":
          case "HeadObject":
            return getOrHead(ctx, bucket, key!, q, req)
          case "DeleteObject":
            return deleteObject(ctx, bucket, key!, q)
          case "DeleteObjects":
            return deleteObjects(ctx, bucket, req)
          case "CreateMultipartUpload":
            return initiate(ctx, bucket, key!, req)
          case "UploadPart":
            return uploadPart(ctx, bucket, key!, q, req)
          case "CompleteMultipartUpload":
            return complete(ctx, bucket, key!, q, req)
          case "AbortMultipartUpload":
            return abort(ctx, bucket, key!, q)
          case "ListMultipartUploads":
            return listUploads(ctx, bucket, q)
          case "ListParts":
            return listParts(ctx, bucket, key!, q)
          case "Unknown":
            return isBucket && method === "GET" ?
              ctx.error(501, "NotImplemented", "The fake does not implement this bucket operation.") :
              ctx.error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        }
      }
      if (decision.latencyMs > 0) yield* Effect.sleep(Duration.millis(decision.latencyMs))
      const res = respond()
      const end = yield* Clock.currentTimeMillis
      cfg.stats.record({
        seq,
        time: start,
        method,
        operation: op,
        bucket: bucketName,
        key,
        keys: ctx.keys,
        status: res._tag === "Response" ? res.status : res._tag === "Reset" ? "reset" : "timeout",
        code: ctx.code,
        durationMs: end - start
      })
      return res
    })
}

const parseMaxKeys = (s: string | undefined): number | undefined => {
  if (s === undefined || s === "") return 1000
  if (!/^[0-9]+$/.test(s)) return undefined
  // docs/protocol.md §3: larger values clamp to 1000.
  return Math.min(1000, Number(s))
}
