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

/** Parts of a GET Bucket page: fields repeated, reordered, empty, containers where text belongs, bad values. */
const oddListPart = fc.constantFrom(
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
const oddListPage = fc.array(oddListPart, { maxLength: 8 }).map((parts) =>
  `<ListBucketResult>${parts.join("\n")}</ListBucketResult>`
)

/** Parts of a batch-delete reply, the same way. */
const oddDeletePart = fc.constantFrom(
  "<Deleted><Key>a</Key></Deleted>",
  "<Deleted><Key>a&amp;b</Key><VersionId>v1</VersionId><VersionId>v2</VersionId></Deleted>",
  "<Deleted><Key>k</Key><Key>second</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>m</DeleteMarkerVersionId>" +
    "</Deleted>",
  "<Deleted><Key>k</Key><DeleteMarker>TRUE</DeleteMarker><DeleteMarker/></Deleted>",
  "<Deleted><VersionId>v</VersionId></Deleted>",
  "<Deleted><Key/></Deleted>",
  "<Deleted><Key><x>y</x></Key></Deleted>",
  "<Deleted/>",
  "<Deleted>text</Deleted>",
  "<Error><Key>e</Key><Code>InternalError</Code><Message>m &lt;b&gt;</Message></Error>",
  "<Error><Key>e</Key><Key>f</Key><VersionId>1</VersionId><VersionId>2</VersionId><Code>A</Code><Code>B</Code></Error>",
  "<Error><Code>AccessDenied</Code></Error>",
  "<Error><Key>e</Key></Error>",
  "<Error/>",
  "<Unknown><Key>u</Key></Unknown>",
  "<Unknown>t</Unknown>"
)
const oddDeletePage = fc.array(oddDeletePart, { maxLength: 8 }).map((parts) =>
  `<DeleteResult>${parts.join("\n")}</DeleteResult>`
)

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
    const page = oddListPage
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
    // the validator passes it, fast-xml-parser then throws: an answer, not an exception
    assert.deepStrictEqual(Xml.parse("<?xml versi1.0' encoding='utf-8' ?>\n<R><K>a</K></R>"), {
      _tag: "Invalid",
      detail: "not well-formed XML (Pi Tag is not closed.)"
    })
  })
})

/**
 * What the tree path (`Xml.parse`, then the typed decoder) makes of a document: its value, "error" (the decoder
 * finds it malformed, or it is not XML, or has another root), and whether the fast tree reader took it itself.
 */
const treePath = <A>(s: string, root: string, decode: (e: Xml.XmlElement) => A) => {
  const simple = Xml.readSimple(s) !== undefined
  const parsed = Xml.parse(s)
  if (parsed._tag === "Invalid" || parsed.root.name !== root) return { value: "error" as const, simple }
  try {
    return { value: decode(parsed.root), simple }
  } catch (e) {
    if (e instanceof Responses.Malformed) return { value: "error" as const, simple }
    throw e
  }
}

/**
 * A shape reader answers with the tree path's value or not at all; and it answers whenever the fast tree reader
 * took the document and the decoder found it well-formed (so the shape reader does not fall back needlessly).
 */
const shapeAgrees = <A>(
  s: string,
  root: string,
  decode: (e: Xml.XmlElement) => A,
  shape: (s: string) => A | undefined
): boolean => {
  const tree = treePath(s, root, decode)
  const fast = shape(s)
  if (fast !== undefined) {
    assert.notStrictEqual(
      tree.value,
      "error",
      `the shape reader accepted what the tree path rejects: ${JSON.stringify(s)}`
    )
    assert.deepStrictEqual(fast, tree.value, JSON.stringify(s))
  } else if (tree.simple && tree.value !== "error") {
    assert.fail(`the shape reader gave up on a document the fast tree reader took: ${JSON.stringify(s)}`)
  }
  return true
}

const listAgrees = (s: string) =>
  shapeAgrees(s, "ListBucketResult", Responses.listObjectsPage, Responses.listObjectsPageShape)
const deleteAgrees = (s: string) => shapeAgrees(s, "DeleteResult", Responses.deleteResult, Responses.deleteResultShape)

const hostileText = fc.array(
  fc.oneof(
    fc.constantFrom(...hostileTokens, "<A>", "</A>", "<Key>", "</Key>", "<Deleted>", "</Deleted>", " ", "\n", "&lt;"),
    fc.string({ maxLength: 2 })
  ),
  { maxLength: 25 }
).map((a) => a.join(""))

