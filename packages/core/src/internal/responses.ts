/**
 * Typed decoding of COS's XML answers (docs/protocol.md §3, §4, §5) from the tree of internal/xml.ts.
 *
 * Decoders throw {@link Malformed} with a readable detail; the client turns it into `CosDecodeError`.
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import type {
  CompleteMultipartUploadResult,
  CreateMultipartUploadResult,
  DeletedEntry,
  DeleteErrorEntry,
  DeleteMarkerEntry,
  ListMultipartUploadsPage,
  ListObjectsPage,
  ListPartsPage,
  ListVersionsPage,
  MultipartUpload,
  ObjectSummary,
  ObjectVersion,
  Part,
  Principal,
  VersionEntry
} from "../CosClient.js"
import type { XmlElement } from "./xml.js"
import { childText, Cursor, isGiveUp } from "./xml.js"

/** @internal */
export { parseIsoMillis }

/** @internal */
export class Malformed {
  constructor(readonly detail: string) {}
}

const expectRoot = (root: XmlElement, name: string): void => {
  if (root.name !== name) throw new Malformed(`expected a <${name}> document, got <${root.name}>`)
}

const urlDecode = (value: string, field: string): string => {
  if (value.indexOf("%") < 0) return value
  try {
    return decodeURIComponent(value)
  } catch {
    throw new Malformed(`${field} ${JSON.stringify(value.slice(0, 100))} is not valid url-encoding`)
  }
}

const digit = (s: string, i: number): number => {
  const d = s.charCodeAt(i) - 48
  return d >= 0 && d <= 9 ? d : NaN
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468
}

/**
 * `YYYY-MM-DDTHH:MM:SS.sssZ`, COS's form of LastModified (docs/protocol.md §3), read by hand: `Date.parse` costs
 * ~0.4 µs, a sizeable part of the per-key budget. Anything else goes to `Date.parse`.
 */
const parseIsoMillis = (s: string): number => {
  if (
    s.length !== 24 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 ||
    s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || s.charCodeAt(19) !== 46 || s.charCodeAt(23) !== 90
  ) return Date.parse(s)
  const year = digit(s, 0) * 1000 + digit(s, 1) * 100 + digit(s, 2) * 10 + digit(s, 3)
  const month = digit(s, 5) * 10 + digit(s, 6)
  const day = digit(s, 8) * 10 + digit(s, 9)
  const hour = digit(s, 11) * 10 + digit(s, 12)
  const minute = digit(s, 14) * 10 + digit(s, 15)
  const second = digit(s, 17) * 10 + digit(s, 18)
  const ms = digit(s, 20) * 100 + digit(s, 21) * 10 + digit(s, 22)
  // NaN fails every comparison; days past the 28th are left to Date.parse, which knows month lengths.
  if (!(month >= 1 && month <= 12 && day >= 1 && day <= 28 && hour <= 23 && minute <= 59 && second <= 59 && ms >= 0)) {
    return Date.parse(s)
  }
  return daysFromCivil(year, month, day) * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms
}

const parseDate = (value: string | undefined, field: string): Date => {
  if (value === undefined) throw new Malformed(`an entry has no ${field}`)
  const ms = parseIsoMillis(value)
  if (Number.isNaN(ms)) throw new Malformed(`${field} ${JSON.stringify(value.slice(0, 40))} is not a date`)
  return new Date(ms)
}

const parseSize = (value: string | undefined): number => {
  if (value === undefined) throw new Malformed("an entry has no Size")
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0 || value.trim() === "") {
    throw new Malformed(`Size ${JSON.stringify(value.slice(0, 40))} is not a byte count`)
  }
  return n
}

const parseBool = (value: string | undefined, field: string): boolean => {
  if (value === "true") return true
  if (value === "false") return false
  throw new Malformed(`${field} is ${value === undefined ? "missing" : JSON.stringify(value.slice(0, 40))}`)
}

const parseMaxKeys = (value: string | undefined): number => {
  if (value === undefined) return 1000
  const n = Number(value)
  if (!Number.isSafeInteger(n)) throw new Malformed(`MaxKeys ${JSON.stringify(value.slice(0, 40))} is not a number`)
  return n
}

// ---------------------------------------------------------------------------------------------------------------
// GET Bucket (docs/protocol.md §3)
// ---------------------------------------------------------------------------------------------------------------

