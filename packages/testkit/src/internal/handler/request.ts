// A request as the fake reads it (path, query, host, operation) and the builder of its answer.
import type * as Faults from "../../Faults.js"
import { type Renderer, XML_DECL, xmlEscape } from "./xml.js"

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

/** The query by name (of a repeated name, the last value). */
export type Query = Map<string, string>

/** Plain percent-decoding: `+` stays `+` (docs/protocol.md §2 "Fake-server verification"). */
export const pctDecode = (s: string): string => (s.includes("%") ? decodeURIComponent(s) : s)

export const parseQuery = (raw: string): Array<readonly [string, string]> => {
  if (raw === "") return []
  const out: Array<readonly [string, string]> = []
  for (const part of raw.split("&")) {
    if (part === "") continue
    const i = part.indexOf("=")
    out.push(i < 0 ? [pctDecode(part), ""] : [pctDecode(part.slice(0, i)), pctDecode(part.slice(i + 1))])
  }
  return out
}

/** `<bucket>-<appid>.cos.<region>.<domain>[:port]`; any other Host goes to the default bucket. */
export const hostRe = /^([a-z0-9-]+-[0-9]+)\.cos\.[a-z0-9-]+\.[^:]+(?::[0-9]+)?$/

/** SDKs spell it `uploadId`; signing lower-cases names, so accept either. */
export const uploadIdOf = (query: Query): string | undefined => query.get("uploadId") ?? query.get("uploadid")

const listParams = new Set(["prefix", "delimiter", "marker", "max-keys", "encoding-type"])
const hasSubresource = (query: Query) => {
  for (const k of query.keys()) {
    if (!listParams.has(k) && !k.startsWith("q-") && k !== "x-cos-security-token") return true
  }
  return false
}

export const operationOf = (method: string, isBucket: boolean, query: Query): Faults.Operation => {
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

/** `max-keys` and its kin: absent or empty is 1000, anything but digits is invalid. */
export const parseMaxKeys = (s: string | undefined): number | undefined => {
  if (s === undefined || s === "") return 1000
  if (!/^[0-9]+$/.test(s)) return undefined
  // docs/protocol.md §3: larger values clamp to 1000.
  return Math.min(1000, Number(s))
}

/** The request ids of one fake: the second of the request and a counter of its own. */
export class RequestIds {
  private count = 0
  next(now: number): string {
    return Buffer.from(`${Math.floor(now / 1000).toString(16)}_${(++this.count).toString(16)}_fake`).toString("base64")
  }
}

/** One request being answered: its time and id, the COS headers of every answer, and what the stats log records. */
export class Ctx {
  code: string | undefined
  keys: number | undefined
  constructor(
    readonly now: number,
    readonly method: string,
    readonly resource: string,
    readonly requestId: string,
    /** The fake's renderer of list entries (its caches are per fake). */
    readonly render: Renderer
  ) {}
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
  /** The MalformedXML answer, for bodies the fake cannot read. */
  malformedXml(message = "The XML you provided was not well-formed or did not validate against our published schema.") {
    return this.error(400, "MalformedXML", message)
  }
}
