import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Responses from "../src/internal/responses.js"
import * as Xml from "../src/internal/xml.js"

// Characters a key may hold, XML specials and unicode included (XML 1.0 Chars only: others cannot be in a document).
const keyChar = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("a", "Z", "0", "-", "_", ".", "/", " ", "%", "+", "~", "*", "(", ")") },
  { weight: 4, arbitrary: fc.constantFrom("&", "<", ">", "\"", "'", "]", "]]>", "&amp;", ";", "#", "=") },
  { weight: 2, arbitrary: fc.constantFrom("\t", "\n", "\u0085", "\u00A0", "\u2028", "\uFFFD", "\uE000") },
  { weight: 3, arbitrary: fc.constantFrom("é", "照", "片", "年", "😀", "𝄞", "Ω", "ß") },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 2 }) }
)
const keyText = fc.array(keyChar, { minLength: 1, maxLength: 10 }).map((a) => a.join(""))

/** One way of writing a character in element content; every one of them reads back as the character. */
const writeChar = (c: string, choice: number): string => {
  const cp = c.codePointAt(0)!
  const numeric = [`&#${cp};`, `&#x${cp.toString(16)};`, `&#X${cp.toString(16).toUpperCase()};`.replace("&#X", "&#x")]
  switch (c) {
    case "&":
      return ["&amp;", ...numeric][choice % 4]!
    case "<":
      return ["&lt;", ...numeric][choice % 4]!
    case ">":
      return [">", "&gt;", ...numeric][choice % 5]!
    case "\"":
      return ["\"", "&quot;", ...numeric][choice % 5]!
    case "'":
      return ["'", "&apos;", ...numeric][choice % 5]!
    default:
      return choice % 5 === 0 ? numeric[choice % 2]! : c
  }
}

const writeText = (text: string, choices: ReadonlyArray<number>): string => {
  let out = ""
  let i = 0
  for (const c of text) out += writeChar(c, choices[i++ % choices.length] ?? 0)
  return out.replace(/]]>/g, "]]&gt;")
}

const ws = fc.constantFrom("", "", " ", "\n", "\n  ", "\t", "\n    \n")

const element = (name: string, text: string, choices: ReadonlyArray<number>, selfClose: boolean) =>
  text === "" && selfClose ? `<${name}/>` : `<${name}>${writeText(text, choices)}</${name}>`

const contents = fc.record({
  key: keyText,
  encoded: fc.boolean(),
  size: fc.nat(),
  ms: fc.integer({ min: 0, max: 4102444800000 }),
  owner: fc.boolean(),
  extra: fc.boolean(),
  sep: ws,
  choices: fc.array(fc.nat(20), { minLength: 1, maxLength: 8 })
})

interface Doc {
  readonly xml: string
  readonly keys: ReadonlyArray<string>
  readonly prefixes: ReadonlyArray<string>
}

const listDoc: fc.Arbitrary<Doc> = fc.record({
  declaration: fc.constantFrom("", "<?xml version='1.0' encoding='utf-8' ?>\n", "<?xml version=\"1.0\"?>"),
  url: fc.boolean(),
  prefix: fc.oneof(fc.constant(""), keyText),
  truncated: fc.boolean(),
  entries: fc.array(contents, { maxLength: 6 }),
  prefixes: fc.array(keyText, { maxLength: 3 }),
  sep: ws,
  selfClose: fc.boolean(),
  choices: fc.array(fc.nat(20), { minLength: 1, maxLength: 8 })
}).map((d) => {
  const enc = (s: string) => (d.url ? encodeURIComponent(s).replace(/%2F/g, "/") : s)
  const e = (name: string, text: string) => d.sep + element(name, text, d.choices, d.selfClose)
  let xml = d.declaration + "<ListBucketResult>" + e("Name", "examplebucket-1250000000")
  if (d.url) xml += e("EncodingType", "url")
  xml += e("Prefix", enc(d.prefix)) + e("Marker", "") + e("MaxKeys", "1000")
  xml += e("IsTruncated", String(d.truncated))
  if (d.truncated) xml += e("NextMarker", enc(d.entries[d.entries.length - 1]?.key ?? "x"))
  for (const p of d.prefixes) xml += d.sep + "<CommonPrefixes>" + e("Prefix", enc(p)) + d.sep + "</CommonPrefixes>"
  for (const c of d.entries) {
    const f = (name: string, text: string) => c.sep + element(name, text, c.choices, d.selfClose)
    xml += d.sep + "<Contents>" + f("Key", enc(c.key)) + f("LastModified", new Date(c.ms).toISOString())
    xml += f("ETag", "\"f173c1199e3d3b53dd91223cae16fb42\"") + f("Size", String(c.size))
    if (c.owner) xml += c.sep + "<Owner>" + f("ID", "1250000000") + f("DisplayName", "1250000000") + "</Owner>"
    xml += f("StorageClass", "STANDARD")
    if (c.extra) xml += c.sep + "<RestoreStatus><Tier>x</Tier><Deep><A/></Deep></RestoreStatus>"
    xml += c.sep + "</Contents>"
  }
  xml += d.sep + "</ListBucketResult>" + d.sep
  return { xml, keys: d.entries.map((c) => c.key), prefixes: d.prefixes }
})