/**
 * The fields an entry of every listing may carry (an object, a version, an upload, a part), as the texts read: the
 * first `Key`, `LastModified` and `Size`, the last `ETag` and `StorageClass` (as {@link contentsEntry} reads them on
 * the hot path).
 */
interface EntryFields {
  key: string | undefined
  lastModified: string | undefined
  etag: string
  size: string | undefined
  storageClass: string
}

/** Reads `child` into `fields` if it is one of them; `false` for any other element (the caller's own fields). */
const readEntryField = (fields: EntryFields, child: XmlElement): boolean => {
  const name = child.name
  if (name === "Key") fields.key ??= child.text
  else if (name === "LastModified") fields.lastModified ??= child.text
  else if (name === "ETag") fields.etag = child.text
  else if (name === "Size") fields.size ??= child.text
  else if (name === "StorageClass") fields.storageClass = child.text
  else return false
  return true
}

const entryFields = (): EntryFields => ({
  key: undefined,
  lastModified: undefined,
  etag: "",
  size: undefined,
  storageClass: "STANDARD"
})

const objectSummary = (element: XmlElement, url: boolean): ObjectSummary => {
  const fields = entryFields()
  for (const child of element.children) readEntryField(fields, child)
  if (fields.key === undefined) throw new Malformed("a <Contents> entry has no <Key>")
  return {
    key: url ? urlDecode(fields.key, "Key") : fields.key,
    lastModified: parseDate(fields.lastModified, "LastModified"),
    etag: fields.etag,
    size: parseSize(fields.size),
    storageClass: fields.storageClass
  }
}

const commonPrefix = (element: XmlElement, url: boolean): string => {
  const prefix = childText(element, "Prefix")
  if (prefix === undefined) throw new Malformed("a <CommonPrefixes> entry has no <Prefix>")
  return url ? urlDecode(prefix, "Prefix") : prefix
}

/** What GET Bucket and GET Bucket versions answers both carry besides their entries and markers (§3). */
interface ListingHead {
  name: string
  prefix: string
  maxKeys: string | undefined
  delimiter: string | undefined
  isTruncated: string | undefined
  readonly commonPrefixes: Array<string>
}

const listingHead = (): ListingHead => ({
  name: "",
  prefix: "",
  maxKeys: undefined,
  delimiter: undefined,
  isTruncated: undefined,
  commonPrefixes: []
})

/** Reads `child` into `head` if it is one of the shared elements (the entries are matched before, by the caller). */
const readListingHead = (head: ListingHead, child: XmlElement, url: boolean): void => {
  switch (child.name) {
    case "CommonPrefixes":
      head.commonPrefixes.push(commonPrefix(child, url))
      break
    case "Name":
      head.name = child.text
      break
    case "Prefix":
      head.prefix = url ? urlDecode(child.text, "Prefix") : child.text
      break
    case "MaxKeys":
      head.maxKeys = child.text
      break
    case "Delimiter":
      head.delimiter = child.text
      break
    case "IsTruncated":
      head.isTruncated = child.text
      break
  }
}

/**
 * `encoding-type=url` fields are decoded only if COS says it encoded them (`<EncodingType>url</EncodingType>`).
 *
 * @internal
 */
