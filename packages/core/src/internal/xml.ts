/**
 * XML reading for COS answers: a fast reader for the simple documents COS sends (elements without attributes, text
 * with the predefined and numeric entities) and fast-xml-parser for everything else.
 *
 * Both produce the same tree; the fast one gives up (returns `undefined`) on anything outside its simple shape, and
 * the caller then uses the general parser. test/xml.test.ts checks that the two agree on random and hostile inputs.
 *
 * @internal
 */
import { XMLParser, XMLValidator } from "fast-xml-parser"

/**
 * An element: a leaf carries its decoded text, a container its child elements (and no text).
 *
 * @internal
 */
export interface XmlElement {
  readonly name: string
  readonly text: string
  readonly children: ReadonlyArray<XmlElement>
}

const noChildren: ReadonlyArray<XmlElement> = []

// ---------------------------------------------------------------------------------------------------------------
// fast reader
// ---------------------------------------------------------------------------------------------------------------

/** XML 1.0 `Char` production, for numeric character references. */
const isXmlChar = (cp: number): boolean =>
  cp === 0x9 || cp === 0xA || cp === 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
  (cp >= 0x10000 && cp <= 0x10FFFF)

const namedEntities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'" }

/** Decodes the five predefined entities and numeric references; `undefined` on anything else. */
const decodeEntities = (raw: string): string | undefined => {
  // COS's ETag, once per listed key: `&quot;<hex>&quot;` with no other reference
  const n = raw.length
  if (n >= 12 && raw.startsWith("&quot;") && raw.indexOf("&", 6) === n - 6 && raw.endsWith("&quot;")) {
    return "\"" + raw.slice(6, n - 6) + "\""
  }
  let out = ""
  let from = 0
  let amp = raw.indexOf("&")
  while (amp >= 0) {
    const semi = raw.indexOf(";", amp + 1)
    if (semi < 0 || semi - amp > 12) return undefined
    const name = raw.slice(amp + 1, semi)
    let value: string | undefined
    if (name.charCodeAt(0) === 35 /* # */) {
      const hex = name.charCodeAt(1) === 120 /* x */
      const digits = hex ? name.slice(2) : name.slice(1)
      if (!(hex ? /^[0-9a-fA-F]{1,6}$/ : /^[0-9]{1,7}$/).test(digits)) return undefined
      const cp = parseInt(digits, hex ? 16 : 10)
      if (!isXmlChar(cp)) return undefined
      value = String.fromCodePoint(cp)
    } else {
      value = namedEntities[name]
      if (value === undefined) return undefined
    }
    out += raw.slice(from, amp) + value
    from = semi + 1
    amp = raw.indexOf("&", from)
  }
  return out + raw.slice(from)
}

/** Text as a leaf value: entities decoded; CR (line-end normalisation) and `]]>` are left to the general parser. */
const leafText = (raw: string): string | undefined => {
  if (raw.indexOf("\r") >= 0 || raw.indexOf("]]>") >= 0) return undefined
  return raw.indexOf("&") < 0 ? raw : decodeEntities(raw)
}

const isBlank = (s: string, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i)
    if (c !== 32 && c !== 10 && c !== 9 && c !== 13) return false
  }
  return true
}

