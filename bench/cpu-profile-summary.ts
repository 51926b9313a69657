// Summarises a V8 .cpuprofile (from `node --cpu-prof`) by where self time goes: garbage collection, the Effect
// runtime, the XML reader, the engine, the client, Node's own code, module loading (tsx), idle. Frames of a bundle
// (packages/daemon/dist/*.js) are mapped back to their source files through the bundle's source maps.
//
//   node --import tsx bench/cpu-profile-summary.ts FILE.cpuprofile [--top 15] [--by-function [effect]] [--wall]
//
// Time is CPU time: each sample counts as one sampling interval, not its wall-clock delta (see below; --wall for the
// deltas, as earlier versions of this script summed).
//
// --by-function: self and total (inclusive) time of each function of one category ("effect": the `effect` and
// `@effect/*` packages, the default; or a category name as printed), named by source file and line, with the
// nearest frame outside that category below it on the stack (the code the runtime called into) and, for
// the top functions, the source files of the category summed.
import { existsSync, readFileSync } from "node:fs"
import { SourceMap } from "node:module"
import { fileURLToPath } from "node:url"

interface Node {
  readonly id: number
  readonly children?: ReadonlyArray<number>
  callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
    readonly columnNumber: number
  }
}
interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const file = process.argv[2]!
const argAfter = (flag: string): string | undefined => {
  const i = process.argv.indexOf(flag)
  const v = i < 0 ? undefined : process.argv[i + 1]
  return v === undefined || v.startsWith("--") ? undefined : v
}
const topN = Number(argAfter("--top") ?? 15)
const byFunction = process.argv.includes("--by-function") ? (argAfter("--by-function") ?? "effect") : undefined
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))

// a bundled frame becomes its source frame (file, line; the function name stays the bundle's)
const maps = new Map<string, SourceMap | undefined>()
const sourceMap = (url: string): SourceMap | undefined => {
  if (!maps.has(url)) {
    let map: SourceMap | undefined
    try {
      const path = fileURLToPath(url)
      if (existsSync(`${path}.map`)) map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, "utf8")))
    } catch {
      map = undefined
    }
    maps.set(url, map)
  }
  return maps.get(url)
}
for (const n of profile.nodes) {
  const { url } = n.callFrame
  if (!url.startsWith("file:") || !url.endsWith(".js")) continue
  const map = sourceMap(url)
  const entry = map?.findEntry(n.callFrame.lineNumber, n.callFrame.columnNumber) as
    | { originalSource?: string; originalLine?: number }
    | undefined
  if (entry?.originalSource === undefined) continue
  const source = new URL(entry.originalSource, url).href
  n.callFrame = { ...n.callFrame, url: source, lineNumber: entry.originalLine ?? n.callFrame.lineNumber }
}

const category = (n: Node): string => {
  const { functionName: f, url } = n.callFrame
  if (f === "(garbage collector)") return "garbage collection"
  if (f === "(idle)") return "idle"
  if (f === "(program)") return "program (V8, unattributed)"
  if (url.includes("/node_modules/effect/")) return "Effect runtime"
  if (url.includes("/node_modules/@effect/")) return "@effect/platform"
  if (url.includes("/internal/xml.") || url.includes("/internal/responses.")) return "XML reader"
  if (url.includes("/internal/deletion")) return "deletion engine"
  if (url.includes("/internal/parallelList.") || url.includes("/internal/pagination.")) return "listing"
  if (url.includes("/packages/core/")) return "client (signing, requests)"
  if (
    url.includes("tsx") || url.includes("esbuild") || url.includes("internal/modules") || url.includes("source_map") ||
    f === "compileSourceTextModule" || f === "receiveMessageOnPort"
  ) return "module loading"
  if (url.startsWith("node:") || url === "") return "Node internals"
  return "other"
}

// A sample's wall-clock delta includes the time the thread was descheduled before it: on a loaded machine most of
// the sampled time is such gaps (p90 deltas of 4-5 ms at a 1 ms interval), and it lands on whatever runs first
// after a wake-up (the I/O callbacks and the fiber they resume). Each sample is therefore counted as one sampling
// interval (the median delta) of CPU, unless --wall asks for the wall-clock deltas.
const wall = process.argv.includes("--wall")
const interval = [...profile.timeDeltas].sort((a, b) => a - b)[Math.floor(profile.timeDeltas.length / 2)] ?? 1000
const self = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!
  const delta = profile.timeDeltas[i] ?? 0
  self.set(id, (self.get(id) ?? 0) + (wall ? delta : Math.min(delta, interval)))
}
const cats = new Map<string, number>()
const fns = new Map<string, number>()
let total = 0
let busy = 0
for (const [id, us] of self) {
  const n = byId.get(id)!
  const c = category(n)
  total += us
  if (c !== "idle") busy += us
  cats.set(c, (cats.get(c) ?? 0) + us)
  const where = n.callFrame.url.split("/").slice(-2).join("/")
  const key = `${n.callFrame.functionName || "(anonymous)"} ${where}:${n.callFrame.lineNumber + 1}`
  if (c !== "idle") fns.set(key, (fns.get(key) ?? 0) + us)
}
const pct = (us: number) => `${(100 * us / busy).toFixed(1)}%`
console.log(
  `${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (shares of busy time; ` +
    `${wall ? "wall-clock deltas" : `each sample one ${interval} µs interval`})`
)
for (const [c, us] of [...cats].filter(([c]) => c !== "idle").sort((a, b) => b[1] - a[1])) {
  console.log(`  ${c.padEnd(30)} ${(us / 1e6).toFixed(2).padStart(6)} s  ${pct(us).padStart(6)}`)
}
console.log(`top ${topN} functions by self time:`)
for (const [f, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, topN)) {
  console.log(`  ${pct(us).padStart(6)}  ${f}`)
}