/** DeleteResult and ListVersionsResult pages (docs/protocol.md §3, §4) with keys written in every legal way. */
const otherDoc: fc.Arbitrary<Doc> = fc.record({
  kind: fc.constantFrom("delete", "versions"),
  entries: fc.array(
    fc.record({
      key: keyText,
      versionId: fc.option(fc.constantFrom("", "null", "MTg0NDU"), { nil: undefined }),
      tag: fc.nat(2)
    }),
    { maxLength: 6 }
  ),
  sep: ws,
  choices: fc.array(fc.nat(20), { minLength: 1, maxLength: 8 })
}).map((d) => {
  const e = (name: string, text: string) => d.sep + element(name, text, d.choices, true)
  let xml = d.kind === "delete" ? "<DeleteResult>" : "<ListVersionsResult>" + e("Name", "b") + e("IsTruncated", "false")
  for (const entry of d.entries) {
    const vid = entry.versionId === undefined ? "" : e("VersionId", entry.versionId)
    if (d.kind === "delete") {
      xml += entry.tag === 0
        ? d.sep + "<Error>" + e("Key", entry.key) + vid + e("Code", "PathConflict") + e("Message", "a <b>") + "</Error>"
        : d.sep + "<Deleted>" + e("Key", entry.key) + vid + (entry.tag === 2 ? e("DeleteMarker", "true") : "") +
          "</Deleted>"
    } else {
      const fields = e("Key", entry.key) + e("VersionId", entry.versionId ?? "") + e("IsLatest", "true") +
        e("LastModified", "2020-12-10T03:37:30.000Z")
      xml += entry.tag === 0
        ? d.sep + "<DeleteMarker>" + fields + "</DeleteMarker>"
        : d.sep + "<Version>" + fields + e("ETag", "\"x\"") + e("Size", "3") + "</Version>"
    }
  }
  xml += d.sep + (d.kind === "delete" ? "</DeleteResult>" : "</ListVersionsResult>")
  return { xml, keys: d.entries.map((x) => x.key), prefixes: [] }
})

const hostileTokens = [
  "<",
  ">",
  "&",
  "&amp",
  "&foo;",
  "&nbsp;",
  "&#0;",
  "&#xD800;",
  "&#x110000;",
  "&#1;",
  "&#38;lt;",
  "<!-- c -->",
  "<![CDATA[a<b&amp;]]>",
  "]]>",
  "</Key>",
  "<Key>",
  "<Key/>",
  "</Contents>",
  "\r",
  "\r\n",
  "\u0000",
  "\u0001",
  "<?pi x?>",
  " a=\"1\"",
  "<!DOCTYPE x>",
  "<Key a='1'>",
  "x",
  "<x:y>",
  "</x:y>",
  "<>",
  "</>",
  "<ListBucketResult>",
  "\uFEFF"
]

