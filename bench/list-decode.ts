/**
 * CPU per key of decoding a 1000-key GET Bucket page: the client's fast reader (+ typed decoding) versus
 * fast-xml-parser; then the whole client path (build, sign, send to an in-process HttpClient, read, decode) for a list
 * page and a 1000-key batch delete. Figures are process CPU time per key.
 * Run: node --conditions=source --import tsx bench/list-decode.ts
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createRequire } from "node:module"
import { pathToFileURL } from "node:url"
import * as CosClient from "../packages/core/src/CosClient.js"
import * as Credentials from "../packages/core/src/Credentials.js"
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

// fast-xml-parser and @effect/platform are dependencies of packages/core, not of the root: load them from there
// (platform's ESM build, so that it shares the root's `effect`).
const coreRequire = createRequire(new URL("../packages/core/package.json", import.meta.url))
const { XMLParser } = coreRequire("fast-xml-parser") as {
  XMLParser: new(options: Record<string, unknown>) => { parse: (s: string) => unknown }
}
const platform = async <A>(module: string): Promise<A> =>
  import(pathToFileURL(coreRequire.resolve(`@effect/platform/${module}`).replace("/dist/cjs/", "/dist/esm/")).href)
const HttpClient = await platform<{
  HttpClient: Context.Tag<unknown, unknown>
  make: (f: (request: { method: string; url: string }) => Effect.Effect<unknown>) => unknown
}>("HttpClient")
const HttpClientResponse = await platform<{ fromWeb: (request: unknown, response: Response) => unknown }>(
  "HttpClientResponse"
)
const sdkLike = new XMLParser({ ignoreAttributes: true }) // roughly how cos-nodejs-sdk-v5 parses a page

/** CPU time of this process (user + system), in ns: less disturbed by other processes than wall time. */
const cpuNs = () => {
  const { system, user } = process.cpuUsage()
  return (user + system) * 1000
}

const measure = (name: string, f: () => unknown) => {
  for (let i = 0; i < 50; i++) f() // warm-up
  const rounds = 200
  const t0 = cpuNs()
  for (let i = 0; i < rounds; i++) f()
  const ns = (cpuNs() - t0) / rounds
  console.log(`${name.padEnd(56)} ${(ns / 1e6).toFixed(3)} ms/page  ${(ns / 1e3 / keys).toFixed(2)} µs/key`)
}

console.log(`page: ${keys} keys, ${(page.length / 1024).toFixed(0)} KiB`)
const check = Responses.listObjectsPage(Xml.readSimple(page)!)
if (check.contents.length !== keys || check.contents[7]!.key !== "logs/2024/照片 app-00007.log.gz") {
  throw new Error("bench page decoded wrongly")
}
measure("fast reader (tree only)", () => Xml.readSimple(page))
measure("fast reader + typed decode (the tree path)", () => Responses.listObjectsPage(Xml.readSimple(page)!))
if (JSON.stringify(Responses.listObjectsPageShape(page)) !== JSON.stringify(check)) {
  throw new Error("shape reader differs")
}
measure("shape reader (the client's path)", () => Responses.listObjectsPageShape(page))
measure("fast-xml-parser, SDK-like options (tree only)", () => sdkLike.parse(page))
measure(
  "fallback: validate + fast-xml-parser + typed decode",
  () => Responses.listObjectsPage((Xml.parseGeneral(page) as { root: Xml.XmlElement }).root)
)

// ---------------------------------------------------------------------------------------------------------------
// The whole client path over an in-process HttpClient (no network): request building, signing, reading the body,
// decoding; and a 1000-key batch delete (XML body, MD5, reply decoding, per-key outcome).
// ---------------------------------------------------------------------------------------------------------------

const deletedReply = (() => {
  let body = "<?xml version='1.0' encoding='utf-8' ?>\n<DeleteResult>"
  for (let i = 0; i < keys; i++) {
    body += `<Deleted><Key>logs/2024/app-${String(i).padStart(5, "0")}.log.gz</Key></Deleted>`
  }
  return body + "</DeleteResult>"
})()

measure("batch-delete reply: fast reader + typed decode", () => Responses.deleteResult(Xml.readSimple(deletedReply)!))
measure("batch-delete reply: shape reader (the client's path)", () => Responses.deleteResultShape(deletedReply))

// Bodies as bytes, as they come off the network; reading them (UTF-8 decoding) is part of the client's cost.
let quietReply = false
const pageBytes = new TextEncoder().encode(page)
const deletedBytes = new TextEncoder().encode(deletedReply)
const quietBytes = new TextEncoder().encode("<DeleteResult/>")
const http = HttpClient.make((request) =>
  Effect.succeed(HttpClientResponse.fromWeb(
    request,
    new Response(
      request.method === "HEAD" ? null : request.method === "GET" ? pageBytes : quietReply ? quietBytes : deletedBytes,
      {
        status: 200,
        headers: { "content-type": "application/xml" }
      }
    )
  ))
)

const program = Effect.gen(function*() {
  const client = yield* CosClient.make({
    region: "ap-guangzhou",
    bucket: "examplebucket-1250000000",
    credentials: Credentials.fromStatic({ secretId: "AKIDexample", secretKey: Redacted.make("secret") })
  })
  const objects = Array.from(
    { length: keys },
    (_, i) => ({ key: `logs/2024/app-${String(i).padStart(5, "0")}.log.gz` })
  )
  const rounds = 200
  const run = (name: string, effect: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function*() {
      for (let i = 0; i < 30; i++) yield* effect
      const t0 = cpuNs()
      for (let i = 0; i < rounds; i++) yield* effect
      const ns = (cpuNs() - t0) / rounds
      console.log(`${name.padEnd(56)} ${(ns / 1e6).toFixed(3)} ms/page  ${(ns / 1e3 / keys).toFixed(2)} µs/key`)
    })
  yield* run("client.listObjects (sign, send, read, decode)", client.listObjects({ prefix: "logs/2024/" }))
  yield* run("client.deleteObjects, 1000 keys, non-quiet reply", client.deleteObjects({ objects }))
  quietReply = true
  yield* run("client.deleteObjects, 1000 keys, quiet", client.deleteObjects({ objects, quiet: true }))
  yield* run("client.headBucket (fixed cost of one request, /1000)", client.headBucket())
})

await Effect.runPromise(
  program.pipe(Effect.provideService(HttpClient.HttpClient, http)) as unknown as Effect.Effect<void>
)
