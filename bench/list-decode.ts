/**
 * CPU per key of decoding a 1000-key GET Bucket page: the client's fast reader (+ typed decoding) versus
 * fast-xml-parser. Run: node --conditions=source --import tsx bench/list-decode.ts
 */
import { createRequire } from "node:module"
import * as Responses from "../packages/core/src/internal/responses.js"
import * as Xml from "../packages/core/src/internal/xml.js"

const keys = 1000

const page = (() => {
  let body = `<?xml version='1.0' encoding='utf-8' ?>\n<ListBucketResult>\n  <Name>examplebucket-1250000000</Name>\n` +
    `  <EncodingType>url</EncodingType>\n  <Prefix>logs/2024/</Prefix>\n  <Marker/>\n  <MaxKeys>1000</MaxKeys>\n` +
    `  <IsTruncated>true</IsTruncated>\n  <NextMarker>logs/2024/app-00999.log.gz</NextMarker>\n`
  for (let i = 0; i < keys; i++) {
    const key = `logs/2024/${i % 7 === 0 ? "%E7%85%A7%E7%89%87%20" : ""}app-${String(i).padStart(5, "0")}.log.gz`
    body +=
      `  <Contents>\n    <Key>${key}</Key>\n    <LastModified>2024-03-0${1 + (i % 9)}T03:37:30.000Z</LastModified>\n` +
      `    <ETag>&quot;f173c1199e3d3b53dd91223cae16fb${String(i % 100).padStart(2, "0")}&quot;</ETag>\n` +
      `    <Size>${
        i * 37
      }</Size>\n    <Owner>\n      <ID>1250000000</ID>\n      <DisplayName>1250000000</DisplayName>\n` +
      `    </Owner>\n    <StorageClass>STANDARD</StorageClass>\n  </Contents>\n`
  }
  return body + "</ListBucketResult>\n"
})()

// fast-xml-parser is a dependency of packages/core, not of the root.
const { XMLParser } = createRequire(new URL("../packages/core/package.json", import.meta.url))("fast-xml-parser") as {
  XMLParser: new(options: Record<string, unknown>) => { parse: (s: string) => unknown }
}
const sdkLike = new XMLParser({ ignoreAttributes: true }) // roughly how cos-nodejs-sdk-v5 parses a page

const measure = (name: string, f: () => unknown) => {
  for (let i = 0; i < 50; i++) f() // warm-up
  const rounds = 200
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) f()
  const ns = Number(process.hrtime.bigint() - t0) / rounds
  console.log(`${name.padEnd(56)} ${(ns / 1e6).toFixed(3)} ms/page  ${(ns / 1e3 / keys).toFixed(2)} µs/key`)
}

console.log(`page: ${keys} keys, ${(page.length / 1024).toFixed(0)} KiB`)
const check = Responses.listObjectsPage(Xml.readSimple(page)!)
if (check.contents.length !== keys || check.contents[7]!.key !== "logs/2024/照片 app-00007.log.gz") {
  throw new Error("bench page decoded wrongly")
}
measure("fast reader (tree only)", () => Xml.readSimple(page))
measure("fast reader + typed decode (the client's path)", () => Responses.listObjectsPage(Xml.readSimple(page)!))
measure("fast-xml-parser, SDK-like options (tree only)", () => sdkLike.parse(page))
measure(
  "general path: validate + fast-xml-parser + typed decode",
  () => Responses.listObjectsPage((Xml.parseGeneral(page) as { root: Xml.XmlElement }).root)
)
