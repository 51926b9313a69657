// CPU per HEAD Object: what a reconcile pays per pending key (one HEAD each, 64 at once; a takeover waits for it).
// A fake COS in its own process answering in --latency ms, --keys HEADs of keys that are not there (the usual case
// after a kill: the dead run's batches went through), side by side in one process, rounds interleaved:
//   - raw: node:http on a keep-alive agent, no signing (the floor: Node's own HTTP work);
//   - client, spans: `CosClient.make` over `CosHttpClient.layer()` with Effect's default tracer;
//   - client, no spans: the same inside `Effect.withTracerEnabled(false)`, as the daemon's reconcile runs with
//     tracing off.
// CPU is this process's user + system time over the round (the fake's is apart), per HEAD.
//
//   node --conditions=source --import tsx bench/head-cost.ts [--keys 4000] [--latency 20] [--concurrency 64]
//     [--rounds 3]
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Http from "node:http"
import { cpuUsage } from "node:process"
import { CosClient, CosHttpClient, Credentials } from "../packages/core/src/index.js"
import { fakeBucket, fakeCredentials, fakeRegion, flag, startFake, table } from "./purge-harness.js"

const keys = Number(flag("keys", "4000"))
const latency = flag("latency", "20")
const concurrency = Number(flag("concurrency", "64"))
const rounds = Number(flag("rounds", "3"))

const fake = await startFake(["--latency-ms", latency])
const port = Number(fake.hostPort.split(":")[1])
const key = (i: number) => `missing/${String(i).padStart(8, "0")}`

const measure = async (run: () => Promise<void>) => {
  const c0 = cpuUsage()
  const t0 = performance.now()
  await run()
  const c = cpuUsage(c0)
  return { cpuUs: (c.user + c.system) / keys, wallMs: performance.now() - t0 }
}

const agent = new Http.Agent({ keepAlive: true, maxFreeSockets: 64 })
const rawHead = (i: number) =>
  new Promise<void>((resolve, reject) => {
    const request = Http.request({ host: "127.0.0.1", port, method: "HEAD", path: `/${key(i)}`, agent }, (res) => {
      res.resume()
      res.on("end", resolve)
    })
    request.on("error", reject)
    request.end()
  })
const raw = async () => {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < keys) await rawHead(next++)
  }))
}

const client = await Effect.runPromise(
  CosClient.make({
    region: fakeRegion,
    bucket: fakeBucket,
    endpoint: fake.url,
    credentials: Credentials.fromStatic({
      secretId: fakeCredentials.secretId,
      secretKey: Redacted.make(fakeCredentials.secretKey)
    })
  }).pipe(Effect.provide(CosHttpClient.layer()))
)
const heads = Effect.forEach(
  Array.from({ length: keys }, (_, i) => i),
  (i) => Effect.ignore(client.headObject({ key: key(i) })),
  { concurrency, discard: true }
)
const withSpans = () => Effect.runPromise(heads)
const noSpans = () => Effect.runPromise(Effect.withTracerEnabled(heads, false))

const sides = [["raw node:http", raw], ["client, spans", withSpans], ["client, no spans", noSpans]] as const
const results = new Map<string, Array<{ cpuUs: number; wallMs: number }>>(sides.map(([name]) => [name, []]))
// a warm-up round of each, not counted
for (const [, run] of sides) await run()
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of sides) results.get(name)!.push(await measure(run))
}
agent.destroy()
await fake.stop()

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const floor = median(results.get("raw node:http")!.map((m) => m.cpuUs))
console.log(
  `\n${keys} HEADs of missing keys, ${concurrency} at once, fake at ${latency} ms, ${rounds} rounds (median, range)\n`
)
console.log(table(
  ["side", "CPU µs per HEAD", "HEADs/s", "CPU ÷ raw"],
  [...results].map(([name, ms]) => {
    const cpu = ms.map((m) => m.cpuUs)
    const rate = ms.map((m) => keys / (m.wallMs / 1000))
    return [
      name,
      `${median(cpu).toFixed(0)} (${Math.min(...cpu).toFixed(0)}–${Math.max(...cpu).toFixed(0)})`,
      median(rate).toFixed(0),
      `${(median(cpu) / floor).toFixed(1)}×`
    ]
  })
))