// Effect runtime time by the nearest project frame above it (what asked the runtime for that work).
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const askers = new Map<string, number>()
for (const [id, us] of self) {
  const n = byId.get(id)!
  if (category(n) !== "Effect runtime") continue
  let p = parent.get(id)
  let asker = "(no project frame)"
  while (p !== undefined) {
    const f = byId.get(p)!.callFrame
    if (f.url.includes("/packages/") && !f.url.includes("node_modules")) {
      asker = `${f.functionName || "(anonymous)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}`
      break
    }
    p = parent.get(p)
  }
  askers.set(asker, (askers.get(asker) ?? 0) + us)
}
console.log("Effect runtime by the nearest project frame above it:")
for (const [a, us] of [...askers].sort((x, y) => y[1] - x[1]).slice(0, topN)) {
  console.log(`  ${pct(us).padStart(6)}  ${a}`)
}

// --by-function: where the time of one category goes, function by function and file by file.
if (byFunction !== undefined) {
  const inCategory = (n: Node): boolean => {
    const c = category(n)
    return byFunction === "effect" ? c === "Effect runtime" || c === "@effect/platform" : c === byFunction
  }
  const where = (n: Node) => {
    const url = n.callFrame.url
    const i = url.lastIndexOf("/node_modules/")
    const tail = i >= 0 ? url.slice(i + "/node_modules/".length) : url.split("/").slice(-2).join("/")
    return tail.replace(/^\.pnpm\/[^/]+\/node_modules\//, "").replace("/src/", "/").replace("/dist/esm/", "/")
  }
  const fnKey = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${where(n)}:${n.callFrame.lineNumber + 1}`
  const fileKey = (n: Node) => where(n)
  const selfFn = new Map<string, number>()
  const totalFn = new Map<string, number>()
  const selfFile = new Map<string, number>()
  const totalFile = new Map<string, number>()
  const totalCategory = { us: 0 }
  // per sample: the stack from the leaf up; each function (and file) counted once per sample for total time
  for (const [id, us] of self) {
    const leaf = byId.get(id)!
    if (category(leaf) === "idle") continue
    if (inCategory(leaf)) {
      selfFn.set(fnKey(leaf), (selfFn.get(fnKey(leaf)) ?? 0) + us)
      selfFile.set(fileKey(leaf), (selfFile.get(fileKey(leaf)) ?? 0) + us)
    }
    const seenFn = new Set<string>()
    const seenFile = new Set<string>()
    let anyIn = false
    for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) {
      const n = byId.get(p)!
      if (!inCategory(n)) continue
      anyIn = true
      seenFn.add(fnKey(n))
      seenFile.add(fileKey(n))
    }
    if (anyIn) totalCategory.us += us
    for (const k of seenFn) totalFn.set(k, (totalFn.get(k) ?? 0) + us)
    for (const k of seenFile) totalFile.set(k, (totalFile.get(k) ?? 0) + us)
  }
  const selfSum = [...selfFn.values()].reduce((a, b) => a + b, 0)
  console.log(
    `\n${byFunction}: self ${(selfSum / 1e6).toFixed(2)} s (${pct(selfSum)}), on the stack of ` +
      `${(totalCategory.us / 1e6).toFixed(2)} s (${pct(totalCategory.us)}) of busy time`
  )
  const show = (title: string, selfs: Map<string, number>, totals: Map<string, number>, by: "self" | "total") => {
    console.log(`${title}, by ${by} time (self, total):`)
    const m = by === "self" ? selfs : totals
    for (const [k] of [...m].sort((a, b) => b[1] - a[1]).slice(0, topN)) {
      console.log(`  ${pct(selfs.get(k) ?? 0).padStart(6)} ${pct(totals.get(k) ?? 0).padStart(6)}  ${k}`)
    }
  }
  show("files", selfFile, totalFile, "self")
  show("functions", selfFn, totalFn, "self")
  show("functions", selfFn, totalFn, "total")
  // what the category's time ran into: the nearest frame outside the category below a category frame
  const callees = new Map<string, number>()
  for (const [id, us] of self) {
    const leaf = byId.get(id)!
    if (category(leaf) === "idle" || inCategory(leaf)) continue
    let below = leaf
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const n = byId.get(p)!
      if (inCategory(n)) {
        const k = `${category(below)}: ${below.callFrame.functionName || "(anonymous)"} ${
          below.callFrame.url.split("/").slice(-2).join("/")
        }:${below.callFrame.lineNumber + 1}`
        callees.set(k, (callees.get(k) ?? 0) + us)
        break
      }
      below = n
    }
  }
  console.log(`time spent in code called from ${byFunction} (nearest frame outside it), total:`)
  for (const [k, us] of [...callees].sort((a, b) => b[1] - a[1]).slice(0, topN)) {
    console.log(`  ${pct(us).padStart(6)}  ${k}`)
  }
}
