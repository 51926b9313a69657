// Summarises a V8 .cpuprofile (from `node --cpu-prof`) by where self time goes: garbage collection, the Effect
// runtime, the XML reader, the engine, the client, Node's own code, module loading (tsx), idle. Frames of a bundle
// (packages/daemon/dist/*.js) are mapped back to their source files through the bundle's source maps.
//
//   node --import tsx bench/cpu-profile-summary.ts FILE.cpuprofile [--top 15]
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
const topN = Number(process.argv[process.argv.indexOf("--top") + 1] || 15)
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
  if (!url.startsWith("file:") || !url.includes("/dist/")) continue
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

const self = new Map<number, number>()
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
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
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (shares of busy time)`)
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
