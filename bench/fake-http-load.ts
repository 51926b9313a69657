// The cos-fake command under a list + batch-delete load from a separate process: how much CPU the server spends
// per deleted key (what it takes away from a client on the same 2-core machine).
//   node --conditions=source --import tsx bench/fake-http-load.ts [--count 300000] [--concurrency 4] [--latency-ms 0]
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import * as Http from "node:http"
import { parseArgs } from "node:util"
import { Signer } from "../packages/core/src/index.js"
import { CosFake } from "../packages/testkit/src/index.js"

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "300000" },
    concurrency: { type: "string", default: "4" },
    "latency-ms": { type: "string", default: "0" }
  }
})
const count = Number(values.count)
const concurrency = Number(values.concurrency)
const host = `${CosFake.testBucket}.cos.${CosFake.testRegion}.myqcloud.com`

const cpuSeconds = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(f[11]) + Number(f[12])) / 100 // utime + stime, in clock ticks of 10 ms
}

const child = spawn(
  process.execPath,
  [
    "--conditions=source",
    "--import",
    "tsx",
    "packages/testkit/src/bin.ts",
    "--port",
    "0",
    "--seed",
    String(count),
    "--seed-prefix",
    "load/",
    "--latency-ms",
    values["latency-ms"]!
  ],
  { stdio: ["ignore", "pipe", "inherit"] }
)
const port = await new Promise<number>((resolve) => {
  let out = ""
  child.stdout!.on("data", (c: Buffer) => {
    out += c.toString()
    const m = /127\.0\.0\.1:(\d+)/.exec(out)
    if (m) resolve(Number(m[1]))
  })
})
const agent = new Http.Agent({ keepAlive: true, maxSockets: concurrency + 1 })

const request = (method: string, url: string, query: Array<readonly [string, string]>, body?: Uint8Array) =>
  new Promise<string>((resolve, reject) => {
    const headers: Record<string, string> = { host }
    if (body) {
      headers["content-length"] = String(body.length)
      headers["content-md5"] = createHash("md5").update(body).digest("base64")
    }
    const now = Math.floor(Date.now() / 1000)
    headers["authorization"] = Signer.authorization({
      method,
      path: "/",
      query,
      headers,
      keyTime: { start: now - 1, end: now + 900 },
      secretId: CosFake.testCredentials.secretId,
      secretKey: CosFake.testCredentials.secretKey
    })
    const req = Http.request({ host: "127.0.0.1", port, method, path: url, headers, agent }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        if (res.statusCode !== 200) reject(new Error(`${res.statusCode} ${text}`))
        else resolve(text)
      })
    })
    req.on("error", reject)
    req.end(body)
  })

const cpu0 = cpuSeconds(child.pid!)
const t0 = performance.now()
let deleted = 0
let marker = ""
const inFlight = new Set<Promise<void>>()
for (;;) {
  const page = await request("GET", `/?prefix=load%2F&marker=${Signer.encode(marker)}`, [["prefix", "load/"], [
    "marker",
    marker
  ]])
  const keys = [...page.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!)
  if (keys.length > 0) {
    const body = new TextEncoder().encode(
      "<Delete><Quiet>true</Quiet>" + keys.map((k) => `<Object><Key>${k}</Key></Object>`).join("") + "</Delete>"
    )
    const p: Promise<void> = request("POST", "/?delete", [["delete", ""]], body).then(() => {
      deleted += keys.length
      inFlight.delete(p)
    })
    inFlight.add(p)
    if (inFlight.size >= concurrency) await Promise.race(inFlight)
  }
  const next = /<NextMarker>([^<]*)<\/NextMarker>/.exec(page)
  if (next === null) break
  marker = next[1]!
}
await Promise.all(inFlight)
const seconds = (performance.now() - t0) / 1000
const serverCpu = cpuSeconds(child.pid!) - cpu0
console.log(
  `list + batch-delete ${deleted} keys over HTTP (cos-fake in its own process, ${concurrency} deletes in flight, ` +
    `latency ${values["latency-ms"]} ms): ${seconds.toFixed(2)} s, ${Math.round(deleted / seconds)} keys/s; ` +
    `server CPU ${serverCpu.toFixed(2)} s = ${((serverCpu * 1e6) / deleted).toFixed(2)} µs/key`
)
agent.destroy()
child.kill("SIGINT")