/** A plain ASCII element name: letter or `_` first, then letters, digits, `_`, `-`, `.`. */
const isPlainName = (s: string, from: number, to: number): boolean => {
  if (to <= from) return false
  const first = s.charCodeAt(from)
  if (!((first >= 65 && first <= 90) || (first >= 97 && first <= 122) || first === 95)) return false
  for (let i = from + 1; i < to; i++) {
    const c = s.charCodeAt(i)
    if (
      !((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45 || c === 46)
    ) return false
  }
  return true
}

/**
 * Element names of COS answers, reused instead of sliced from the document: fewer allocations, and the decoders'
 * `switch` compares them by identity. Unknown names are sliced (and checked) as usual.
 */
const knownNames: Array<string | undefined> = new Array(256)
const nameSlot = (first: number, length: number) => (first * 31 + length) & 255
for (
  const name of [
    "ListBucketResult",
    "ListVersionsResult",
    "DeleteResult",
    "Error",
    "Name",
    "EncodingType",
    "Prefix",
    "Marker",
    "MaxKeys",
    "Delimiter",
    "IsTruncated",
    "NextMarker",
    "CommonPrefixes",
    "Contents",
    "Key",
    "LastModified",
    "ETag",
    "Size",
    "Owner",
    "ID",
    "DisplayName",
    "StorageClass",
    "StorageTier",
    "KeyMarker",
    "VersionIdMarker",
    "NextKeyMarker",
    "NextVersionIdMarker",
    "Version",
    "DeleteMarker",
    "VersionId",
    "IsLatest",
    "Deleted",
    "DeleteMarkerVersionId",
    "Code",
    "Message"
  ]
) {
  knownNames[nameSlot(name.charCodeAt(0), name.length)] ??= name
}

/** Thrown by {@link Cursor} on anything outside the simple shape; callers then use the general parser. */
class GiveUp {}
const giveUp = new GiveUp()

/**
 * Whether an exception is the {@link Cursor}'s "not the simple shape".
 *
 * @internal
 */
export const isGiveUp = (e: unknown): boolean => e === giveUp

const maxDepth = 32

const declaration =
  /^<\?xml\s+version\s*=\s*(['"])1\.\d+\1(\s+encoding\s*=\s*(['"])[A-Za-z][\w.-]*\3)?(\s+standalone\s*=\s*(['"])(yes|no)\5)?\s*\?>$/

/**
 * A position in a document of the simple shape, with the few moves the reader needs. Every move throws
 * {@link GiveUp} on anything it does not handle. The tree reader ({@link readSimple}) and the shape readers of
 * internal/responses.ts (which decode the hot answers without building the tree) make the same moves, so they accept
 * exactly the same documents.
 *
 * @internal
 */
export class Cursor {
  i = 0
  /** Name of the start tag read last by {@link openTag}. */
  name = ""
  selfClosing = false
  constructor(readonly s: string) {}

  /** Skips a BOM, the XML declaration and blanks; false if the document does not start like a simple one. */
  prolog(): boolean {
    const s = this.s
    let i = 0
    if (s.charCodeAt(0) === 0xFEFF) i = 1
    // The declaration, if any, must come first (XML 1.0 §2.8).
    if (s.startsWith("<?xml", i)) {
      const end = s.indexOf("?>", i)
      if (end < 0 || !declaration.test(s.slice(i, end + 2))) return false
      i = end + 2
    }
    while (i < s.length && isBlank(s, i, i + 1)) i++
    this.i = i
    return s.charCodeAt(i) === 60 /* < */
  }

  /** True if only blanks are left. */
  atEnd(): boolean {
    return isBlank(this.s, this.i, this.s.length)
  }

  /** At `<` of a start tag: reads it into {@link name} and {@link selfClosing}. */
  openTag(): void {
    const s = this.s
    const i = this.i
    const gt = s.indexOf(">", i)
    if (gt < 0) throw giveUp
    const selfClosing = s.charCodeAt(gt - 1) === 47 /* / */
    const nameEnd = selfClosing ? gt - 1 : gt
    const known = knownNames[nameSlot(s.charCodeAt(i + 1), nameEnd - i - 1)]
    if (known !== undefined && known.length === nameEnd - i - 1 && s.startsWith(known, i + 1)) {
      this.name = known
    } else {
      if (!isPlainName(s, i + 1, nameEnd)) throw giveUp
      this.name = s.slice(i + 1, nameEnd)
    }
    this.selfClosing = selfClosing
    this.i = gt + 1
  }

