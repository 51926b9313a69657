// The batch-delete body reader against an XML 1.0 oracle (the generator) and against fast-xml-parser.
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { XMLParser, XMLValidator } from "fast-xml-parser"
import { MalformedXml, parseDelete } from "../src/internal/deleteXml.js"

const enc = new TextEncoder()
const read = (s: string) => parseDelete(enc.encode(s))
const rejects = (s: string) => {
  try {
    read(s)
    return false
  } catch (e) {
    if (e instanceof MalformedXml) return true
    throw e
  }
}

const fxp = new XMLParser({
  ignoreAttributes: true,
  trimValues: false,
  parseTagValue: false,
  processEntities: true,
  htmlEntities: true, // needed for numeric character references; the generator writes no HTML-only entity
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name) => name === "Object"
})

// A key's text as pieces, each written in one of the ways XML allows.
const keyChar = fc.oneof(
  fc.constantFrom(
    "a",
    "Z",
    "0",
    " ",
    "/",
    "&",
    "<",
    ">",
    "\"",
    "'",
    "]",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "é",
    "照",
    "\uFFFD",
    "\u{1F600}",
    "%",
    "+",
    "?",
    "#"
  ),
  fc.string({ minLength: 1, maxLength: 3 }).filter((s) => /^[\x20-\x7e]+$/.test(s))
)
type Piece = { readonly text: string; readonly how: "literal" | "dec" | "hex" | "cdata" }
const piece = fc.record({ text: keyChar, how: fc.constantFrom("literal", "dec", "hex", "cdata") }) as fc.Arbitrary<
  Piece
>

const write = (p: Piece): string => {
  switch (p.how) {
    case "literal":
      return p.text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(
        />/g,
        (m) => (Math.random() < 0.5 ? m : "&gt;")
      )
    case "dec":
      return [...p.text].map((c) => `&#${c.codePointAt(0)};`).join("")
    case "hex":
      return [...p.text].map((c) => `&#x${c.codePointAt(0)!.toString(16)};`).join("")
    case "cdata":
      return p.text.includes("]") ? write({ ...p, how: "literal" }) : `<![CDATA[${p.text}]]>`
  }
}
// What an XML 1.0 parser reports: line ends in the raw text normalised to LF (adjacent literal pieces form one run
// of raw text, so "\r" then "\n" is one line end), references kept as written.
const meaning = (pieces: ReadonlyArray<Piece>): string => {
  let out = ""
  let raw = ""
  const flush = () => {
    out += raw.replace(/\r\n?/g, "\n")
    raw = ""
  }
  for (const p of pieces) {
    // a CDATA piece holding "]" is written as literal text
    if (p.how === "literal" || (p.how === "cdata" && p.text.includes("]"))) raw += p.text
    else {
      flush()
      out += p.how === "cdata" ? p.text.replace(/\r\n?/g, "\n") : p.text
    }
  }
  flush()
  return out
}

const ws = fc.constantFrom("", " ", "\n", "\r\n", "\t", " <!-- c --> ", "<?pi x?>")
const doc = fc.record({
  decl: fc.constantFrom("", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "<?xml version='1.0'?>"),
  quiet: fc.constantFrom(undefined, "true", "false"),
  objects: fc.array(
    fc.record({
      key: fc.array(piece, { minLength: 1, maxLength: 6 }),
      version: fc.option(fc.constantFrom("null", "MTg0NDU"), { nil: undefined }),
      sp: ws
    }),
    { minLength: 1, maxLength: 8 }
  ),
  sp: ws,
  attrs: fc.constantFrom("", " xmlns=\"http://example.com/doc/2006-03-01/\"")
})

