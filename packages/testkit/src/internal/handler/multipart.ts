// Multipart uploads (docs/protocol.md §8): initiate, upload a part, complete, abort, and the two listings
// (ListParts, ListMultipartUploads).
import { createHash } from "node:crypto"
import { MalformedXml, parseXml } from "../deleteXml.js"
import { type Bucket, type StoreImpl, Upload } from "../store.js"
import { keyProblem, md5Base64, uploadedBody, userMeta } from "./objects.js"
import { type Ctx, type FakeRequest, type FakeResponse, parseMaxKeys, type Query, uploadIdOf } from "./request.js"
import { el, principalXml, urlEncodeKey, XML_DECL, xmlEscape } from "./xml.js"

/** 1 MiB: the smallest part but the last (docs/protocol.md "Multipart uploads"). */
const MIN_PART = 1_048_576

const noSuchUpload = (ctx: Ctx) =>
  ctx.error(
    404,
    "NoSuchUpload",
    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
  )

/** The upload named by the query, if it exists and belongs to this key. */
const findUpload = (bucket: Bucket, key: string, q: Query): Upload | undefined => {
  const u = bucket.uploads.get(uploadIdOf(q) ?? "")
  return u !== undefined && u.key === key ? u : undefined
}

const unquote = (etag: string) => etag.trim().replace(/^"|"$/g, "")

export const initiate = (ctx: Ctx, bucket: Bucket, key: string, req: FakeRequest, store: StoreImpl): FakeResponse => {
  const problem = keyProblem(ctx, key)
  if (problem) return problem
  const meta = userMeta(req)
  const contentType = req.headers["content-type"]
  const u = new Upload(
    key,
    store.nextUploadId(ctx.now),
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

export const uploadPart = (ctx: Ctx, bucket: Bucket, key: string, q: Query, req: FakeRequest): FakeResponse => {
  const raw = q.get("partNumber") ?? q.get("partnumber") ?? ""
  const n = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : NaN
  if (!(n >= 1 && n <= 10_000)) return ctx.error(400, "InvalidArgument", "partNumber must be from 1 to 10000.")
  const u = findUpload(bucket, key, q)
  if (u === undefined) return noSuchUpload(ctx)
  const body = uploadedBody(ctx, req)
  if ("_tag" in body) return body
  const etag = `"${createHash("md5").update(body).digest("hex")}"`
  u.parts.set(n, { etag, body: Uint8Array.from(body), lastModified: ctx.now })
  return ctx.ok(200, "", { "etag": etag })
}

export const complete = (ctx: Ctx, bucket: Bucket, key: string, q: Query, req: FakeRequest): FakeResponse => {
  const u = findUpload(bucket, key, q)
  if (u === undefined) return noSuchUpload(ctx)
  const md5 = req.headers["content-md5"]
  if (md5 !== undefined && md5 !== md5Base64(req.body)) {
    return ctx.error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
  }
  const sent: Array<{ readonly n: number; readonly etag: string }> = []
  try {
    const root = parseXml(req.body)
    if (root.name !== "CompleteMultipartUpload") return ctx.malformedXml()
    for (const c of root.children) {
      if (c.name !== "Part") return ctx.malformedXml()
      const num = c.children.find((f) => f.name === "PartNumber")?.text.trim() ?? ""
      const etag = c.children.find((f) => f.name === "ETag")?.text
      if (!/^[0-9]{1,5}$/.test(num) || etag === undefined) return ctx.malformedXml()
      sent.push({ n: Number(num), etag })
    }
  } catch (e) {
    if (e instanceof MalformedXml) return ctx.malformedXml()
    throw e
  }
  if (sent.length === 0) return ctx.malformedXml()
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

export const abort = (ctx: Ctx, bucket: Bucket, key: string, q: Query): FakeResponse => {
  const u = findUpload(bucket, key, q)
  if (u === undefined) return noSuchUpload(ctx)
  bucket.uploads.delete(u.uploadId)
  return ctx.ok(204, "")
}

export const listParts = (ctx: Ctx, bucket: Bucket, key: string, q: Query): FakeResponse => {
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
    el("UploadId", u.uploadId) + principalXml(bucket.name, "Initiator") + principalXml(bucket.name, "Owner") +
    el("StorageClass", u.storageClass) + el("PartNumberMarker", String(marker)) +
    (truncated ? el("NextPartNumberMarker", String(page[page.length - 1])) : "") +
    el("MaxParts", String(maxParts)) + el("IsTruncated", String(truncated))
  for (const n of page) {
    const p = u.parts.get(n)!
    xml += `<Part>${el("PartNumber", String(n))}${el("LastModified", ctx.render.iso(p.lastModified))}` +
      `${el("ETag", xmlEscape(p.etag))}${el("Size", String(p.body.length))}</Part>`
  }
  return ctx.ok(200, xml + "</ListPartsResult>")
}

export const listUploads = (ctx: Ctx, bucket: Bucket, q: Query): FakeResponse => {
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
      principalXml(bucket.name, "Initiator") + principalXml(bucket.name, "Owner") +
      `${el("Initiated", ctx.render.iso(u.initiated))}</Upload>`
  }
  for (const cp of r.commonPrefixes) xml += `<CommonPrefixes>${el("Prefix", enc(cp))}</CommonPrefixes>`
  return ctx.ok(200, xml + "</ListMultipartUploadsResult>", { "x-cos-bucket-region": bucket.region })
}