export const listObjectsPage = (root: XmlElement): ListObjectsPage => {
  expectRoot(root, "ListBucketResult")
  const url = childText(root, "EncodingType") === "url"
  const head = listingHead()
  let marker = ""
  let nextMarker: string | undefined
  const contents: Array<ObjectSummary> = []
  for (const child of root.children) {
    switch (child.name) {
      case "Contents":
        contents.push(objectSummary(child, url))
        break
      case "Marker":
        marker = url ? urlDecode(child.text, "Marker") : child.text
        break
      case "NextMarker":
        nextMarker = url ? urlDecode(child.text, "NextMarker") : child.text
        break
      default:
        readListingHead(head, child, url)
    }
  }
  return {
    name: head.name,
    prefix: head.prefix,
    marker,
    maxKeys: parseMaxKeys(head.maxKeys),
    delimiter: head.delimiter,
    isTruncated: parseBool(head.isTruncated, "IsTruncated"),
    nextMarker,
    contents,
    commonPrefixes: head.commonPrefixes
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GET Bucket versions (docs/protocol.md §3)
// ---------------------------------------------------------------------------------------------------------------

const versionEntry = (element: XmlElement, url: boolean, marker: boolean): VersionEntry => {
  const fields = entryFields()
  let versionId = ""
  let isLatest: string | undefined
  for (const child of element.children) {
    if (readEntryField(fields, child)) continue
    if (child.name === "VersionId") versionId = child.text
    else if (child.name === "IsLatest") isLatest = child.text
  }
  const { etag, key, lastModified, size, storageClass } = fields
  if (key === undefined) throw new Malformed(`a <${element.name}> entry has no <Key>`)
  const decodedKey = url ? urlDecode(key, "Key") : key
  if (marker) {
    const entry: DeleteMarkerEntry = {
      _tag: "DeleteMarker",
      key: decodedKey,
      versionId,
      isLatest: parseBool(isLatest, "IsLatest"),
      lastModified: parseDate(lastModified, "LastModified")
    }
    return entry
  }
  const entry: ObjectVersion = {
    _tag: "Version",
    key: decodedKey,
    versionId,
    isLatest: parseBool(isLatest, "IsLatest"),
    lastModified: parseDate(lastModified, "LastModified"),
    etag,
    size: parseSize(size),
    storageClass
  }
  return entry
}

/** @internal */
export const listVersionsPage = (root: XmlElement): ListVersionsPage => {
  expectRoot(root, "ListVersionsResult")
  const url = childText(root, "EncodingType") === "url"
  const head = listingHead()
  let keyMarker = ""
  let versionIdMarker = ""
  let nextKeyMarker: string | undefined
  let nextVersionIdMarker: string | undefined
  const versions: Array<VersionEntry> = []
  for (const child of root.children) {
    switch (child.name) {
      case "Version":
        versions.push(versionEntry(child, url, false))
        break
      case "DeleteMarker":
        versions.push(versionEntry(child, url, true))
        break
      case "KeyMarker":
        keyMarker = url ? urlDecode(child.text, "KeyMarker") : child.text
        break
      case "VersionIdMarker":
        versionIdMarker = child.text
        break
      case "NextKeyMarker":
        nextKeyMarker = url ? urlDecode(child.text, "NextKeyMarker") : child.text
        break
      case "NextVersionIdMarker":
        nextVersionIdMarker = child.text
        break
      default:
        readListingHead(head, child, url)
    }
  }
  return {
    name: head.name,
    prefix: head.prefix,
    keyMarker,
    versionIdMarker,
    maxKeys: parseMaxKeys(head.maxKeys),
    delimiter: head.delimiter,
    isTruncated: parseBool(head.isTruncated, "IsTruncated"),
    nextKeyMarker,
    nextVersionIdMarker,
    versions,
    commonPrefixes: head.commonPrefixes
  }
}

// ---------------------------------------------------------------------------------------------------------------
// POST ?delete (docs/protocol.md §4)
// ---------------------------------------------------------------------------------------------------------------

/** @internal */
export interface DeleteReply {
  readonly deleted: ReadonlyArray<DeletedEntry>
  readonly errors: ReadonlyArray<DeleteErrorEntry>
}

/** @internal */
export const deleteResult = (root: XmlElement): DeleteReply => {
  expectRoot(root, "DeleteResult")
  const deleted: Array<DeletedEntry> = []
  const errors: Array<DeleteErrorEntry> = []
  for (const child of root.children) {
    if (child.name === "Deleted") {
      let key: string | undefined
      let versionId: string | undefined
      let deleteMarker = false
      let deleteMarkerVersionId: string | undefined
      for (const field of child.children) {
        switch (field.name) {
          case "Key":
            key ??= field.text
            break
          case "VersionId":
            versionId = field.text
            break
          case "DeleteMarker":
            deleteMarker = field.text === "true"
            break
          case "DeleteMarkerVersionId":
            deleteMarkerVersionId = field.text
            break
        }
      }
      if (key === undefined) throw new Malformed("a <Deleted> entry has no <Key>")
      deleted.push({ _tag: "Deleted", key, versionId, deleteMarker, deleteMarkerVersionId })
    } else if (child.name === "Error") {
      const key = childText(child, "Key")
      if (key === undefined) throw new Malformed("an <Error> entry has no <Key>")
      errors.push({
        _tag: "Error",
        key,
        versionId: childText(child, "VersionId"),
        code: childText(child, "Code") ?? "Unknown",
        message: childText(child, "Message") ?? ""
      })
    }
  }
  return { deleted, errors }
}

// ---------------------------------------------------------------------------------------------------------------
// multipart uploads (docs/protocol.md "Multipart uploads")
// ---------------------------------------------------------------------------------------------------------------

const months: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11
}
const asctimeRe = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/

/**
 * `Initiated` and a part's `LastModified`: ISO 8601, or asctime (`Wed Jan 18 16:04:17 2017`) in older answers, read
 * as UTC (`Date.parse` would read asctime in the machine's zone).
 */
const parseUploadDate = (value: string | undefined, field: string): Date => {
  if (value === undefined) throw new Malformed(`an entry has no ${field}`)
  const m = asctimeRe.exec(value.trim())
  if (m !== null && months[m[1]!] !== undefined) {
    return new Date(Date.UTC(Number(m[6]), months[m[1]!]!, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])))
  }
  return parseDate(value, field)
}

