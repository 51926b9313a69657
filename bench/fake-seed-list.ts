// Benchmark of the fake itself: seeding, then listing every page through the handler (and optionally over HTTP).
//   node --conditions=source --import tsx bench/fake-seed-list.ts [--count 1000000] [--http]
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import * as Http from "node:http"
import { parseArgs } from "node:util"
import { Signer } from "../packages/core/src/index.js"
import { CosFake, CosFakeServer, Store } from "../packages/testkit/src/index.js"

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "1000000" },
    http: { type: "boolean", default: false },
    samples: { type: "string", default: "20" }
  }
})
const count = Number(values.count)
const samples = Number(values.samples)
const host = `${CosFake.testBucket}.cos.${CosFake.testRegion}.myqcloud.com`
const nextMarkerRe = /<NextMarker>([^<]*)<\/NextMarker>/

const authorization = (query: ReadonlyArray<readonly [string, string]>) => {
  const now = Math.floor(Date.now() / 1000)
  return Signer.authorization({
    method: "GET",
    path: "/",
    query,
    headers: { host },
    keyTime: { start: now - 1, end: now + 900 },
    secretId: CosFake.testCredentials.secretId,
    secretKey: CosFake.testCredentials.secretKey
  })
}
const pageUrl = (marker: string) => {
  const query: Array<readonly [string, string]> = [["max-keys", "1000"], ["marker", marker]]
  return { url: `/?max-keys=1000&marker=${Signer.encode(marker)}`, auth: authorization(query) }
}

