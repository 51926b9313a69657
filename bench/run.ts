// The benchmark report, end to end with one command: writes bench/results/latest.md (markdown tables),
// bench/results/latest.png (a chart) and bench/results/latest.json (the raw figures) of
//   - purge throughput against the cos-nodejs-sdk-v5 baseline at 0, 20 and 100 ms per request (same run, ratio),
//   - throughput with list concurrency 1, 4 and 16,
//   - peak RSS of a purge of 100k and 1M keys,
//   - behaviour under a COS-like write quota (achieved keys/s as a share of the budget, SlowDown replies),
//   - the daemon soak (RSS and open descriptors over time).
//
//   pnpm bench                 # the full report (about 8 minutes on 2 cores)
//   pnpm bench --quick         # small counts, under 2 minutes; writes bench/results/quick.{md,png}
//   pnpm bench --no-soak       # skip the soak
//   pnpm bench --runs N        # repetitions of each throughput measurement (default 3, 1 with --quick)
//   pnpm bench --out DIR       # write DIR/latest.{md,png,json} (or DIR/quick.*) instead
//
// Every measurement runs the fake COS (`cos-fake`) in its own process and each client in its own process, through the
// client roles of bench/purge-vs-sdk.ts and bench/purge-rss.ts (their last stdout line is JSON), bench/soak.ts --json,
// and this file's own `--role quota-client`.
// The engine's side is the library (Deletion.purge) over `CosHttpClient.layer()`, the HTTP client the `cos-retention`
// binary sends through (bench/purge-harness.ts `engineLayer`); bench/cpu-vs-sdk.ts measures the built binary itself.
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { colors, type Panel, png } from "./chart.js"
import {
  type ClientResult,
  engineLayer,
  flag,
  root,
  runChild,
  shippedNodeFlags,
  startFake,
  table
} from "./purge-harness.js"
import type { SoakResult } from "./soak.js"

const role = flag("role", "main")
const quick = process.argv.includes("--quick")
const withSoak = !process.argv.includes("--no-soak")
const outDir = Path.resolve(root, flag("out", "bench/results"))
const name = quick ? "quick" : "latest"
/** Repetitions of each throughput measurement (the median is reported, with the range). */
const runs = Number(flag("runs", quick ? "1" : "3"))

/** Key counts: each measurement takes roughly 5-30 s in the full report (a few seconds with --quick). */
const plan = quick ?
  {
    vsSdk: [{ latency: 0, keys: 20_000 }, { latency: 20, keys: 20_000 }, { latency: 100, keys: 10_000 }],
    listConcurrency: { latency: 20, keys: 20_000, levels: [1, 4, 16] },
    rss: [10_000, 100_000],
    quota: { cos: 30_000, explicit: 10_000, explicitQps: 2_000 },
    soakSeconds: 20
  } :
  {
    vsSdk: [{ latency: 0, keys: 500_000 }, { latency: 20, keys: 400_000 }, { latency: 100, keys: 150_000 }],
    listConcurrency: { latency: 20, keys: 300_000, levels: [1, 4, 16] },
    rss: [100_000, 1_000_000],
    quota: { cos: 300_000, explicit: 100_000, explicitQps: 10_000 },
    soakSeconds: 120
  }
/** The engine's settings for the throughput runs (those of bench/purge-vs-sdk.ts). */
const engineConcurrency = 8
const engineListConcurrency = 8

const log = (s: string) => process.stderr.write(`[bench] ${s}\n`)

// ---------------------------------------------------------------------------------------------------------------
// the quota client: Deletion.purge with the given (or the region's default) write budget, reporting its summary
// ---------------------------------------------------------------------------------------------------------------

interface QuotaResult {
  readonly keys: number
  readonly deleted: number
  readonly remaining: number
  readonly ms: number
  readonly requests: number
  readonly retries: number
  readonly throttled: number
  readonly failed: number
}