/** `true`/`false` in every sampled answer, `TRUE`/`FALSE` in the docs' table. */
const parseBoolAnyCase = (value: string | undefined, field: string): boolean => parseBool(value?.toLowerCase(), field)

const parseCount = (value: string | undefined, field: string, fallback: number): number => {
  if (value === undefined || value === "") return fallback
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Malformed(`${field} ${JSON.stringify(value.slice(0, 40))} is not a number`)
  }
  return n
}

/** Whether the answer says it url-encoded its fields; the element's name varies (hyphen or not, any case). */
const isUrlEncoded = (root: XmlElement): boolean => {
  for (const child of root.children) {
    const name = child.name.toLowerCase()
    if ((name === "encoding-type" || name === "encodingtype") && child.text === "url") return true
  }
  return false
}

const principal = (element: XmlElement): Principal => ({
  id: childText(element, "ID") ?? "",
  displayName: childText(element, "DisplayName") ?? ""
})

/** @internal */
export const initiateResult = (root: XmlElement): CreateMultipartUploadResult => {
  expectRoot(root, "InitiateMultipartUploadResult")
  const uploadId = childText(root, "UploadId")
  if (uploadId === undefined || uploadId === "") throw new Malformed("the answer has no <UploadId>")
  const url = isUrlEncoded(root)
  const key = childText(root, "Key") ?? ""
  return { bucket: childText(root, "Bucket") ?? "", key: url ? urlDecode(key, "Key") : key, uploadId }
}

/** @internal */
export const completeResult = (root: XmlElement): Omit<CompleteMultipartUploadResult, "versionId"> => {
  expectRoot(root, "CompleteMultipartUploadResult")
  // Python and Go SDKs treat a result without ETag as a failed completion; so do we.
  const etag = childText(root, "ETag")
  if (etag === undefined || etag === "") throw new Malformed("the completion answer has no <ETag>")
  return {
    location: childText(root, "Location") ?? "",
    bucket: childText(root, "Bucket") ?? "",
    key: childText(root, "Key") ?? "",
    etag
  }
}

const upload = (element: XmlElement, url: boolean): MultipartUpload => {
  const fields = entryFields()
  let uploadId: string | undefined
  let initiated: string | undefined
  let initiator: Principal | undefined
  let owner: Principal | undefined
  for (const child of element.children) {
    if (readEntryField(fields, child)) continue
    switch (child.name) {
      case "UploadId":
      case "UploadID":
        uploadId ??= child.text
        break
      case "Initiated":
        initiated ??= child.text
        break
      case "Initiator":
        initiator = principal(child)
        break
      case "Owner":
        owner = principal(child)
        break
    }
  }
  const key = fields.key
  if (key === undefined) throw new Malformed("an <Upload> entry has no <Key>")
  if (uploadId === undefined || uploadId === "") throw new Malformed("an <Upload> entry has no <UploadId>")
  return {
    key: url ? urlDecode(key, "Key") : key,
    uploadId: url ? urlDecode(uploadId, "UploadId") : uploadId,
    storageClass: fields.storageClass.toUpperCase(),
    initiated: parseUploadDate(initiated, "Initiated"),
    initiator,
    owner
  }
}

/**
 * Parsed by element name: answers differ from the documented order and send empty markers; `CommonPrefixs` (a 2017
 * spelling) is read like `CommonPrefixes`.
 *
 * @internal
 */