  /**
   * Just after the start tag of `name`: if the element is a leaf, returns its decoded text and moves past its end
   * tag; if a child element comes first, returns `undefined` and stays before the child.
   */
  leaf(name: string): string | undefined {
    const s = this.s
    const lt = s.indexOf("<", this.i)
    if (lt < 0) throw giveUp
    const next = s.charCodeAt(lt + 1)
    if (next === 47 /* / */) {
      const close = lt + 2 + name.length
      if (s.charCodeAt(close) !== 62 /* > */ || !s.startsWith(name, lt + 2)) throw giveUp
      const text = leafText(s.slice(this.i, lt))
      if (text === undefined) throw giveUp
      this.i = close + 1
      return text
    }
    // a child element; text before it must be blank (no mixed content), no comments, CDATA or instructions
    if (next === 33 /* ! */ || next === 63 /* ? */ || !isBlank(s, this.i, lt)) throw giveUp
    this.i = lt
    return undefined
  }

  /** Inside container `name`: true before a child's start tag, false after moving past the end tag. */
  next(name: string): boolean {
    const s = this.s
    const lt = s.indexOf("<", this.i)
    if (lt < 0 || !isBlank(s, this.i, lt)) throw giveUp
    const next = s.charCodeAt(lt + 1)
    if (next === 47 /* / */) {
      const close = lt + 2 + name.length
      if (s.charCodeAt(close) !== 62 /* > */ || !s.startsWith(name, lt + 2)) throw giveUp
      this.i = close + 1
      return false
    }
    if (next === 33 /* ! */ || next === 63 /* ? */) throw giveUp
    this.i = lt
    return true
  }

  /**
   * Just after the start tag of `name` (not self-closing): its text as the tree gives it (a container's is ""),
   * moving past its end tag; the children of a container are read and dropped.
   */
  text(name: string, depth: number): string {
    const text = this.leaf(name)
    if (text !== undefined) return text
    while (this.next(name)) this.skip(depth + 1)
    return ""
  }

  /** At `<`: reads a whole element and drops it (what {@link element} accepts, without building it). */
  skip(depth: number): void {
    if (depth > maxDepth) throw giveUp
    this.openTag()
    if (this.selfClosing) return
    const name = this.name
    if (this.skipLeaf(name)) return
    while (this.next(name)) this.skip(depth + 1)
  }

  /** {@link leaf} without the text: true past the end tag of a leaf, false before the first child of a container. */
  private skipLeaf(name: string): boolean {
    const s = this.s
    const from = this.i
    const lt = s.indexOf("<", from)
    if (lt < 0) throw giveUp
    const next = s.charCodeAt(lt + 1)
    if (next === 47 /* / */) {
      const close = lt + 2 + name.length
      if (s.charCodeAt(close) !== 62 /* > */ || !s.startsWith(name, lt + 2)) throw giveUp
      // what leafText accepts: no CR, no `]]>` (which cannot reach past `<`), entities it decodes
      let amp = false
      for (let i = from; i < lt; i++) {
        const c = s.charCodeAt(i)
        if (c === 13 || (c === 93 && s.startsWith("]]>", i))) throw giveUp
        if (c === 38) amp = true
      }
      if (amp && decodeEntities(s.slice(from, lt)) === undefined) throw giveUp
      this.i = close + 1
      return true
    }
    if (next === 33 /* ! */ || next === 63 /* ? */ || !isBlank(s, from, lt)) throw giveUp
    this.i = lt
    return false
  }

  /** At `<`: reads a whole element as a tree. */
  element(depth: number): XmlElement {
    if (depth > maxDepth) throw giveUp
    this.openTag()
    const name = this.name
    if (this.selfClosing) return { name, text: "", children: noChildren }
    const text = this.leaf(name)
    if (text !== undefined) return { name, text, children: noChildren }
    const children: Array<XmlElement> = []
    while (this.next(name)) children.push(this.element(depth + 1))
    return { name, text: "", children }
  }
}

