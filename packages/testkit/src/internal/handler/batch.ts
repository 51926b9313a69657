// POST Bucket ?delete: DeleteObjects (docs/protocol.md §4 "DELETE Multiple Objects").
import { MalformedXml, parseDelete } from "../deleteXml.js"
import type { FaultState, StatsState } from "../faults.js"
import type { Bucket, DeleteOutcome } from "../store.js"
import { md5Base64 } from "./objects.js"
import type { Ctx, FakeRequest, FakeResponse } from "./request.js"
import { el, XML_DECL, xmlEscape } from "./xml.js"

const unversionedDelete: DeleteOutcome = { deleteMarker: false, versionId: undefined }

export const deleteObjects = (
  ctx: Ctx,
  bucket: Bucket,
  req: FakeRequest,
  faults: FaultState,
  stats: StatsState
): FakeResponse => {
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
      return e.message.startsWith("delete key size") ? ctx.malformedXml(e.message) : ctx.malformedXml()
    }
    throw e
  }
  // Every key counts against the batch quota (docs/protocol.md §5), so it is checked here, once the keys are known.
  if (!faults.admit(bucket.name, "DeleteObjects", parsed.objects.length, ctx.now)) {
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
    if (faults.batchKeyError()) {
      stats.batchKeyErrors++
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
    stats.deletedKeys++
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
