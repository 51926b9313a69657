/**
 * Reader for POST `?delete` bodies (docs/protocol.md §4 "DELETE Multiple Objects"). A small XML 1.0 parser rather than
 * a general one, to keep the server's CPU per key tiny, but it reads documents as an XML 1.0 parser does:
 * - CRLF and lone CR become LF in text (XML 1.0 §2.11); `&#13;` still yields a CR;
 * - character references and the five predefined entities are decoded; any other entity is an error (no DTD);
 * - characters outside XML 1.0's `Char` (C0 controls except tab/LF/CR, U+FFFE/U+FFFF), even as references, are
 *   errors, as is any malformed structure. A DOCTYPE is refused.
 * Every error is reported as COS's 400 `MalformedXML`.
 */

export interface DeleteObjectEntry {
  readonly key: string
  readonly versionId: string | undefined
}

export interface DeleteRequest {
  readonly quiet: boolean
  readonly objects: ReadonlyArray<DeleteObjectEntry>
}

export class MalformedXml extends Error {}

interface Element {
  readonly name: string
  readonly children: Array<Element>
  text: string
}

const decoder = new TextDecoder("utf-8", { fatal: true })

// XML 1.0 (fifth edition) Char, NameStartChar and NameChar.
const invalidChar = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u
const nameStart =
  ":A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F" +
  "\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}"
const nameRe = new RegExp(`[${nameStart}][${nameStart}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*`, "uy")
const isCharCode = (c: number) =>
  c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
  (c >= 0x10000 && c <= 0x10ffff)

const fail = (message: string): never => {
  throw new MalformedXml(message)
}

class Parser {
  pos = 0
  constructor(readonly s: string) {}

