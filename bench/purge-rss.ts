// Peak memory of a purge does not grow with the number of keys: Deletion.purge of 100,000 and of 1,000,000 keys
// (0 ms latency), each in a fresh client process against the fake COS in its own process; the difference of the
// peak RSS must stay under 64 MB.
//
//   node --conditions=source --import tsx bench/purge-rss.ts [--sizes 100000,1000000] [--list-concurrency 4]
//     [--node-flags "--max-semi-space-size=16"]
//
// By default the client runs with the Node flags the CLI ships with (the `--max-*` flags of the root package.json's
// "cos-retention" script); `--node-flags ""` measures Node's defaults.
//
//   node --conditions=source --import tsx bench/purge-rss.ts --binary packages/daemon/dist/bin.js
//     [--binary-flags "--max-semi-space-size=16"]
//
// measures the built (`pnpm build`) or installed binary instead, as a user runs it: executed directly, so with the V8
// flags of its first line, or with `--binary-flags F` as `node F <binary>` (`--binary-flags ""`: `node <binary>`,
// Node's defaults). `cos-retention purge --prefix rss/ --yes --json` against the fake; peak RSS and CPU (user + sys,
// start-up included) of the whole process from GNU time. (An installed project comes from
// `node scripts/pack-smoke.mjs --install /tmp/cos-install`, its binary is /tmp/cos-install/alone/node_modules/.bin/cos-retention.)
import { spawn } from "node:child_process"
import {
  engineLayer,
  fakeCredentials,
  fakePurgeArgs,
  flag,
  rssSampler,
  runChild,
  shippedNodeFlags,
  startFake,
  table
} from "./purge-harness.js"

const role = flag("role", "main")
const sizes = flag("sizes", "100000,1000000").split(",").map(Number)
const listConcurrency = Number(flag("list-concurrency", "4"))
const concurrency = Number(flag("concurrency", "8"))
const prefix = "rss/"
const limitMb = 64
const nodeFlags = flag("node-flags", shippedNodeFlags.join(" ")).split(" ").filter((f) => f !== "")

interface Result {
  readonly keys: number
  readonly deleted: number
  readonly remaining: number
  readonly ms: number
  readonly baselineRssMb: number
  readonly peakRssMb: number
  readonly heapUsedMb: number
  /** user + sys seconds of the whole client process (binary mode only) */
  readonly cpuSeconds: number
}

const client = async (endpoint: string, keys: number): Promise<Result> => {
  const { CosClient, Deletion } = await import("../packages/core/src/index.js")
  const { Effect } = await import("effect")
  const layer = await engineLayer(endpoint)
  return Effect.runPromise(Effect.provide(
    Effect.gen(function*() {
      const c = yield* CosClient.CosClient
      yield* c.listObjects({ prefix: "warm-up/", maxKeys: 1 })
      const baselineRssMb = process.memoryUsage.rss() / 2 ** 20
      const sampler = rssSampler()
      let heapPeak = 0
      const t0 = performance.now()
      const s = yield* Deletion.purge({
        prefix,
        concurrency,
        listConcurrency,
        writeBudget: 10_000_000,
        onProgress: () => Effect.sync(() => (heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed))),
        progressInterval: "100 millis"
      })
      const ms = performance.now() - t0
      const peakRssMb = sampler.stop()
      const left = yield* c.listObjects({ prefix, maxKeys: 10 })
      const result: Result = {
        keys,
        deleted: s.deleted,
        remaining: left.contents.length,
        ms,
        baselineRssMb,
        peakRssMb,
        heapUsedMb: heapPeak / 2 ** 20,
        cpuSeconds: Number.NaN
      }
      return result
    }),
    layer
  ))
}

const binary = flag("binary", "")
const binaryFlags = process.argv.includes("--binary-flags") ?
  flag("binary-flags", "").split(" ").filter((f) => f !== "") :
  undefined
const binaryCommand = binaryFlags === undefined ? [binary] : [process.execPath, ...binaryFlags, binary]