export const listUploadsPage = (root: XmlElement): ListMultipartUploadsPage => {
  expectRoot(root, "ListMultipartUploadsResult")
  const url = isUrlEncoded(root)
  const dec = (value: string, field: string) => (url ? urlDecode(value, field) : value)
  let bucket = ""
  let prefix = ""
  let delimiter: string | undefined
  let keyMarker = ""
  let uploadIdMarker = ""
  let maxUploads: string | undefined
  let isTruncated: string | undefined
  let nextKeyMarker: string | undefined
  let nextUploadIdMarker: string | undefined
  const uploads: Array<MultipartUpload> = []
  const commonPrefixes: Array<string> = []
  for (const child of root.children) {
    switch (child.name) {
      case "Upload":
        uploads.push(upload(child, url))
        break
      case "CommonPrefixes":
      case "CommonPrefixs":
        commonPrefixes.push(commonPrefix(child, url))
        break
      case "Bucket":
        bucket = child.text
        break
      case "Prefix":
        prefix = dec(child.text, "Prefix")
        break
      case "Delimiter":
        if (child.text !== "") delimiter = child.text
        break
      case "KeyMarker":
        keyMarker = dec(child.text, "KeyMarker")
        break
      case "UploadIdMarker":
        uploadIdMarker = dec(child.text, "UploadIdMarker")
        break
      case "MaxUploads":
        maxUploads = child.text
        break
      case "IsTruncated":
        isTruncated = child.text
        break
      case "NextKeyMarker":
        nextKeyMarker = dec(child.text, "NextKeyMarker")
        break
      case "NextUploadIdMarker":
        nextUploadIdMarker = dec(child.text, "NextUploadIdMarker")
        break
    }
  }
  return {
    bucket,
    prefix,
    delimiter,
    keyMarker,
    uploadIdMarker,
    maxUploads: parseCount(maxUploads, "MaxUploads", 1000),
    isTruncated: parseBoolAnyCase(isTruncated, "IsTruncated"),
    nextKeyMarker,
    nextUploadIdMarker,
    uploads,
    commonPrefixes
  }
}

const part = (element: XmlElement): Part => {
  const fields = entryFields()
  let partNumber: string | undefined
  for (const child of element.children) {
    if (!readEntryField(fields, child) && child.name === "PartNumber") partNumber ??= child.text
  }
  const n = parseCount(partNumber, "PartNumber", NaN)
  if (!(n >= 1)) throw new Malformed("a <Part> entry has no valid <PartNumber>")
  return {
    partNumber: n,
    lastModified: parseUploadDate(fields.lastModified, "LastModified"),
    etag: fields.etag,
    size: parseSize(fields.size)
  }
}

/** @internal */
export const listPartsPage = (root: XmlElement): ListPartsPage => {
  expectRoot(root, "ListPartsResult")
  const url = isUrlEncoded(root)
  let bucket = ""
  let key = ""
  let uploadId = ""
  let storageClass = "STANDARD"
  let partNumberMarker: string | undefined
  let nextPartNumberMarker: string | undefined
  let maxParts: string | undefined
  let isTruncated: string | undefined
  const parts: Array<Part> = []
  for (const child of root.children) {
    switch (child.name) {
      case "Part":
        parts.push(part(child))
        break
      case "Bucket":
        bucket = child.text
        break
      case "Key":
        key = url ? urlDecode(child.text, "Key") : child.text
        break
      case "UploadId":
        uploadId = child.text
        break
      case "StorageClass":
        storageClass = child.text.toUpperCase()
        break
      case "PartNumberMarker":
        partNumberMarker = child.text
        break
      case "NextPartNumberMarker":
        nextPartNumberMarker = child.text
        break
      case "MaxParts":
        maxParts = child.text
        break
      case "IsTruncated":
        isTruncated = child.text
        break
    }
  }
  return {
    bucket,
    key,
    uploadId,
    storageClass,
    partNumberMarker: parseCount(partNumberMarker, "PartNumberMarker", 0),
    nextPartNumberMarker: nextPartNumberMarker === undefined || nextPartNumberMarker === ""
      ? undefined
      : parseCount(nextPartNumberMarker, "NextPartNumberMarker", 0),
    maxParts: parseCount(maxParts, "MaxParts", 1000),
    isTruncated: parseBoolAnyCase(isTruncated, "IsTruncated"),
    parts
  }
}

// ---------------------------------------------------------------------------------------------------------------
// <Error> (docs/protocol.md §5)
// ---------------------------------------------------------------------------------------------------------------