/**
 * Reads a document of the simple shape, or returns `undefined` so that the caller uses {@link parseGeneral}.
 *
 * @internal
 */
export const readSimple = (s: string): XmlElement | undefined => {
  const cursor = new Cursor(s)
  if (!cursor.prolog()) return undefined
  try {
    const root = cursor.element(0)
    return cursor.atEnd() ? root : undefined
  } catch (e) {
    if (e === giveUp) return undefined
    throw e
  }
}

// ---------------------------------------------------------------------------------------------------------------
// general parser
// ---------------------------------------------------------------------------------------------------------------

const parser = new XMLParser({
  preserveOrder: true,
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreAttributes: true,
  processEntities: true,
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false
})

type OrderedNode = Record<string, unknown>

const fromOrdered = (nodes: ReadonlyArray<OrderedNode>): Array<XmlElement> => {
  const out: Array<XmlElement> = []
  for (const node of nodes) {
    for (const key in node) {
      if (key === "#text" || key === ":@") continue
      const inner = node[key] as ReadonlyArray<OrderedNode>
      const children = fromOrdered(inner)
      let text = ""
      if (children.length === 0) {
        for (const part of inner) {
          if ("#text" in part) text += String(part["#text"])
        }
      }
      out.push({ name: key, text, children: children.length === 0 ? noChildren : children })
    }
  }
  return out
}

/**
 * The outcome of the general parser: the root element, or why the document is not well-formed XML.
 *
 * @internal
 */
export type GeneralResult =
  | { readonly _tag: "Ok"; readonly root: XmlElement }
  | { readonly _tag: "Invalid"; readonly detail: string }

/**
 * Parses any document with fast-xml-parser after validating it (fast-xml-parser alone accepts truncated input).
 *
 * @internal
 */
export const parseGeneral = (s: string): GeneralResult => {
  if (/<!DOCTYPE/i.test(s.slice(0, 1024)) && !/^\s*(<\?xml[^>]*>\s*)?<!DOCTYPE\s+html/i.test(s)) {
    return { _tag: "Invalid", detail: "a document type declaration, which COS never sends" }
  }
  const valid = XMLValidator.validate(s)
  if (valid !== true) {
    return { _tag: "Invalid", detail: `not well-formed XML (line ${valid.err.line}: ${valid.err.msg})` }
  }
  let nodes: ReadonlyArray<OrderedNode>
  try {
    nodes = parser.parse(s) as ReadonlyArray<OrderedNode>
  } catch (e) {
    // The validator lets through a few documents the parser then refuses (an unclosed declaration, for one).
    return { _tag: "Invalid", detail: `not well-formed XML (${e instanceof Error ? e.message : String(e)})` }
  }
  const roots = fromOrdered(nodes)
  if (roots.length !== 1) return { _tag: "Invalid", detail: `expected one root element, found ${roots.length}` }
  return { _tag: "Ok", root: roots[0]! }
}

/**
 * The fast reader when it can, the general parser otherwise.
 *
 * @internal
 */
export const parse = (s: string): GeneralResult => {
  const fast = readSimple(s)
  return fast === undefined ? parseGeneral(s) : { _tag: "Ok", root: fast }
}

/**
 * The text of the first child with this name, if any.
 *
 * @internal
 */
export const childText = (element: XmlElement, name: string): string | undefined => {
  for (const child of element.children) {
    if (child.name === name) return child.text
  }
  return undefined
}

/**
 * Whether a body looks like an HTML page (a proxy's or gateway's, not COS's).
 *
 * @internal
 */
export const looksLikeHtml = (body: string, contentType: string | undefined): boolean =>
  (contentType !== undefined && contentType.toLowerCase().includes("text/html")) ||
  /^\s*(<!DOCTYPE\s+html|<html[\s>])/i.test(body)

/**
 * Escapes text for an XML element body.
 *
 * @internal
 */
export const escapeText = (s: string): string =>
  /[&<>]/.test(s) ? s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;") : s
