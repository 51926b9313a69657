// Single-object operations: GET / HEAD (preconditions, ranges), PUT and DELETE Object (docs/protocol.md §4).
import { createHash } from "node:crypto"
import type { StatsState } from "../faults.js"
import type { Bucket, Version } from "../store.js"
import { utf8Length } from "../utf8.js"
import type { Ctx, FakeRequest, FakeResponse, Query } from "./request.js"

export const md5Base64 = (b: Uint8Array) => createHash("md5").update(b).digest("base64")

/**
 * The body an upload (PUT Object, Upload Part) stores, or the error it gets: a Content-Length is required (411), a
 * smaller one than the body truncates it (docs/protocol.md §4), and a Content-MD5 must match it (400 BadDigest).
 */
export const uploadedBody = (ctx: Ctx, req: FakeRequest): Uint8Array | FakeResponse => {
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
  return body
}

/** The `x-cos-meta-*` headers a request sets on its object. */
export const userMeta = (req: FakeRequest): Array<readonly [string, string]> => {
  const meta: Array<readonly [string, string]> = []
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith("x-cos-meta-") && v !== undefined) meta.push([k, v])
  }
  return meta
}

/** The error answer for a key COS would refuse to create, if it is one. */
export const keyProblem = (ctx: Ctx, key: string): FakeResponse | undefined => {
  // docs/protocol.md §1: 1–850 UTF-8 bytes, no CAN/EM/SUB/ESC.
  if (utf8Length(key) > 850) return ctx.error(400, "KeyTooLong", "The key is longer than 850 bytes.")
  if (/[\u0018-\u001b]/.test(key)) return ctx.error(400, "InvalidURI", "The key contains a forbidden character.")
  return undefined
}

const versionIdOf = (q: Query): string | undefined => q.get("versionId") ?? q.get("versionid")

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

export const getOrHead = (ctx: Ctx, bucket: Bucket, key: string, q: Query, req: FakeRequest): FakeResponse => {
  const versionId = versionIdOf(q)
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

export const putObject = (ctx: Ctx, bucket: Bucket, key: string, req: FakeRequest): FakeResponse => {
  const problem = keyProblem(ctx, key)
  if (problem) return problem
  const body = uploadedBody(ctx, req)
  if ("_tag" in body) return body
  if (req.headers["x-cos-forbid-overwrite"] === "true" && bucket.versioning === "NeverEnabled") {
    const existing = bucket.get(key)
    if (existing !== undefined && !existing.deleteMarker) {
      return ctx.error(409, "FileAlreadyExists", "The object already exists and x-cos-forbid-overwrite is true.")
    }
  }
  const meta = userMeta(req)
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

export const deleteObject = (ctx: Ctx, bucket: Bucket, key: string, q: Query, stats: StatsState): FakeResponse => {
  const versionId = versionIdOf(q)
  const r = versionId === undefined ? bucket.deleteCurrent(key, ctx.now) : bucket.deleteVersion(key, versionId)
  stats.deletedKeys++
  const extra: Record<string, string> = {}
  if (r.deleteMarker) extra["x-cos-delete-marker"] = "true"
  if (r.versionId !== undefined && (bucket.versioning !== "NeverEnabled" || versionId !== undefined)) {
    extra["x-cos-version-id"] = r.versionId
  }
  return ctx.ok(204, "", extra)
}