describe("shape readers (GET Bucket, batch delete) vs the tree path", () => {
  it("decode every generated list page straight from the text, as the tree path does", () => {
    fc.assert(
      fc.property(listDoc, (doc) => {
        const page = Responses.listObjectsPageShape(doc.xml)
        assert.isDefined(page, JSON.stringify(doc.xml))
        listAgrees(doc.xml)
        assert.deepStrictEqual(page!.contents.map((c) => c.key), doc.keys)
        assert.deepStrictEqual(page!.commonPrefixes, doc.prefixes)
      }),
      { numRuns: 500 }
    )
  })

  it("decode every generated batch-delete reply straight from the text, as the tree path does", () => {
    const deletes = otherDoc.filter((d) => d.xml.startsWith("<DeleteResult>"))
    fc.assert(
      fc.property(deletes, (doc) => {
        const reply = Responses.deleteResultShape(doc.xml)
        assert.isDefined(reply, JSON.stringify(doc.xml))
        deleteAgrees(doc.xml)
        assert.sameMembers([...reply!.deleted, ...reply!.errors].map((x) => x.key), [...doc.keys])
      }),
      { numRuns: 400 }
    )
  })

  it("agree with the tree path on pages with fields repeated, reordered or malformed", () => {
    fc.assert(fc.property(oddListPage, listAgrees), { numRuns: 1500 })
    fc.assert(fc.property(oddDeletePage, deleteAgrees), { numRuns: 1000 })
  })

  it("agree with the tree path on mutated, truncated and token-soup documents", () => {
    fc.assert(fc.property(mutated, (s) => listAgrees(s) && deleteAgrees(s)), { numRuns: 1500 })
    const wrapped = fc.tuple(fc.constantFrom("ListBucketResult", "DeleteResult", "Contents"), hostileText)
      .map(([root, inner]) => `<${root}>${inner}</${root}>`)
    fc.assert(fc.property(fc.oneof(hostileText, wrapped), (s) => listAgrees(s) && deleteAgrees(s)), { numRuns: 1500 })
  })

  it("leave CDATA, comments, CR, unknown entities and attributes to the general parser", () => {
    const page = (inner: string) =>
      `<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated><Contents>${inner}` +
      "<LastModified>2020-12-10T03:37:30.000Z</LastModified><Size>1</Size></Contents></ListBucketResult>"
    for (
      const [inner, key] of [
        ["<Key><![CDATA[a<b]]></Key>", "a<b"],
        ["<Key>a<!-- c -->b</Key>", "ab"],
        ["<Key>a\r\nb</Key>", "a\nb"],
        ["<Key a=\"1\">k</Key>", "k"]
      ] as const
    ) {
      assert.isUndefined(Responses.listObjectsPageShape(page(inner)), inner)
      listAgrees(page(inner))
      const tree = treePath(page(inner), "ListBucketResult", Responses.listObjectsPage)
      assert.deepStrictEqual((tree.value as { contents: ReadonlyArray<{ key: string }> }).contents[0]!.key, key)
    }
    assert.isUndefined(Responses.deleteResultShape("<DeleteResult><Deleted><Key>&nbsp;</Key></Deleted></DeleteResult>"))
    assert.isUndefined(Responses.deleteResultShape("<Error><Code>SlowDown</Code></Error>"))
    assert.isUndefined(Responses.listObjectsPageShape("<ListBucketResult><Name>b</Name>"))
  })

  it("decode url-encoded keys with astral characters, combining marks and XML specials exactly", () => {
    const keys = ["a b/😀", "e\u0301/é", "<&>\"'", " lead and trail ", "line\nbreak", "100%/+~"]
    const body = "<?xml version='1.0' encoding='utf-8' ?>\n<ListBucketResult><Name>b</Name>" +
      "<EncodingType>url</EncodingType><Prefix></Prefix><Marker></Marker><MaxKeys>1000</MaxKeys>" +
      "<IsTruncated>false</IsTruncated>" +
      keys.map((k) =>
        `<Contents><Key>${encodeURIComponent(k)}</Key><LastModified>2026-01-31T08:00:00.000Z</LastModified>` +
        "<ETag>&quot;e&quot;</ETag><Size>7</Size><Owner><ID>1</ID><DisplayName>1</DisplayName></Owner>" +
        "<StorageClass>STANDARD_IA</StorageClass></Contents>"
      ).join("") + "</ListBucketResult>"
    const page = Responses.listObjectsPageShape(body)!
    assert.deepStrictEqual(page.contents.map((c) => c.key), keys)
    assert.deepStrictEqual(page.contents[0], {
      key: keys[0]!,
      lastModified: new Date("2026-01-31T08:00:00.000Z"),
      etag: "\"e\"",
      size: 7,
      storageClass: "STANDARD_IA"
    })
    listAgrees(body)
  })
})
