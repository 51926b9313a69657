// The daemon's audit writes alone, in process: State.recordIntent then State.confirmDeleted for each batch of 1000
// keys on a fresh SQLite state file, as a run does them (no COS, no engine: one intent row per batch, then the final
// rows and the intent's deletion in one transaction), and the CPU and wall time they take per key. The part of `once`'s cost over `purge` (bench/audit-cost.ts) that the state's statements account for.
//
//   node --conditions=source --import tsx bench/audit-micro.ts [KEYS]      (default 200000)
import * as Effect from "effect/Effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { State } from "../packages/daemon/src/State.js"

const keys = Number(process.argv[2] ?? "200000")
const batch = 1000
const dir = NodeFs.mkdtempSync(Path.join(Os.tmpdir(), "audit-micro-"))
const program = Effect.gen(function*() {
  const state = yield* State
  const run = yield* state.startRun({ rule: "bench", trigger: "once", dryRun: false })
  const ctx = { id: run.id, rule: "bench", bucket: "examplebucket-1250000000" }
  const batches: Array<Array<{ key: string; versionId?: string }>> = []
  for (let i = 0; i < keys; i += batch) {
    const b: Array<{ key: string }> = []
    for (let j = i; j < Math.min(keys, i + batch); j++) b.push({ key: "bench/" + String(j).padStart(7, "0") })
    batches.push(b)
  }
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let tIntent = 0
  let tConfirm = 0
  for (const b of batches) {
    const a = performance.now()
    yield* state.recordIntent(ctx, b)
    const m = performance.now()
    // the confirmation gets the array the intent was recorded for, as the engine's onDeleted does
    yield* state.confirmDeleted(ctx, b.map((o) => ({ key: o.key, size: 0, deleteMarkerCreated: false })), b)
    tConfirm += performance.now() - m
    tIntent += m - a
  }
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  console.log(JSON.stringify({
    keys,
    usPerKey: ((cpu.user + cpu.system) / keys).toFixed(2),
    wallUsPerKey: (ms * 1000 / keys).toFixed(2),
    intentUs: (tIntent * 1000 / keys).toFixed(2),
    confirmUs: (tConfirm * 1000 / keys).toFixed(2)
  }))
})
await Effect.runPromise(Effect.provide(program, State.layerFile(Path.join(dir, "state.db"))))
NodeFs.rmSync(dir, { recursive: true, force: true })