  isSpace(c: number) {
    return c === 0x20 || c === 0x9 || c === 0xa || c === 0xd
  }
  skipSpace(): boolean {
    const start = this.pos
    while (this.pos < this.s.length && this.isSpace(this.s.charCodeAt(this.pos))) this.pos++
    return this.pos > start
  }
  name(): string {
    // Fast path: an ASCII name ended by an ASCII character (the usual case).
    const s = this.s
    let i = this.pos
    const c0 = s.charCodeAt(i)
    if ((c0 >= 0x61 && c0 <= 0x7a) || (c0 >= 0x41 && c0 <= 0x5a) || c0 === 0x5f || c0 === 0x3a) {
      i++
      for (;;) {
        const c = s.charCodeAt(i)
        if (
          (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f ||
          c === 0x3a ||
          c === 0x2d || c === 0x2e
        ) i++
        else break
      }
      const next = s.charCodeAt(i)
      if (!(next >= 0x80) && !(next === 0xb7)) {
        const n = s.slice(this.pos, i)
        this.pos = i
        return n
      }
    }
    nameRe.lastIndex = this.pos
    const m = nameRe.exec(this.s)
    if (m === null) return fail("name expected")
    this.pos += m[0].length
    return m[0]
  }
  expect(lit: string) {
    if (!this.s.startsWith(lit, this.pos)) fail(`${lit} expected`)
    this.pos += lit.length
  }
  comment() {
    // at "<!--"
    const end = this.s.indexOf("--", this.pos + 4)
    if (end < 0 || this.s.charCodeAt(end + 2) !== 0x3e) fail("bad comment")
    this.pos = end + 3
  }
  pi() {
    // at "<?"
    this.pos += 2
    const target = this.name()
    if (target.toLowerCase() === "xml") fail("misplaced XML declaration")
    const end = this.s.indexOf("?>", this.pos)
    if (end < 0) fail("unterminated processing instruction")
    if (end > this.pos && !this.isSpace(this.s.charCodeAt(this.pos))) fail("bad processing instruction")
    this.pos = end + 2
  }
  xmlDecl() {
    // at "<?xml" + space; VersionInfo EncodingDecl? SDDecl? S? '?>'
    this.pos += 5
    const attrs = new Map<string, string>()
    for (;;) {
      const sp = this.skipSpace()
      if (this.s.startsWith("?>", this.pos)) break
      if (!sp) fail("bad XML declaration")
      const n = this.name()
      this.skipSpace()
      this.expect("=")
      this.skipSpace()
      const q = this.s[this.pos]
      if (q !== "\"" && q !== "'") return fail("bad XML declaration")
      const end = this.s.indexOf(q, this.pos + 1)
      if (end < 0) fail("bad XML declaration")
      attrs.set(n, this.s.slice(this.pos + 1, end))
      this.pos = end + 1
    }
    this.pos += 2
    const keys = [...attrs.keys()]
    const order = ["version", "encoding", "standalone"]
    if (keys[0] !== "version" || !/^1\.[0-9]+$/.test(attrs.get("version")!)) fail("bad XML version")
    let last = -1
    for (const k of keys) {
      const i = order.indexOf(k)
      if (i <= last) fail("bad XML declaration")
      last = i
    }
    const enc = attrs.get("encoding")
    if (enc !== undefined && !/^utf-?8$/i.test(enc)) fail("unsupported encoding")
    const sd = attrs.get("standalone")
    if (sd !== undefined && sd !== "yes" && sd !== "no") fail("bad standalone")
  }
  misc(): boolean {
    this.skipSpace()
    if (this.s.startsWith("<!--", this.pos)) {
      this.comment()
      return true
    }
    if (this.s.startsWith("<?", this.pos)) {
      this.pi()
      return true
    }
    return false
  }
  /** Decodes the references in a run of character data. */
  references(text: string): string {
    let out = ""
    let from = 0
    for (let amp = text.indexOf("&"); amp >= 0; amp = text.indexOf("&", from)) {
      out += text.slice(from, amp)
      const end = text.indexOf(";", amp)
      if (end < 0) fail("bad reference")
      out += this.decodeReference(text.slice(amp + 1, end))
      from = end + 1
    }
    return out + text.slice(from)
  }
  reference(): string {
    // at "&"
    const end = this.s.indexOf(";", this.pos)
    if (end < 0) return fail("bad reference")
    const body = this.s.slice(this.pos + 1, end)
    this.pos = end + 1
    return this.decodeReference(body)
  }
  decodeReference(body: string): string {
    switch (body) {
      case "lt":
        return "<"
      case "gt":
        return ">"
      case "amp":
        return "&"
      case "apos":
        return "'"
      case "quot":
        return "\""
    }
    let code: number
    if (/^#[0-9]+$/.test(body)) code = parseInt(body.slice(1), 10)
    else if (/^#x[0-9a-fA-F]+$/.test(body)) code = parseInt(body.slice(2), 16)
    else return fail("undeclared entity")
    if (!isCharCode(code)) fail("reference to a character not allowed in XML")
    return String.fromCodePoint(code)
  }
  attributes(): void {
    const seen = new Set<string>()
    for (;;) {
      const sp = this.skipSpace()
      const c = this.s.charCodeAt(this.pos)
      if (c === 0x3e || c === 0x2f) return // > or /
      if (!sp) fail("space expected between attributes")
      const n = this.name()
      if (seen.has(n)) fail("duplicate attribute")
      seen.add(n)
      this.skipSpace()
      this.expect("=")
      this.skipSpace()
      const q = this.s[this.pos]
      if (q !== "\"" && q !== "'") fail("attribute value expected")
      this.pos++
      for (;;) {
        if (this.pos >= this.s.length) fail("unterminated attribute value")
        const ch = this.s[this.pos]
        if (ch === q) break
        if (ch === "<") fail("< in attribute value")
        if (ch === "&") this.reference()
        else this.pos++
      }
      this.pos++
    }
  }
  /** At "<" of a start tag. Iterative, so deep nesting cannot overflow the stack. */
  element(): Element {
    const stack: Array<Element> = []
    let root: Element | undefined
    const open = () => {
      this.pos++
      const name = this.name()
      this.attributes()
      const el: Element = { name, children: [], text: "" }
      const parent = stack[stack.length - 1]
      if (parent !== undefined) parent.children.push(el)
      else root = el
      if (this.s.startsWith("/>", this.pos)) {
        this.pos += 2
        return
      }
      this.expect(">")
      stack.push(el)
    }
    open()
    while (stack.length > 0) {
      const el = stack[stack.length - 1]!
      // character data up to the next markup (references are looked for only inside it: no rescans)
      const s = this.s
      const lt = s.indexOf("<", this.pos)
      if (lt < 0) fail("unterminated element")
      let text = s.slice(this.pos, lt)
      if (text.length > 0) {
        if (text.includes("]]>")) fail("]]> in character data")
        if (text.includes("&")) text = this.references(text)
      }
      const i = lt
      this.pos = i
      el.text += text
      if (s.startsWith("</", i)) {
        this.pos += 2
        const name = this.name()
        if (name !== el.name) fail("mismatched end tag")
        this.skipSpace()
        this.expect(">")
        stack.pop()
      } else if (s.startsWith("<!--", i)) {
        this.comment()
      } else if (s.startsWith("<![CDATA[", i)) {
        const end = s.indexOf("]]>", i + 9)
        if (end < 0) fail("unterminated CDATA")
        el.text += s.slice(i + 9, end)
        this.pos = end + 3
      } else if (s.startsWith("<?", i)) {
        this.pi()
      } else if (s.startsWith("<!", i)) {
        fail("markup declaration in content")
      } else {
        open()
      }
    }
    return root!
  }

  document(): Element {
    if (this.s.startsWith("<?xml", 0) && this.isSpace(this.s.charCodeAt(5))) this.xmlDecl()
    while (this.misc()) { /* prolog */ }
    if (this.s.startsWith("<!DOCTYPE", this.pos)) fail("DOCTYPE not allowed")
    if (this.s.charCodeAt(this.pos) !== 0x3c) fail("root element expected")
    const root = this.element()
    while (this.misc()) { /* trailing misc */ }
    if (this.pos !== this.s.length) fail("content after the root element")
    return root
  }
}

/** Parses an XML document into a small element tree (text = concatenated character data of the element). */
export const parseXml = (body: Uint8Array): Element => {
  let s: string
  try {
    s = decoder.decode(body)
  } catch {
    return fail("not UTF-8")
  }
  if (invalidChar.test(s)) fail("character not allowed in XML")
  if (s.includes("\r")) s = s.replace(/\r\n?/g, "\n")
  return new Parser(s).document()
}

const onlyChild = (el: Element, name: string): Element | undefined => {
  let found: Element | undefined
  for (const c of el.children) {
    if (c.name === name) {
      if (found !== undefined) fail(`more than one ${name}`)
      found = c
    }
  }
  return found
}

const textOf = (el: Element): string => {
  if (el.children.length > 0) fail(`${el.name} must hold text only`)
  return el.text
}

/**
 * Reads a `<Delete>` body. Throws {@link MalformedXml} for anything COS answers with 400 MalformedXML, including
 * more than `maxObjects` objects.
 */
export const parseDelete = (body: Uint8Array, maxObjects = 1000): DeleteRequest => {
  const root = parseXml(body)
  if (root.name !== "Delete") fail("root element must be Delete")
  const quietEl = onlyChild(root, "Quiet")
  const quietText = quietEl === undefined ? "false" : textOf(quietEl).trim().toLowerCase()
  if (quietText !== "true" && quietText !== "false") fail("Quiet must be true or false")
  const objects: Array<DeleteObjectEntry> = []
  for (const c of root.children) {
    if (c.name !== "Object") continue
    const keyEl = onlyChild(c, "Key")
    if (keyEl === undefined) fail("Object without Key")
    const vEl = onlyChild(c, "VersionId")
    objects.push({ key: textOf(keyEl!), versionId: vEl === undefined ? undefined : textOf(vEl) })
  }
  if (objects.length > maxObjects) throw new MalformedXml("delete key size is greater than 1000")
  if (objects.length === 0) fail("no Object to delete")
  return { quiet: quietText === "true", objects }
}
