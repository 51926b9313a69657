// GET / PUT Bucket versioning (docs/protocol.md §6).
import { MalformedXml, parseXml } from "../deleteXml.js"
import type { Bucket } from "../store.js"
import type { Ctx, FakeRequest, FakeResponse } from "./request.js"
import { XML_DECL } from "./xml.js"

export const getVersioning = (ctx: Ctx, bucket: Bucket): FakeResponse =>
  ctx.ok(
    200,
    bucket.versioning === "NeverEnabled" ?
      `${XML_DECL}<VersioningConfiguration/>` :
      `${XML_DECL}<VersioningConfiguration><Status>${bucket.versioning}</Status></VersioningConfiguration>`
  )

export const putVersioning = (ctx: Ctx, bucket: Bucket, req: FakeRequest): FakeResponse => {
  let status: string | undefined
  try {
    const root = parseXml(req.body)
    if (root.name !== "VersioningConfiguration") throw new MalformedXml("root")
    status = root.children.find((c) => c.name === "Status")?.text.trim()
  } catch (e) {
    if (!(e instanceof MalformedXml)) throw e
  }
  if (status !== "Enabled" && status !== "Suspended") return ctx.malformedXml()
  bucket.versioning = status
  return ctx.ok(200, "")
}