/** A generated document cut, spliced and stuffed with hostile tokens. */
const mutated = fc.tuple(
  fc.oneof(listDoc, otherDoc),
  fc.array(
    fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...hostileTokens), fc.string({ maxLength: 3 })), fc.nat(4)),
    { minLength: 1, maxLength: 4 }
  ),
  fc.option(fc.nat())
).map(([doc, edits, cut]) => {
  let s = doc.xml
  for (const [at, token, drop] of edits) {
    const i = at % (s.length + 1)
    s = s.slice(0, i) + token + s.slice(i + drop)
  }
  return cut === null ? s : s.slice(0, cut % (s.length + 1))
})

/** If the fast reader answers, the general parser (fast-xml-parser) must give the same tree. */
const agree = (s: string): boolean => {
  const fast = Xml.readSimple(s)
  if (fast === undefined) return true
  const general = Xml.parseGeneral(s)
  assert.strictEqual(general._tag, "Ok", `fast reader accepted what fast-xml-parser rejects: ${JSON.stringify(s)}`)
  assert.deepStrictEqual(fast, (general as { root: Xml.XmlElement }).root, JSON.stringify(s))
  return true
}

/** The typed page decoded from either tree is the same (or the same error). */
const decodesAlike = (s: string): boolean => {
  const fast = Xml.readSimple(s)
  const general = Xml.parseGeneral(s)
  if (fast === undefined || general._tag !== "Ok") return true
  const decode = (root: Xml.XmlElement) => {
    try {
      return Responses.listObjectsPage(root)
    } catch (e) {
      return e
    }
  }
  assert.deepStrictEqual(decode(fast), decode(general.root))
  return true
}