const quotaClient = async (endpoint: string, keys: number, writeBudget: number | undefined): Promise<QuotaResult> => {
  const { CosClient, Deletion } = await import("../packages/core/src/index.js")
  const { Effect } = await import("effect")
  const layer = await engineLayer(endpoint)
  return Effect.runPromise(Effect.provide(
    Effect.gen(function*() {
      const c = yield* CosClient.CosClient
      const t0 = performance.now()
      const s = yield* Deletion.purge({
        prefix: "quota/",
        concurrency: engineConcurrency,
        listConcurrency: 4,
        ...(writeBudget !== undefined ? { writeBudget } : {})
      })
      const ms = performance.now() - t0
      const left = yield* c.listObjects({ prefix: "quota/", maxKeys: 10 })
      const result: QuotaResult = {
        keys,
        deleted: s.deleted,
        remaining: left.contents.length,
        ms,
        requests: s.requests,
        retries: s.retries,
        throttled: s.throttled,
        failed: s.failed
      }
      return result
    }),
    layer
  ))
}

// ---------------------------------------------------------------------------------------------------------------
// measurements
// ---------------------------------------------------------------------------------------------------------------

type Side = ClientResult & { readonly serverCpuMs: number }

const purgeSide = async (which: "sdk" | "engine", keys: number, latency: number, listConcurrency: number) => {
  const server = await startFake(["--seed", String(keys), "--seed-prefix", "bench/", "--latency-ms", String(latency)])
  try {
    const cpu0 = server.cpuMs()
    const result = await runChild<ClientResult>("bench/purge-vs-sdk.ts", [
      "--role",
      which,
      "--endpoint",
      server.url,
      "--keys",
      String(keys),
      "--concurrency",
      String(engineConcurrency),
      "--list-concurrency",
      String(listConcurrency)
    ])
    if (result.deleted !== keys || result.remaining !== 0) {
      throw new Error(`${result.side}: deleted ${result.deleted} of ${keys}, ${result.remaining} left`)
    }
    const side: Side = { ...result, serverCpuMs: server.cpuMs() - cpu0 }
    log(`${which} ${keys} keys at ${latency} ms: ${rate(side)} keys/s`)
    return side
  } finally {
    await server.stop()
  }
}

interface RssResult {
  readonly keys: number
  readonly deleted: number
  readonly remaining: number
  readonly ms: number
  readonly baselineRssMb: number
  readonly peakRssMb: number
  readonly heapUsedMb: number
}

const rssRun = async (keys: number) => {
  const server = await startFake(["--seed", String(keys), "--seed-prefix", "rss/"])
  try {
    const r = await runChild<RssResult>(
      "bench/purge-rss.ts",
      [
        "--role",
        "client",
        "--endpoint",
        server.url,
        "--keys",
        String(keys),
        "--list-concurrency",
        "4",
        "--concurrency",
        "8"
      ],
      {},
      shippedNodeFlags
    )
    log(`rss ${keys} keys: peak ${r.peakRssMb.toFixed(0)} MB`)
    return r
  } finally {
    await server.stop()
  }
}

interface QuotaRow extends QuotaResult {
  readonly scenario: string
  readonly quota: number
  readonly budget: string
  readonly slowDowns: number
}

const quotaRun = async (
  scenario: string,
  fakeArgs: ReadonlyArray<string>,
  quota: number,
  keys: number,
  writeBudget: number | undefined
): Promise<QuotaRow> => {
  const server = await startFake(["--seed", String(keys), "--seed-prefix", "quota/", "--stats", ...fakeArgs])
  try {
    const r = await runChild<QuotaResult>("bench/run.ts", [
      "--role",
      "quota-client",
      "--endpoint",
      server.url,
      "--keys",
      String(keys),
      ...(writeBudget !== undefined ? ["--write-budget", String(writeBudget)] : [])
    ])
    const stats = await (await fetch(`${server.url}/_fake/stats`)).json() as { byStatus: Record<string, number> }
    const row: QuotaRow = {
      ...r,
      scenario,
      quota,
      budget: writeBudget === undefined ? "region default (30,000)" : String(writeBudget),
      slowDowns: stats.byStatus["503"] ?? 0
    }
    log(`quota ${scenario}: ${Math.round(keys / (r.ms / 1000))} keys/s, ${row.slowDowns} SlowDown`)
    return row
  } finally {
    await server.stop()
  }
}