const ErrorBody = Schema.Struct({
  Code: Schema.NonEmptyString,
  Message: Schema.optionalWith(Schema.String, { default: () => "" }),
  Resource: Schema.optional(Schema.String),
  RequestId: Schema.optional(Schema.String),
  TraceId: Schema.optional(Schema.String),
  ServerTime: Schema.optional(Schema.String)
})

/** @internal */
export type ErrorBody = typeof ErrorBody.Type

const decodeErrorBody = Schema.decodeUnknownEither(ErrorBody)

/** @internal */
export const errorBody = (root: XmlElement): ErrorBody => {
  expectRoot(root, "Error")
  const fields: Record<string, string> = {}
  for (const child of root.children) {
    if (child.children.length === 0 && !(child.name in fields)) fields[child.name] = child.text
  }
  const result = decodeErrorBody(fields)
  if (result._tag === "Left") throw new Malformed("an <Error> document without a <Code>")
  return result.right
}

// ---------------------------------------------------------------------------------------------------------------
// shape readers: the two answers of a purge's hot path, decoded straight from the text
// ---------------------------------------------------------------------------------------------------------------

/**
 * Reads a document whose root is `root` with `read` (called just after the root's start tag, it reads up to the
 * root's end tag; `empty`: the root has no children, its end tag already read). `undefined` whenever the tree path would not give a value: the fast reader gives up (the cursor
 * makes the same moves as `Xml.readSimple`, so the general parser then decides) or the decoder finds the document
 * malformed (the tree path then builds the same error), or the root is another element.
 */
const shaped = <A>(s: string, root: string, read: (c: Cursor, empty: boolean) => A): A | undefined => {
  const c = new Cursor(s)
  if (!c.prolog()) return undefined
  try {
    c.openTag()
    if (c.name !== root) return undefined
    const out = read(c, c.selfClosing || c.leaf(root) !== undefined)
    return c.atEnd() ? out : undefined
  } catch (e) {
    if (isGiveUp(e) || e instanceof Malformed) return undefined
    throw e
  }
}

/** A child's text as the tree gives it: "" for a self-closing element or a container. */
const textOf = (c: Cursor, depth: number): string => c.selfClosing ? "" : c.text(c.name, depth)

interface MutableSummary {
  key: string
  lastModified: Date
  etag: string
  size: number
  storageClass: string
}

/** Just after `<Contents>` (depth 1): what {@link objectSummary} makes of it, the key not yet url-decoded. */
const contentsEntry = (c: Cursor): MutableSummary => {
  let key: string | undefined
  let lastModified: string | undefined
  let etag = ""
  let size: string | undefined
  let storageClass = "STANDARD"
  while (c.next("Contents")) {
    c.openTag()
    const name = c.name
    if (name === "Owner") {
      // read (checked) and dropped: a summary has no owner
      if (!c.selfClosing) c.text(name, 2)
      continue
    }
    const text = textOf(c, 2)
    switch (name) {
      case "Key":
        key ??= text
        break
      case "LastModified":
        lastModified ??= text
        break
      case "ETag":
        etag = text
        break
      case "Size":
        size ??= text
        break
      case "StorageClass":
        storageClass = text
        break
    }
  }
  if (key === undefined) throw new Malformed("a <Contents> entry has no <Key>")
  return { key, lastModified: parseDate(lastModified, "LastModified"), etag, size: parseSize(size), storageClass }
}

/** Just after the start tag of a container at depth 1: the text of its first `<Prefix>` child, if any. */
const firstPrefix = (c: Cursor, container: string): string | undefined => {
  let prefix: string | undefined
  while (c.next(container)) {
    c.openTag()
    const name = c.name
    const text = textOf(c, 2)
    if (name === "Prefix") prefix ??= text
  }
  return prefix
}

/**
 * A GET Bucket page decoded straight from the text, exactly as {@link listObjectsPage} decodes the tree of
 * `Xml.parse`; `undefined` (use the tree path) on anything else. test/xml.test.ts checks the two agree on random and
 * hostile documents.
 *
 * @internal
 */
