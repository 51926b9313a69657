// Deleting every key under a prefix: Tencent's cos-nodejs-sdk-v5 the way its docs do it (getBucket a page of 1000,
// deleteMultipleObject it, up to 5 batch deletes in flight) against our engine (Deletion.purge), each side on a
// freshly seeded fake COS in its own process (20 ms per request by default), each client in its own process.
//
//   node --conditions=source --import tsx bench/purge-vs-sdk.ts [--keys 200000] [--latency 20]
//     [--concurrency 8] [--list-concurrency 8] [--runs 1] [--quiet] [--node-flags "--max-semi-space-size=32"]
//
// Both client processes get the same Node flags (`--node-flags`, none by default). The engine's requests go through
// `CosHttpClient.layer()`, the HTTP client the `cos-retention` binary uses.
import { createRequire } from "node:module"
import {
  type ClientResult,
  engineLayer,
  fakeBucket,
  fakeCredentials,
  fakeRegion,
  flag,
  rssSampler,
  runChild,
  startFake,
  table
} from "./purge-harness.js"

const role = flag("role", "main")
const keys = Number(flag("keys", "200000"))
const latency = Number(flag("latency", "20"))
const concurrency = Number(flag("concurrency", "8"))
const listConcurrency = Number(flag("list-concurrency", "8"))
const runs = Number(flag("runs", "1"))
const quiet = process.argv.includes("--quiet")
const nodeFlags = flag("node-flags", "").split(" ").filter((f) => f !== "")
const prefix = "bench/"

// ---------------------------------------------------------------------------------------------------------------
// the SDK side
// ---------------------------------------------------------------------------------------------------------------