/** Runs bench/soak.ts --json and parses its last line, whatever its exit status (a failed soak is reported). */
const soakRun = (seconds: number) =>
  new Promise<SoakResult>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "bench/soak.ts", "--seconds", String(seconds), "--json"],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"] }
    )
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.on("error", reject)
    child.on("close", (code) => {
      const lines = out.trim().split("\n")
      try {
        resolve(JSON.parse(lines[lines.length - 1]!) as SoakResult)
      } catch {
        reject(new Error(`bench/soak.ts exited with ${code}: ${out}`))
      }
    })
  })

const rate = (r: { readonly keys: number; readonly ms: number }) => Math.round(r.keys / (r.ms / 1000))

/** Repeated runs of one measurement: the median run (by keys/s) and the range of keys/s. */
type Runs = Side & { readonly min: number; readonly max: number; readonly n: number }
const summarize = (xs: ReadonlyArray<Side>): Runs => {
  const sorted = [...xs].sort((a, b) => rate(a) - rate(b))
  return {
    ...sorted[Math.floor((sorted.length - 1) / 2)]!,
    min: rate(sorted[0]!),
    max: rate(sorted[sorted.length - 1]!),
    n: sorted.length
  }
}
/** `median` or `median (min–max)` when repeated. */
const rateText = (r: Runs) => r.n > 1 ? `${fmt(rate(r))} (${fmt(r.min)}–${fmt(r.max)})` : fmt(rate(r))
const fmt = (n: number) => n.toLocaleString("en-US")
const fixed = (n: number, d = 1) => n.toFixed(d)

// ---------------------------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------------------------