const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`
const pct = (xs: Array<number>, p: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!

const program = Effect.gen(function*() {
  const store = Store.make({ buckets: [CosFake.testBucket] })
  const rss0 = process.memoryUsage().rss
  let t = performance.now()
  yield* Store.seed(store, { bucket: CosFake.testBucket, count, prefix: "data/2024/", ageMs: (i) => i, size: 1024 })
  const seedMs = performance.now() - t
  console.log(
    `seed ${count} objects: ${(seedMs / 1000).toFixed(2)} s (${Math.round(count / (seedMs / 1000))} keys/s), ` +
      `heap+store RSS +${mb(process.memoryUsage().rss - rss0)}`
  )

  const fake = yield* CosFake.make({ store })
  const listPage = (marker: string) =>
    Effect.gen(function*() {
      const { auth, url } = pageUrl(marker)
      const r = yield* fake.handle({
        method: "GET",
        url,
        headers: { host, authorization: auth },
        body: new Uint8Array(0)
      })
      if (r._tag !== "Response" || r.status !== 200) throw new Error("list failed")
      return typeof r.body === "string" ? r.body : ""
    })

  // Full marker chain through the in-process handler.
  const pageMs: Array<number> = []
  let marker = ""
  let keys = 0
  const cpuList0 = process.cpuUsage()
  t = performance.now()
  for (;;) {
    const p0 = performance.now()
    const body = yield* listPage(marker)
    pageMs.push(performance.now() - p0)
    keys += (body.match(/<Key>/g) ?? []).length
    const m = nextMarkerRe.exec(body)
    if (m === null) break
    marker = m[1]!
  }
  const listMs = performance.now() - t
  const cpuList = process.cpuUsage(cpuList0)
  console.log(
    `list all ${keys} keys in ${pageMs.length} pages (handler, XML built): ${(listMs / 1000).toFixed(2)} s, ` +
      `${Math.round(keys / (listMs / 1000))} keys/s, CPU ${
        ((cpuList.user + cpuList.system) / keys).toFixed(2)
      } µs/key; page p50 ${pct(pageMs, 0.5).toFixed(2)} ms, p99 ${pct(pageMs, 0.99).toFixed(2)} ms`
  )
  const early = pageMs.slice(1, 1 + samples)
  const late = pageMs.slice(-samples - 1, -1)
  console.log(
    `  first ${samples} pages: median ${pct(early, 0.5).toFixed(2)} ms; last ${samples}: median ${
      pct(late, 0.5).toFixed(2)
    } ms`
  )

  // Page cost by position: a page starting at 10%, 50%, 99.9% of the keyspace.
  const width = String(count - 1).length
  for (const frac of [0, 0.1, 0.5, 0.999]) {
    const at = `data/2024/${String(Math.floor(count * frac)).padStart(width, "0")}`
    const runs: Array<number> = []
    for (let i = 0; i < samples; i++) {
      const p0 = performance.now()
      yield* listPage(at)
      runs.push(performance.now() - p0)
    }
    console.log(`  page at ${(frac * 100).toFixed(1)}% (marker ${at}): median ${pct(runs, 0.5).toFixed(2)} ms`)
  }

  if (values.http) {
    const server = yield* CosFakeServer.serve(fake)
    const agent = new Http.Agent({ keepAlive: true, maxSockets: 1 })
    const get = (marker: string) =>
      new Promise<string>((resolve, reject) => {
        const { auth, url } = pageUrl(marker)
        Http.get(
          { host: "127.0.0.1", port: server.port, path: url, headers: { host, authorization: auth }, agent },
          (res) => {
            const chunks: Array<Buffer> = []
            res.on("data", (c: Buffer) => chunks.push(c))
            res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
          }
        ).on("error", reject)
      })
    marker = ""
    keys = 0
    let pages = 0
    t = performance.now()
    for (;;) {
      const body = yield* Effect.promise(() => get(marker))
      pages++
      keys += (body.match(/<Key>/g) ?? []).length
      const m = nextMarkerRe.exec(body)
      if (m === null) break
      marker = m[1]!
    }
    const httpMs = performance.now() - t
    console.log(
      `list all ${keys} keys over HTTP (one connection, client only reads NextMarker): ` +
        `${(httpMs / 1000).toFixed(2)} s, ${Math.round(keys / (httpMs / 1000))} keys/s, ${
          (httpMs / pages).toFixed(2)
        } ms/page`
    )
    agent.destroy()
  }
  // Batch-delete every key through the handler: the server's CPU per deleted key (parse, delete, reply).
  // Requests are built first, so the measured CPU is the handler's alone.
  {
    const all = yield* Store.keys(store, CosFake.testBucket)
    const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("base64")
    const requests: Array<CosFake.FakeRequest> = []
    const now = Math.floor(Date.now() / 1000)
    for (let i = 0; i < all.length; i += 1000) {
      let xml = "<Delete><Quiet>false</Quiet>"
      for (const k of all.slice(i, i + 1000)) xml += `<Object><Key>${k}</Key></Object>`
      const body = new TextEncoder().encode(xml + "</Delete>")
      const headers = { host, "content-md5": md5(body), "content-length": String(body.length) }
      const authorization = Signer.authorization({
        method: "POST",
        path: "/",
        query: [["delete", ""]],
        headers,
        keyTime: { start: now - 1, end: now + 3600 },
        secretId: CosFake.testCredentials.secretId,
        secretKey: CosFake.testCredentials.secretKey
      })
      requests.push({ method: "POST", url: "/?delete", headers: { ...headers, authorization }, body })
    }
    const c0 = process.cpuUsage()
    const t0 = performance.now()
    for (const req of requests) {
      const r = yield* fake.handle(req)
      if (r._tag !== "Response" || r.status !== 200) throw new Error("batch delete failed")
    }
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(c0)
    console.log(
      `batch-delete ${all.length} keys through the handler: ${(ms / 1000).toFixed(2)} s, ` +
        `${Math.round(all.length / (ms / 1000))} keys/s, CPU ${
          ((cpu.user + cpu.system) / all.length).toFixed(2)
        } µs/key; ` +
        `left ${yield* Store.size(store, CosFake.testBucket)}`
    )
  }
  console.log(`peak RSS ${mb(process.resourceUsage().maxRSS * 1024)}`)
})

Effect.runPromise(Effect.scoped(program)).catch((e) => {
  console.error(e)
  process.exit(1)
})
