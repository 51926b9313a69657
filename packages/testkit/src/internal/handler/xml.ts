// XML building for the fake's answers. String concatenation throughout: list pages are the hot path
// (docs/protocol.md §3 gives the element order).
import { Signer } from "@effect-cos/core"

export const XML_DECL = "<?xml version='1.0' encoding='utf-8' ?>\n"

const needsEscape = /[&<>"']/
export const xmlEscape = (s: string): string =>
  needsEscape.test(s) ?
    s.replace(/[&<>"']/g, (c) =>
      c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&apos;") :
    s

/** encoding-type=url: the path encoder of docs/protocol.md §1 with `/` kept. */
export const urlEncodeKey = (s: string): string => Signer.encode(s).replace(/%2F/g, "/")

/** An element with already-escaped text; empty text gives `<X></X>`, which every client reads as empty. */
export const el = (name: string, value: string) => `<${name}>${value}</${name}>`

/** The APPID is the bucket name's last `-` field. */
const appIdOf = (bucket: string): string => bucket.slice(bucket.lastIndexOf("-") + 1)

/** The `<Owner>` of list entries. */
export const ownerXml = (bucket: string): string => {
  const appId = appIdOf(bucket)
  return `<Owner><ID>${appId}</ID><DisplayName>${appId}</DisplayName></Owner>`
}

/** The `<Initiator>` / `<Owner>` of multipart listings, a CAM principal. */
export const principalXml = (bucket: string, name: "Initiator" | "Owner"): string => {
  const appId = appIdOf(bucket)
  return `<${name}><ID>qcs::cam::uin/${appId}:uin/${appId}</ID><DisplayName>${appId}</DisplayName></${name}>`
}

/**
 * Renders the per-entry values of list pages, remembering the last one of each: consecutive entries often share a
 * modification time, and seeded objects share their ETag (quoted, so escaping is never free). One per fake, so
 * fakes in one process never share a cache.
 */
export class Renderer {
  private lastIsoMs = NaN
  private lastIso = ""
  private lastEtag = ""
  private lastEtagXml = ""

  /** ISO 8601 with milliseconds, as `<LastModified>` and `<Initiated>` carry it. */
  iso(ms: number): string {
    if (ms !== this.lastIsoMs) {
      this.lastIsoMs = ms
      this.lastIso = new Date(ms).toISOString()
    }
    return this.lastIso
  }

  /** An ETag as element text. */
  etag(etag: string): string {
    if (etag !== this.lastEtag) {
      this.lastEtag = etag
      this.lastEtagXml = xmlEscape(etag)
    }
    return this.lastEtagXml
  }
}