const main = async () => {
  const started = Date.now()
  const commit = (() => {
    try {
      return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root }).toString().trim()
    } catch {
      return "unknown"
    }
  })()

  // 1. purge vs the SDK, each latency: SDK then engine on fresh fakes
  // (alternating, `runs` times; the run with the median keys/s represents each side)
  const vsSdk: Array<{ latency: number; keys: number; sdk: Runs; engine: Runs }> = []
  for (const { keys, latency } of plan.vsSdk) {
    const sdk: Array<Side> = []
    const engine: Array<Side> = []
    for (let i = 0; i < runs; i++) {
      sdk.push(await purgeSide("sdk", keys, latency, engineListConcurrency))
      engine.push(await purgeSide("engine", keys, latency, engineListConcurrency))
    }
    vsSdk.push({ latency, keys, sdk: summarize(sdk), engine: summarize(engine) })
  }

  // 2. list concurrency
  const lc = plan.listConcurrency
  const byListConcurrency: Array<{ level: number; r: Runs }> = []
  const perLevel = new Map<number, Array<Side>>(lc.levels.map((l) => [l, []]))
  for (let i = 0; i < runs; i++) {
    for (const level of lc.levels) perLevel.get(level)!.push(await purgeSide("engine", lc.keys, lc.latency, level))
  }
  for (const level of lc.levels) byListConcurrency.push({ level, r: summarize(perLevel.get(level)!) })

  // 3. peak RSS
  const rss: Array<RssResult> = []
  for (const keys of plan.rss) rss.push(await rssRun(keys))

  // 4. quotas
  const q = plan.quota
  const quota = [
    await quotaRun(
      "COS quotas (--cos-quotas), engine at the region's default budget",
      ["--cos-quotas"],
      30_000,
      q.cos,
      undefined
    ),
    await quotaRun(
      `write quota ${fmt(q.explicitQps)} keys/s, engine told the same budget`,
      ["--write-qps", String(q.explicitQps)],
      q.explicitQps,
      q.explicit,
      q.explicitQps
    ),
    await quotaRun(
      `write quota ${fmt(q.explicitQps)} keys/s, engine not told (default budget 30,000)`,
      ["--write-qps", String(q.explicitQps)],
      q.explicitQps,
      q.explicit,
      undefined
    )
  ]

  // 5. soak
  const soak = withSoak ? await soakRun(plan.soakSeconds) : undefined

  const minutes = (Date.now() - started) / 60_000
  const cpus = Os.cpus()
  const md: Array<string> = []
  md.push(
    `# effect-cos benchmark report${quick ? " (--quick: small counts, not for comparison)" : ""}`,
    "",
    `Generated by \`pnpm bench${quick ? " --quick" : ""}\` (bench/run.ts) at ${new Date().toISOString()}, commit ` +
      `${commit}; ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, Node ${process.version}; ` +
      `the whole run took ${fixed(minutes)} min.`,
    "",
    (runs > 1 ?
      `Throughput figures are the median of ${runs} runs (range in brackets; seconds, CPU and RSS are those of the ` +
      "median run); the other measurements are single runs. "
      : "Single runs. ") +
      "The fake COS (`cos-fake`, packages/testkit) in its own process, each client in " +
      "its own process, on the same machine (so client and server share its cores, and anything else running on it adds noise). " +
      "`latency` is the fake's delay before every answer.",
    "",
    "## Purge throughput against cos-nodejs-sdk-v5",
    "",
    "The SDK the way its documentation deletes a prefix (getBucket a page of 1000, deleteMultipleObject it, up to 5 " +
      `batch deletes in flight) against \`Deletion.purge\` (concurrency ${engineConcurrency}, list concurrency ` +
      `${engineListConcurrency}, write budget lifted: the fake has no quota here); each side on a freshly seeded fake ` +
      "(bench/purge-vs-sdk.ts client roles).",
    "",
    table(
      [
        "latency ms",
        "keys",
        "SDK s",
        "SDK keys/s",
        "effect-cos s",
        "effect-cos keys/s",
        "ratio (medians)",
        "SDK CPU µs/key",
        "effect-cos CPU µs/key",
        "SDK peak RSS MB",
        "effect-cos peak RSS MB"
      ],
      vsSdk.map(({ engine, keys, latency, sdk }) => [
        latency,
        fmt(keys),
        fixed(sdk.ms / 1000, 2),
        rateText(sdk),
        fixed(engine.ms / 1000, 2),
        rateText(engine),
        `**${fixed(rate(engine) / rate(sdk), 2)}×**`,
        fixed(sdk.cpuMs * 1000 / keys),
        fixed(engine.cpuMs * 1000 / keys),
        fixed(sdk.maxRssMb, 0),
        fixed(engine.maxRssMb, 0)
      ])
    ),
    "",
    `## Throughput by list concurrency (${lc.latency} ms latency, ${fmt(lc.keys)} keys)`,
    "",
    `\`Deletion.purge\` with concurrency ${engineConcurrency} and \`listConcurrency\` 1, 4, 16 (1 = a single marker ` +
      "chain; more splits the key range).",
    "",
    table(
      ["list concurrency", "keys", "seconds", "keys/s", "client CPU µs/key", "peak RSS MB"],
      byListConcurrency.map(({ level, r }) => [
        level,
        fmt(r.keys),
        fixed(r.ms / 1000, 2),
        rateText(r),
        fixed(r.cpuMs * 1000 / r.keys),
        fixed(r.maxRssMb, 0)
      ])
    ),
    "",
    "## Peak RSS by number of keys (0 ms latency)",
    "",
    "`Deletion.purge` (list concurrency 4, concurrency 8) in a fresh process per size (bench/purge-rss.ts client role), " +
      `with the V8 flags the \`cos-retention\` script ships (${shippedNodeFlags.join(" ")}).`,
    "",
    table(
      ["keys", "deleted", "left", "seconds", "keys/s", "RSS before MB", "peak RSS MB", "peak heap used MB"],
      rss.map((r) => [
        fmt(r.keys),
        fmt(r.deleted),
        r.remaining,
        fixed(r.ms / 1000),
        fmt(rate(r)),
        fixed(r.baselineRssMb, 0),
        fixed(r.peakRssMb, 0),
        fixed(r.heapUsedMb, 0)
      ])
    ),
    "",
    `Peak RSS difference ${fmt(rss[rss.length - 1]!.keys)} vs ${fmt(rss[0]!.keys)} keys: ` +
      `${fixed(rss[rss.length - 1]!.peakRssMb - rss[0]!.peakRssMb)} MB.`,
    "",
    "## Under a COS-like write quota (0 ms latency)",
    "",
    "The fake enforces a per-second quota and answers 503 SlowDown above it (`--cos-quotas`: 1,000 list/s, 300 batch " +
      "deletes/s, 30,000 keys written/s, docs/protocol.md §5; or an explicit `--write-qps`). `achieved` = keys / wall " +
      "seconds of the purge; `SlowDown replies` = 503 answers the fake sent (to lists and deletes); `throttled / " +
      "retries` = the engine's summary counts. The engine's governor allows a burst of one second's budget at the " +
      "start, so a run of a few seconds can exceed the quota's share; the full report's runs last about 10 s.",
    "",
    table(
      [
        "scenario",
        "keys",
        "engine write budget",
        "seconds",
        "achieved keys/s",
        "share of the write quota",
        "SlowDown replies",
        "engine throttled / retries (summary)",
        "all deleted"
      ],
      quota.map((r) => [
        r.scenario,
        fmt(r.keys),
        r.budget,
        fixed(r.ms / 1000, 2),
        fmt(rate(r)),
        `${fixed(100 * rate(r) / r.quota)} %`,
        fmt(r.slowDowns),
        `${fmt(r.throttled)} / ${fmt(r.retries)}`,
        r.deleted === r.keys && r.remaining === 0 && r.failed === 0 ? "yes" : `NO (${r.deleted}, ${r.failed} failed)`
      ])
    ),
    ""
  )
  if (soak !== undefined) {
    md.push(
      `## Soak: the daemon for ${soak.seconds} s`,
      "",
      "`cos-retention run` (its own process) with one rule firing every 3 s (`*/3 * * * * *`) against `cos-fake`; " +
        "after each run the soak puts objects back, so every run deletes something (bench/soak.ts). RSS from " +
        `/proc/PID/status, descriptors from /proc/PID/fd, sampled every second; the first ${soak.warmupSeconds} s ` +
        "(tsx compiling the sources, first runs) are warm-up.",
      "",
      table(["measure", `at ${soak.warmupSeconds} s`, "end", "max", "slope after warm-up, per minute"], [
        [
          "daemon RSS MB",
          fixed(soak.rss.start),
          fixed(soak.rss.end),
          fixed(soak.rss.max),
          fixed(soak.rss.slopePerMin, 2)
        ],
        ["open file descriptors", soak.fds.start, soak.fds.end, soak.fds.max, fixed(soak.fds.slopePerMin, 2)]
      ]),
      "",
      `Runs ${soak.runs} (${soak.failedRuns} not succeeded), keys deleted ${fmt(soak.deleted)} of ${fmt(soak.put)} ` +
        `put (${fmt(soak.left)} left at the end, put after the last run): ` +
        (soak.pass ? "**flat (pass)**" : "**not flat (fail)**") +
        " (limits: RSS slope under 3 MB/min, at most 3 more descriptors after the warm-up).",
      ""
    )
  }
  md.push(`Chart: [${name}.png](${name}.png)`, "")

  // the chart
  const panels: Array<Panel> = [
    {
      title: "Purge throughput: effect-cos vs cos-nodejs-sdk-v5",
      unit: "keys/s, higher is better",
      bars: vsSdk.flatMap(({ engine, keys, latency, sdk }) => [
        { label: `SDK, ${latency} ms, ${fmt(keys)} keys`, value: rate(sdk), text: fmt(rate(sdk)), color: colors.sdk },
        {
          label: `effect-cos, ${latency} ms, ${fmt(keys)} keys`,
          value: rate(engine),
          text: `${fmt(rate(engine))}  (${fixed(rate(engine) / rate(sdk), 2)}×)`,
          color: colors.engine
        }
      ])
    },
    {
      title: `Throughput by list concurrency (${lc.latency} ms, ${fmt(lc.keys)} keys)`,
      unit: "keys/s",
      bars: byListConcurrency.map(({ level, r }) => ({
        label: `list concurrency ${level}`,
        value: rate(r),
        text: fmt(rate(r))
      }))
    },
    {
      title: "Peak RSS of a purge (0 ms)",
      unit: "MB, lower is better",
      bars: rss.map((r) => ({
        label: `${fmt(r.keys)} keys`,
        value: r.peakRssMb,
        text: `${fixed(r.peakRssMb, 0)} MB`,
        color: colors.other
      }))
    },
    {
      title: "Under a write quota",
      unit: "achieved keys/s as % of the quota; SlowDown replies in the text",
      bars: quota.map((r) => ({
        label: r.budget.startsWith("region") ?
          `quota ${fmt(r.quota)}/s, default budget` :
          `quota ${fmt(r.quota)}/s, budget ${fmt(Number(r.budget))}`,
        value: 100 * rate(r) / r.quota,
        text: `${fixed(100 * rate(r) / r.quota)} %, ${fmt(r.slowDowns)} SlowDown`
      })),
      reference: { value: 100, label: "quota" }
    }
  ]
  if (soak !== undefined) {
    panels.push({
      title: `Daemon soak (${soak.seconds} s, ${soak.runs} runs)`,
      unit: `${soak.pass ? "flat" : "NOT flat"}: RSS slope ${fixed(soak.rss.slopePerMin, 2)} MB/min`,
      bars: [
        { label: `RSS at ${soak.warmupSeconds} s`, value: soak.rss.start, text: `${fixed(soak.rss.start)} MB` },
        { label: "RSS at the end", value: soak.rss.end, text: `${fixed(soak.rss.end)} MB` },
        { label: "RSS max", value: soak.rss.max, text: `${fixed(soak.rss.max)} MB`, color: colors.muted }
      ]
    })
  }
  mkdirSync(outDir, { recursive: true })
  writeFileSync(Path.join(outDir, `${name}.md`), md.join("\n"))
  // the raw figures, for other tools (soak samples included)
  writeFileSync(
    Path.join(outDir, `${name}.json`),
    JSON.stringify(
      { generated: new Date().toISOString(), commit, quick, runs, vsSdk, byListConcurrency, rss, quota, soak },
      null,
      1
    ) + "\n"
  )
  writeFileSync(
    Path.join(outDir, `${name}.png`),
    png(
      `effect-cos benchmark${quick ? " (--quick)" : ""}`,
      `${new Date().toISOString().slice(0, 16)}Z, commit ${commit}, ${cpus.length} cores, Node ${process.version}; ` +
        "fake COS in its own process",
      panels
    )
  )
  process.stdout.write(md.join("\n") + "\n")
  log(`wrote ${Path.relative(root, Path.join(outDir, `${name}.md`))} and ${name}.png in ${fixed(minutes)} min`)
  // a --quick soak is too short to judge a trend: reported, not failed
  const ok = quota.every((r) => r.deleted === r.keys && r.remaining === 0) && (quick || (soak?.pass ?? true))
  if (!ok) process.exitCode = 1
}

if (role === "quota-client") {
  const budget = flag("write-budget", "")
  console.log(
    JSON.stringify(
      await quotaClient(flag("endpoint", ""), Number(flag("keys", "0")), budget === "" ? undefined : Number(budget))
    )
  )
} else {
  await main()
}