const sdkSide = async (endpoint: string): Promise<ClientResult> => {
  const require = createRequire(import.meta.url)
  const COS = require("cos-nodejs-sdk-v5")
  const cos = new COS({
    SecretId: fakeCredentials.secretId,
    SecretKey: fakeCredentials.secretKey,
    Domain: endpoint.slice("http://".length),
    Protocol: "http:"
  })
  const call = (method: string, params: Record<string, unknown>) =>
    new Promise<any>((resolve, reject) =>
      cos[method](
        { Bucket: fakeBucket, Region: fakeRegion, ...params },
        (err: unknown, data: unknown) => err ? reject(err) : resolve(data)
      )
    )
  const rss0 = process.memoryUsage.rss()
  const sampler = rssSampler()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let deleted = 0
  const inFlight = new Set<Promise<void>>()
  let marker = ""
  for (;;) {
    const page = await call("getBucket", { Prefix: prefix, Marker: marker, MaxKeys: 1000 })
    const objects = (page.Contents as Array<{ Key: string }>).map((c) => ({ Key: c.Key }))
    if (objects.length > 0) {
      while (inFlight.size >= 5) await Promise.race(inFlight)
      const p: Promise<void> = call("deleteMultipleObject", { Objects: objects, Quiet: false }).then((r) => {
        deleted += (r.Deleted ?? []).length
        inFlight.delete(p)
      })
      inFlight.add(p)
    }
    if (page.IsTruncated !== "true") break
    marker = page.NextMarker
  }
  await Promise.all(inFlight)
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const maxRssMb = sampler.stop()
  const left = await call("getBucket", { Prefix: prefix, MaxKeys: 1000 })
  return {
    side: "cos-nodejs-sdk-v5 (page → batch, 5 in flight)",
    keys,
    deleted,
    remaining: left.Contents.length,
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    maxRssMb,
    rssGrowthMb: maxRssMb - rss0 / 2 ** 20
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the engine side
// ---------------------------------------------------------------------------------------------------------------

const engineSide = async (endpoint: string): Promise<ClientResult> => {
  const { CosClient, Deletion } = await import("../packages/core/src/index.js")
  const { Effect } = await import("effect")
  const layer = await engineLayer(endpoint)
  const program = Effect.gen(function*() {
    const client = yield* CosClient.CosClient
    // Warm the connection pool and the JIT a little, outside the measurement (one list request).
    yield* client.listObjects({ prefix: "nothing-here/", maxKeys: 1 })
    const rss0 = process.memoryUsage.rss()
    const sampler = rssSampler()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const s = yield* Deletion.purge({
      prefix,
      concurrency,
      listConcurrency,
      quiet,
      // The fake has no write quota; COS's default budget (30,000 keys/s here) would cap the run, not the engine.
      writeBudget: 10_000_000
    })
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const maxRssMb = sampler.stop()
    const left = yield* client.listObjects({ prefix, maxKeys: 1000 })
    const result: ClientResult = {
      side: `effect-cos Deletion.purge (concurrency ${concurrency}, list concurrency ${listConcurrency}${
        quiet ? ", quiet" : ""
      })`,
      keys,
      deleted: s.deleted,
      remaining: left.contents.length,
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      maxRssMb,
      rssGrowthMb: maxRssMb - rss0 / 2 ** 20
    }
    return result
  })
  return Effect.runPromise(Effect.provide(program, layer))
}

// ---------------------------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------------------------

const side = async (which: "sdk" | "engine"): Promise<ClientResult & { readonly serverCpuMs: number }> => {
  const server = await startFake([
    "--seed",
    String(keys),
    "--seed-prefix",
    prefix,
    "--latency-ms",
    String(latency)
  ])
  try {
    const cpu0 = server.cpuMs()
    const result = await runChild<ClientResult>(
      "bench/purge-vs-sdk.ts",
      [
        "--role",
        which,
        "--endpoint",
        server.url,
        "--keys",
        String(keys),
        "--concurrency",
        String(concurrency),
        "--list-concurrency",
        String(listConcurrency),
        ...(quiet ? ["--quiet"] : [])
      ],
      {},
      nodeFlags
    )
    return { ...result, serverCpuMs: server.cpuMs() - cpu0 }
  } finally {
    await server.stop()
  }
}

const main = async () => {
  const rows: Array<Array<string | number>> = []
  const rates: Array<{ sdk: number; engine: number }> = []
  for (let r = 0; r < runs; r++) {
    const sdk = await side("sdk")
    const engine = await side("engine")
    for (const x of [sdk, engine]) {
      if (x.deleted !== keys || x.remaining !== 0) {
        throw new Error(`${x.side}: deleted ${x.deleted} of ${keys}, ${x.remaining} left`)
      }
      rows.push([
        x.side,
        x.keys,
        (x.ms / 1000).toFixed(2),
        Math.round(x.keys / (x.ms / 1000)),
        (x.cpuMs / 1000).toFixed(2),
        (x.cpuMs * 1000 / x.keys).toFixed(1),
        (x.serverCpuMs / 1000).toFixed(2),
        x.maxRssMb.toFixed(0),
        x.rssGrowthMb.toFixed(0)
      ])
    }
    rates.push({ sdk: keys / sdk.ms, engine: keys / engine.ms })
  }
  console.log(
    `\n### purge vs cos-nodejs-sdk-v5: ${keys} keys, ${latency} ms per request (fake COS in its own process)` +
      (nodeFlags.length > 0 ? `, both clients run with ${nodeFlags.join(" ")}` : "") + "\n"
  )
  console.log(table(
    [
      "client",
      "keys",
      "seconds",
      "keys/s",
      "client CPU s",
      "client CPU µs/key",
      "server CPU s",
      "client peak RSS MB",
      "client RSS growth MB"
    ],
    rows
  ))
  const ratios = rates.map((r) => r.engine / r.sdk)
  console.log(`\nratio (engine keys/s ÷ SDK keys/s): ${ratios.map((x) => x.toFixed(2)).join(", ")}`)
}

if (role === "sdk" || role === "engine") {
  const endpoint = flag("endpoint", "")
  const result = await (role === "sdk" ? sdkSide(endpoint) : engineSide(endpoint))
  console.log(JSON.stringify(result))
} else {
  await main()
}
