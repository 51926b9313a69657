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

class GiveUp {}
const giveUp = new GiveUp()

const maxDepth = 32

const declaration =
  /^<\?xml\s+version\s*=\s*(['"])1\.\d+\1(\s+encoding\s*=\s*(['"])[A-Za-z][\w.-]*\3)?(\s+standalone\s*=\s*(['"])(yes|no)\5)?\s*\?>$/

/**
 * Reads a document of the simple shape, or returns `undefined` so that the caller uses {@link parseGeneral}.
 *
 * @internal
 */
export const readSimple = (s: string): XmlElement | undefined => {
  let i = 0
  const n = s.length
  if (s.charCodeAt(0) === 0xFEFF) i = 1
  // The declaration, if any, must come first (XML 1.0 §2.8).
  if (s.startsWith("<?xml", i)) {
    const end = s.indexOf("?>", i)
    if (end < 0 || !declaration.test(s.slice(i, end + 2))) return undefined
    i = end + 2
  }
  while (i < n && isBlank(s, i, i + 1)) i++
  if (s.charCodeAt(i) !== 60 /* < */) return undefined

  const element = (depth: number): XmlElement => {
    // at '<'
    const gt = s.indexOf(">", i)
    if (gt < 0 || depth > maxDepth) throw giveUp
    const selfClosing = s.charCodeAt(gt - 1) === 47 /* / */
    const nameEnd = selfClosing ? gt - 1 : gt
    if (!isPlainName(s, i + 1, nameEnd)) throw giveUp
    const name = s.slice(i + 1, nameEnd)
    i = gt + 1
    if (selfClosing) return { name, text: "", children: noChildren }
    let children: Array<XmlElement> | undefined
    for (;;) {
      const lt = s.indexOf("<", i)
      if (lt < 0) throw giveUp
      const next = s.charCodeAt(lt + 1)
      if (next === 47 /* / */) {
        const close = lt + 2 + name.length
        if (s.charCodeAt(close) !== 62 /* > */ || !s.startsWith(name, lt + 2)) throw giveUp
        let text = ""
        if (children === undefined) {
          const decoded = leafText(s.slice(i, lt))
          if (decoded === undefined) throw giveUp
          text = decoded
        } else if (!isBlank(s, i, lt)) {
          throw giveUp
        }
        i = close + 1
        return { name, text, children: children ?? noChildren }
      }
      // a child element; text before it must be blank (no mixed content), no comments, CDATA or instructions
      if (next === 33 /* ! */ || next === 63 /* ? */ || !isBlank(s, i, lt)) throw giveUp
      i = lt
      const child = element(depth + 1)
      if (children === undefined) children = [child]
      else children.push(child)
    }
  }

  try {
    const root = element(0)
    if (!isBlank(s, i, n)) return undefined
    return root
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
  const roots = fromOrdered(parser.parse(s) as ReadonlyArray<OrderedNode>)
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