/** `<binary> purge` of the prefix under GNU time: the summary (last stdout line) and the peak RSS. */
const binaryClient = (endpoint: string, keys: number) =>
  new Promise<Result>((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn("/usr/bin/time", [
      "-f",
      "maxrss-kb %M cpu %U %S",
      ...binaryCommand,
      ...fakePurgeArgs(endpoint),
      "--prefix",
      prefix,
      "--yes",
      "--json",
      "--concurrency",
      String(concurrency),
      "--list-concurrency",
      String(listConcurrency)
    ], {
      env: { ...process.env, COS_SECRET_ID: fakeCredentials.secretId, COS_SECRET_KEY: fakeCredentials.secretKey },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (err += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      const ms = performance.now() - t0
      const rss = /maxrss-kb (\d+) cpu ([\d.]+) ([\d.]+)/.exec(err)
      const lines = out.trim().split("\n")
      try {
        if (code !== 0 || rss === null) throw new Error(`exit ${code}`)
        const summary = JSON.parse(lines[lines.length - 1]!) as { deleted: number }
        resolve({
          keys,
          deleted: summary.deleted,
          remaining: keys - summary.deleted,
          ms,
          baselineRssMb: Number.NaN,
          peakRssMb: Number(rss[1]) / 1024,
          heapUsedMb: Number.NaN,
          cpuSeconds: Number(rss[2]) + Number(rss[3])
        })
      } catch (e) {
        reject(new Error(`${binary} purge failed (${String(e)}): ${out}\n${err}`))
      }
    })
  })

const main = async () => {
  const results: Array<Result> = []
  for (const keys of sizes) {
    const server = await startFake(["--seed", String(keys), "--seed-prefix", prefix])
    try {
      results.push(
        binary !== "" ? await binaryClient(server.url, keys) : await runChild<Result>(
          "bench/purge-rss.ts",
          [
            "--role",
            "client",
            "--endpoint",
            server.url,
            "--keys",
            String(keys),
            "--list-concurrency",
            String(listConcurrency),
            "--concurrency",
            String(concurrency)
          ],
          {},
          nodeFlags
        )
      )
    } finally {
      await server.stop()
    }
  }
  console.log(
    binary !== "" ?
      `\n### peak RSS of \`cos-retention purge\` (${binaryCommand.join(" ")}) by number of keys (0 ms latency)\n` :
      `\n### peak RSS of Deletion.purge by number of keys (0 ms latency, fresh process each` +
      (nodeFlags.length > 0 ? `, node ${nodeFlags.join(" ")}` : "") + ")\n"
  )
  console.log(table(
    [
      "keys",
      "deleted",
      "left",
      "seconds",
      "keys/s",
      "RSS before MB",
      "peak RSS MB",
      "peak heap used MB",
      "CPU s (user+sys)",
      "CPU µs/key"
    ],
    results.map((r) => [
      r.keys,
      r.deleted,
      r.remaining,
      (r.ms / 1000).toFixed(1),
      Math.round(r.keys / (r.ms / 1000)),
      r.baselineRssMb.toFixed(0),
      r.peakRssMb.toFixed(0),
      r.heapUsedMb.toFixed(0),
      r.cpuSeconds.toFixed(2),
      (r.cpuSeconds / r.keys * 1e6).toFixed(1)
    ])
  ))
  const first = results[0]!
  const last = results[results.length - 1]!
  const diff = last.peakRssMb - first.peakRssMb
  console.log(
    `\npeak RSS difference ${last.keys} vs ${first.keys} keys: ${diff.toFixed(1)} MB (limit ${limitMb} MB): ` +
      (diff < limitMb ? "OK" : "TOO MUCH")
  )
  if (results.some((r) => r.deleted !== r.keys || r.remaining !== 0)) {
    console.log("not every key was deleted")
    process.exitCode = 1
  }
  if (diff >= limitMb) process.exitCode = 1
}

if (role === "client") {
  console.log(JSON.stringify(await client(flag("endpoint", ""), Number(flag("keys", "0")))))
} else {
  await main()
}