describe("fast XML reader vs fast-xml-parser", () => {
  it("reads every generated list page itself, exactly as fast-xml-parser does, keys intact", () => {
    fc.assert(
      fc.property(listDoc, (doc) => {
        const fast = Xml.readSimple(doc.xml)
        assert.isDefined(fast, `fast reader gave up on a simple document: ${JSON.stringify(doc.xml)}`)
        agree(doc.xml)
        const page = Responses.listObjectsPage(fast!)
        assert.deepStrictEqual(page.contents.map((c) => c.key), doc.keys)
        assert.deepStrictEqual(page.commonPrefixes, doc.prefixes)
      }),
      { numRuns: 500 }
    )
  })

  it("reads batch-delete and versions pages itself, keys intact", () => {
    fc.assert(
      fc.property(otherDoc, (doc) => {
        const fast = Xml.readSimple(doc.xml)
        assert.isDefined(fast, `fast reader gave up on a simple document: ${JSON.stringify(doc.xml)}`)
        agree(doc.xml)
        const keys = fast!.name === "DeleteResult"
          ? (() => {
            const r = Responses.deleteResult(fast!)
            return [...r.deleted, ...r.errors].map((x) => x.key)
          })()
          : Responses.listVersionsPage(fast!).versions.map((v) => v.key)
        assert.sameMembers(keys, [...doc.keys])
      }),
      { numRuns: 400 }
    )
  })

  it("agrees with fast-xml-parser on mutated and truncated documents", () => {
    fc.assert(fc.property(mutated, agree), { numRuns: 1500 })
  })

  it("agrees with fast-xml-parser on arbitrary strings of XML-ish tokens", () => {
    const tokens = fc.array(
      fc.oneof(
        fc.constantFrom(...hostileTokens, "<A>", "</A>", "<B>", "</B>", "<A/>", " ", "\n", "t", "&lt;", "&#x41;"),
        fc.string({ maxLength: 2 })
      ),
      { maxLength: 25 }
    ).map((a) => a.join(""))
    fc.assert(fc.property(tokens, agree), { numRuns: 1500 })
  })

  it("reads pages with fields repeated, reordered or malformed", () => {
    const part = fc.constantFrom(
      "<Name>b</Name>",
      "<Name/>",
      "<EncodingType>url</EncodingType>",
      "<EncodingType>none</EncodingType>",
      "<EncodingType><x/></EncodingType>",
      "<Prefix>a%20b</Prefix>",
      "<Prefix>%ZZ</Prefix>",
      "<Prefix/>",
      "<Marker>m%2B</Marker>",
      "<Marker><x/></Marker>",
      "<NextMarker>n%20</NextMarker>",
      "<NextMarker>%</NextMarker>",
      "<MaxKeys>1000</MaxKeys>",
      "<MaxKeys>lots</MaxKeys>",
      "<IsTruncated>true</IsTruncated>",
      "<IsTruncated>false</IsTruncated>",
      "<IsTruncated>yes</IsTruncated>",
      "<Delimiter>/</Delimiter>",
      "<CommonPrefixes><Prefix>p%20/</Prefix></CommonPrefixes>",
      "<CommonPrefixes><Prefix>%E7</Prefix></CommonPrefixes>",
      "<CommonPrefixes/>",
      "<CommonPrefixes><Prefix><y/></Prefix></CommonPrefixes>",
      "<Contents><Key>k%20</Key><LastModified>2020-12-10T03:37:30.000Z</LastModified><Size>1</Size></Contents>",
      "<Contents><Key>k</Key><Key>%ZZ</Key><LastModified>2020-12-31T23:59:59.999Z</LastModified><Size>2</Size>" +
        "<Size>x</Size><ETag>a</ETag><ETag>b</ETag><StorageClass>A</StorageClass><StorageClass/></Contents>",
      "<Contents><Key>%E7</Key><LastModified>2020-12-10T03:37:30.000Z</LastModified><Size>1</Size></Contents>",
      "<Contents><Key>k</Key><LastModified>2020-02-30T03:37:30.000Z</LastModified><Size>1</Size></Contents>",
      "<Contents><Key>k</Key><LastModified>2020-12-10T03:37:30Z</LastModified><Size>-1</Size></Contents>",
      "<Contents><LastModified>2020-12-10T03:37:30.000Z</LastModified><Size>1</Size></Contents>",
      "<Contents><Key/><LastModified>2020-12-10T03:37:30.000Z</LastModified><Size>1</Size><Owner><ID>1</ID></Owner></Contents>",
      "<Contents><Key><b/></Key><LastModified>2020-12-10T03:37:30.000Z</LastModified><Size>1</Size></Contents>",
      "<Contents/>",
      "<Contents>x</Contents>",
      "<Unknown><a><b/></a></Unknown>",
      "<Unknown>t</Unknown>"
    )
    const page = fc.array(part, { maxLength: 8 }).map((parts) =>
      `<ListBucketResult>${parts.join("\n")}</ListBucketResult>`
    )
    fc.assert(fc.property(page, (s) => agree(s) && decodesAlike(s)), { numRuns: 1500 })
  })

  it("gives up on what it does not handle, so the general parser decides", () => {
    for (
      const s of [
        "<R><K><![CDATA[a<b]]></K></R>",
        "<R><K>a<!-- c -->b</K></R>",
        "<R a=\"1\"><K>x</K></R>",
        "<R><K>a\r\nb</K></R>",
        "<R><K>&nbsp;</K></R>",
        "<R><K>x</K>junk</R>",
        "<R><K>x</K></R><R/>",
        "<R><K>x</K>",
        "<?xml version='1.0'?><!DOCTYPE R><R/>",
        "<R><K>&#0;</K></R>"
      ]
    ) {
      assert.isUndefined(Xml.readSimple(s), s)
    }
    const cdata = Xml.parse("<R><K><![CDATA[a<b]]></K><L>a\r\nb</L></R>")
    assert.deepStrictEqual(cdata, {
      _tag: "Ok",
      root: {
        name: "R",
        text: "",
        children: [{ name: "K", text: "a<b", children: [] }, { name: "L", text: "a\nb", children: [] }]
      }
    })
  })

  it("reports truncated and non-XML documents as invalid", () => {
    const truncated = Xml.parse("<ListBucketResult><Name>b</Name><Contents><Key>a</Key>")
    assert.strictEqual(truncated._tag, "Invalid")
    assert.strictEqual(Xml.parse("{\"not\":\"xml\"}")._tag, "Invalid")
    assert.strictEqual(Xml.parse("")._tag, "Invalid")
    assert.strictEqual(Xml.parse("<!DOCTYPE r [<!ENTITY a \"b\">]><r>&a;</r>")._tag, "Invalid")
  })
})