export const listObjectsPageShape = (s: string): ListObjectsPage | undefined =>
  shaped(s, "ListBucketResult", (c, empty) => {
    let encodingType: string | undefined
    let name = ""
    let prefix = ""
    let marker = ""
    let maxKeys: string | undefined
    let delimiter: string | undefined
    let isTruncated: string | undefined
    let nextMarker: string | undefined
    /** Every url-encoded field met (repeats included: the tree path decodes each one). */
    const encoded: Array<string> = []
    const contents: Array<MutableSummary> = []
    const commonPrefixes: Array<string> = []
    while (!empty && c.next("ListBucketResult")) {
      c.openTag()
      const field = c.name
      if (field === "Contents") {
        if (c.selfClosing || c.leaf("Contents") !== undefined) throw new Malformed("a <Contents> entry has no <Key>")
        contents.push(contentsEntry(c))
        continue
      }
      if (field === "CommonPrefixes") {
        const p = c.selfClosing || c.leaf(field) !== undefined ? undefined : firstPrefix(c, field)
        if (p === undefined) throw new Malformed("a <CommonPrefixes> entry has no <Prefix>")
        commonPrefixes.push(p)
        continue
      }
      const text = textOf(c, 1)
      switch (field) {
        case "EncodingType":
          encodingType ??= text
          break
        case "Name":
          name = text
          break
        case "Prefix":
          prefix = text
          encoded.push(text)
          break
        case "Marker":
          marker = text
          encoded.push(text)
          break
        case "MaxKeys":
          maxKeys = text
          break
        case "Delimiter":
          delimiter = text
          break
        case "IsTruncated":
          isTruncated = text
          break
        case "NextMarker":
          nextMarker = text
          encoded.push(text)
          break
      }
    }
    if (encodingType === "url") {
      for (const e of encoded) urlDecode(e, "Prefix")
      prefix = urlDecode(prefix, "Prefix")
      marker = urlDecode(marker, "Marker")
      if (nextMarker !== undefined) nextMarker = urlDecode(nextMarker, "NextMarker")
      for (let i = 0; i < contents.length; i++) contents[i]!.key = urlDecode(contents[i]!.key, "Key")
      for (let i = 0; i < commonPrefixes.length; i++) commonPrefixes[i] = urlDecode(commonPrefixes[i]!, "Prefix")
    }
    const page: ListObjectsPage = {
      name,
      prefix,
      marker,
      maxKeys: parseMaxKeys(maxKeys),
      delimiter,
      isTruncated: parseBool(isTruncated, "IsTruncated"),
      nextMarker,
      contents,
      commonPrefixes
    }
    return page
  })

/**
 * A batch-delete reply decoded straight from the text, exactly as {@link deleteResult} decodes the tree of
 * `Xml.parse`; `undefined` (use the tree path) on anything else.
 *
 * @internal
 */
export const deleteResultShape = (s: string): DeleteReply | undefined =>
  shaped(s, "DeleteResult", (c, empty) => {
    const deleted: Array<DeletedEntry> = []
    const errors: Array<DeleteErrorEntry> = []
    while (!empty && c.next("DeleteResult")) {
      c.openTag()
      const entry = c.name
      if (entry !== "Deleted" && entry !== "Error") {
        textOf(c, 1)
        continue
      }
      // a self-closing or text-only entry has no fields (and so no Key)
      const fields = !c.selfClosing && c.leaf(entry) === undefined
      let key: string | undefined
      let versionId: string | undefined
      if (entry === "Deleted") {
        let deleteMarker = false
        let deleteMarkerVersionId: string | undefined
        while (fields && c.next(entry)) {
          c.openTag()
          const name = c.name
          const text = textOf(c, 2)
          switch (name) {
            case "Key":
              key ??= text
              break
            case "VersionId":
              versionId = text
              break
            case "DeleteMarker":
              deleteMarker = text === "true"
              break
            case "DeleteMarkerVersionId":
              deleteMarkerVersionId = text
              break
          }
        }
        if (key === undefined) throw new Malformed("a <Deleted> entry has no <Key>")
        deleted.push({ _tag: "Deleted", key, versionId, deleteMarker, deleteMarkerVersionId })
      } else {
        let code: string | undefined
        let message: string | undefined
        while (fields && c.next(entry)) {
          c.openTag()
          const name = c.name
          const text = textOf(c, 2)
          switch (name) {
            case "Key":
              key ??= text
              break
            case "VersionId":
              versionId ??= text
              break
            case "Code":
              code ??= text
              break
            case "Message":
              message ??= text
              break
          }
        }
        if (key === undefined) throw new Malformed("an <Error> entry has no <Key>")
        errors.push({ _tag: "Error", key, versionId, code: code ?? "Unknown", message: message ?? "" })
      }
    }
    return { deleted, errors }
  })
