// Bucket listings: GET Bucket (objects) and GET Bucket Object Versions (docs/protocol.md §3). Each page is one
// string built by concatenation, in the element order of §3: this is the fake's hot path (bench/fake-seed-list.ts).
import type { Bucket } from "../store.js"
import { type Ctx, type FakeResponse, parseMaxKeys, type Query } from "./request.js"
import { el, ownerXml, urlEncodeKey, XML_DECL, xmlEscape } from "./xml.js"

/** `max-keys` within the configured listing page size (Faults.Config.listPageSize), when there is one. */
const pageSize = (maxKeys: number | undefined, cap: number | undefined): number | undefined =>
  maxKeys === undefined || cap === undefined ? maxKeys : Math.min(maxKeys, Math.max(1, Math.floor(cap)))

/** What both listings read from the query: encoding, page size, prefix and delimiter (an empty one is none). */
interface ListingQuery {
  readonly _tag: "ListingQuery"
  readonly url: boolean
  readonly enc: (s: string) => string
  readonly maxKeys: number
  readonly prefix: string
  readonly delimiter: string | undefined
}

/** The shared part of both listings' query, or the 400 a bad `encoding-type` or `max-keys` gets. */
const listingQuery = (ctx: Ctx, q: Query, pageCap: number | undefined): ListingQuery | FakeResponse => {
  const encodingType = q.get("encoding-type")
  if (encodingType !== undefined && encodingType !== "url") {
    return ctx.error(400, "InvalidArgument", "encoding-type must be url")
  }
  const maxKeys = pageSize(parseMaxKeys(q.get("max-keys")), pageCap)
  if (maxKeys === undefined) return ctx.error(400, "InvalidArgument", "max-keys is invalid")
  const delimiter = q.get("delimiter")
  return {
    _tag: "ListingQuery",
    url: encodingType === "url",
    enc: encodingType === "url" ? urlEncodeKey : xmlEscape,
    maxKeys,
    prefix: q.get("prefix") ?? "",
    delimiter: delimiter === "" ? undefined : delimiter
  }
}

export const listObjects = (ctx: Ctx, bucket: Bucket, q: Query, pageCap?: number): FakeResponse => {
  const lq = listingQuery(ctx, q, pageCap)
  if (lq._tag !== "ListingQuery") return lq
  const { delimiter, enc, maxKeys, prefix } = lq
  const marker = q.get("marker") ?? ""
  const r = bucket.list({ prefix, delimiter, marker, maxKeys })
  const owner = ownerXml(bucket.name)
  const render = ctx.render
  let xml = `${XML_DECL}<ListBucketResult><Name>${bucket.name}</Name>` +
    (lq.url ? "<EncodingType>url</EncodingType>" : "") +
    el("Prefix", enc(prefix)) + el("Marker", enc(marker)) + `<MaxKeys>${maxKeys}</MaxKeys>` +
    (delimiter !== undefined ? el("Delimiter", xmlEscape(delimiter)) : "") +
    `<IsTruncated>${r.isTruncated}</IsTruncated>` +
    (r.nextMarker !== undefined ? el("NextMarker", enc(r.nextMarker)) : "")
  for (const cp of r.commonPrefixes) xml += `<CommonPrefixes>${el("Prefix", enc(cp))}</CommonPrefixes>`
  for (const [key, v] of r.contents) {
    xml += `<Contents><Key>${enc(key)}</Key><LastModified>${render.iso(v.lastModified)}</LastModified><ETag>` +
      render.etag(v.etag) +
      `</ETag><Size>${v.size}</Size>${owner}<StorageClass>${v.storageClass}</StorageClass></Contents>`
  }
  xml += "</ListBucketResult>"
  return ctx.ok(200, xml, { "x-cos-bucket-region": bucket.region })
}

export const listVersions = (ctx: Ctx, bucket: Bucket, q: Query, pageCap?: number): FakeResponse => {
  const lq = listingQuery(ctx, q, pageCap)
  if (lq._tag !== "ListingQuery") return lq
  const { delimiter, enc, maxKeys, prefix } = lq
  const keyMarker = q.get("key-marker") ?? ""
  const versionIdMarker = q.get("version-id-marker")
  const r = bucket.listVersions({ prefix, delimiter, keyMarker, versionIdMarker, maxKeys })
  const owner = ownerXml(bucket.name)
  const render = ctx.render
  let xml = `${XML_DECL}<ListVersionsResult>` +
    (lq.url ? "<EncodingType>url</EncodingType>" : "") +
    `<Name>${bucket.name}</Name>` + el("Prefix", enc(prefix)) + el("KeyMarker", enc(keyMarker)) +
    el("VersionIdMarker", xmlEscape(versionIdMarker ?? "")) + `<MaxKeys>${maxKeys}</MaxKeys>` +
    `<IsTruncated>${r.isTruncated}</IsTruncated>` +
    (r.nextKeyMarker !== undefined ? el("NextKeyMarker", enc(r.nextKeyMarker)) : "") +
    (r.nextVersionIdMarker !== undefined ? el("NextVersionIdMarker", xmlEscape(r.nextVersionIdMarker)) : "") +
    (delimiter !== undefined ? el("Delimiter", xmlEscape(delimiter)) : "")
  for (const cp of r.commonPrefixes) xml += `<CommonPrefixes>${el("Prefix", enc(cp))}</CommonPrefixes>`
  for (const { isLatest, key, version: v } of r.versions) {
    const id = el("VersionId", bucket.renderId(v.versionId))
    xml += v.deleteMarker ?
      `<DeleteMarker><Key>${enc(key)}</Key>${id}<IsLatest>${isLatest}</IsLatest>` +
      `<LastModified>${render.iso(v.lastModified)}</LastModified>${owner}</DeleteMarker>` :
      `<Version><Key>${enc(key)}</Key>${id}<IsLatest>${isLatest}</IsLatest>` +
      `<LastModified>${render.iso(v.lastModified)}</LastModified><ETag>${render.etag(v.etag)}</ETag>` +
      `<Size>${v.size}</Size><StorageClass>${v.storageClass}</StorageClass>${owner}</Version>`
  }
  xml += "</ListVersionsResult>"
  return ctx.ok(200, xml, { "x-cos-bucket-region": bucket.region })
}