describe("batch-delete body reader", () => {
  it("reads what an XML 1.0 parser reads (random documents)", () => {
    fc.assert(
      fc.property(doc, (d) => {
        const xml = d.decl + `<Delete${d.attrs}>${d.sp}` +
          (d.quiet !== undefined ? `<Quiet>${d.quiet}</Quiet>${d.sp}` : "") +
          d.objects.map((o) =>
            `<Object>${o.sp}<Key>${o.key.map(write).join("")}</Key>${o.sp}` +
            (o.version !== undefined ? `<VersionId>${o.version}</VersionId>` : "") + `</Object>${o.sp}`
          ).join("") + "</Delete>\n"
        const r = read(xml)
        assert.strictEqual(r.quiet, d.quiet === "true")
        assert.deepStrictEqual(r.objects.map((o) => o.key), d.objects.map((o) => meaning(o.key)))
        assert.deepStrictEqual(r.objects.map((o) => o.versionId), d.objects.map((o) => o.version))
        // fast-xml-parser agrees wherever it implements XML 1.0 (it does not normalise CR, nor keep CDATA/comment
        // boundaries in the same way for every input): compare on documents without CR and comments.
        if (
          !xml.includes("\r") && !xml.includes("&#13;") && !xml.includes("&#xd;") && !xml.includes("<!--") &&
          !xml.includes("<?pi")
        ) {
          const parsed = fxp.parse(xml) as { Delete: { Object: Array<{ Key: string | number }> } }
          assert.deepStrictEqual(r.objects.map((o) => o.key), parsed.Delete.Object.map((o) => String(o.Key)))
        }
      }),
      { numRuns: 500 }
    )
  })

  it("rejects documents fast-xml-parser's validator rejects (random mutations)", () => {
    const base = "<?xml version=\"1.0\"?><Delete><Quiet>false</Quiet><Object><Key>a&amp;b</Key></Object>" +
      "<Object><Key>c d</Key><VersionId>v</VersionId></Object></Delete>"
    fc.assert(
      fc.property(
        fc.nat(base.length - 1),
        fc.constantFrom(
          "",
          "<",
          ">",
          "&",
          "/",
          "\"",
          "=",
          "<!--",
          "]]>",
          "<a>",
          "</Key>",
          "\u0001",
          "&#0;",
          "&foo;",
          "x"
        ),
        fc.nat(3),
        (at, insert, del) => {
          const xml = base.slice(0, at) + insert + base.slice(at + del)
          const fxpValid = XMLValidator.validate(xml) === true
          if (!fxpValid) assert.ok(rejects(xml), `accepted what fast-xml-parser rejects: ${JSON.stringify(xml)}`)
        }
      ),
      { numRuns: 2000 }
    )
  })

  it("refuses characters XML 1.0 does not allow, even as references, and other malformed input", () => {
    for (
      const bad of [
        "<Delete><Object><Key>a\u0001</Key></Object></Delete>",
        "<Delete><Object><Key>a&#1;</Key></Object></Delete>",
        "<Delete><Object><Key>a&#x1F;</Key></Object></Delete>",
        "<Delete><Object><Key>a&#0;</Key></Object></Delete>",
        "<Delete><Object><Key>a&#xFFFE;</Key></Object></Delete>",
        "<Delete><Object><Key>a\uFFFF</Key></Object></Delete>",
        "<Delete><Object><Key>a&nbsp;</Key></Object></Delete>",
        "<Delete><Object><Key>a</key></Object></Delete>",
        "<Delete><Object><Key>a]]>b</Key></Object></Delete>",
        "<Delete><Object><Key>a</Key></Object></Delete><Delete/>",
        "<!DOCTYPE d [<!ENTITY x \"y\">]><Delete><Object><Key>&x;</Key></Object></Delete>",
        "<Delete><Object><VersionId>v</VersionId></Object></Delete>",
        "<Delete></Delete>",
        "<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>",
        " <?xml version=\"1.0\"?><Delete><Object><Key>a</Key></Object></Delete>",
        "<Remove><Object><Key>a</Key></Object></Remove>"
      ]
    ) assert.ok(rejects(bad), bad)
    // invalid UTF-8
    assert.throws(() => parseDelete(new Uint8Array([0x3c, 0xff, 0x3e])), MalformedXml)
  })

  it("accepts tab, LF and CR references, astral characters, and 1000 objects but not 1001", () => {
    const r = read("<Delete><Object><Key>&#9;&#10;&#13;&#x1F600;\u{1F600}</Key></Object></Delete>")
    assert.strictEqual(r.objects[0]!.key, "\t\n\r\u{1F600}\u{1F600}")
    const many = (n: number) => "<Delete>" + "<Object><Key>k</Key></Object>".repeat(n) + "</Delete>"
    assert.strictEqual(read(many(1000)).objects.length, 1000)
    assert.throws(() => read(many(1001)), /greater than 1000/)
  })
})
