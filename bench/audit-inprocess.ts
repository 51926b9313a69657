// Where `once`'s extra CPU goes, without a server process or start-up in the way: one rule over the in-process fake
// COS (testkit), run three ways in one process, its CPU (user + sys) per key measured around the run alone:
//   purge    the rule through the daemon's Purger with no hooks (what `cos-retention purge` runs)
//   noaudit  Runner.run with a SQLite state file whose recordIntent and confirmDeleted do nothing (the daemon's own
//            path: runs table, checkpoints, metrics, status, progress, the engine's confirmation lists)
//   runner   Runner.run with the real state file (the audit written)
// The fake's own CPU is in every figure alike: compare the modes, not the absolute numbers. Run the modes in turn,
// each in a fresh process, several rounds (the machine is shared):
//
//   for i in 1 2 3; do for m in purge noaudit runner; do
//     node --conditions=source --import tsx bench/audit-inprocess.ts $m 100000; done; done
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Config from "../packages/daemon/src/Config.js"
import * as Daemon from "../packages/daemon/src/Daemon.js"
import { Purger } from "../packages/daemon/src/Purger.js"
import { Runner } from "../packages/daemon/src/Runner.js"
import { State } from "../packages/daemon/src/State.js"
import { Status } from "../packages/daemon/src/Status.js"
import * as Tracing from "../packages/daemon/src/Tracing.js"
import { CosFake, Store } from "../packages/testkit/src/index.js"

const mode = process.argv[2] ?? "runner"
const keys = Number(process.argv[3] ?? "100000")
if (!["purge", "noaudit", "runner"].includes(mode)) throw new Error(`mode: purge, noaudit or runner, not ${mode}`)

const dir = NodeFs.mkdtempSync(Path.join(Os.tmpdir(), "audit-inprocess-"))
const bucket = CosFake.testBucket
const settings = (() => {
  const result = Config.decode({
    cos: {
      region: CosFake.testRegion,
      credentials: {
        secretId: CosFake.testCredentials.secretId,
        secretKey: Redacted.value(CosFake.testCredentials.secretKey)
      }
    },
    state: Path.join(dir, "state.db"),
    rules: [{
      name: "bench",
      bucket,
      prefix: "bench/",
      olderThan: "1d",
      schedule: "0 3 * * *",
      concurrency: 16,
      listConcurrency: 8
    }]
  }, { source: "bench", baseDir: "/" })
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
})()
const rule = settings.rules[0]!

// the daemon's Purger over the in-process fake
const testPurger = () => Purger.DefaultWithoutDependencies.pipe(Layer.provideMerge(CosFake.layer()))

// the state with its audit writes doing nothing (everything else as it is)
const noAuditState = Layer.effect(
  State,
  Effect.map(State, (s) => State.make({ ...s, recordIntent: () => Effect.void, confirmDeleted: () => Effect.void }))
).pipe(Layer.provide(State.Default))

const services = mode === "noaudit"
  ? Runner.DefaultWithoutDependencies.pipe(
    Layer.provideMerge(Layer.mergeAll(noAuditState, Status.Default, testPurger()))
  )
  : Daemon.servicesWith(testPurger())

const program = Effect.gen(function*() {
  const fake = yield* CosFake.CosFake
  yield* Store.seed(fake.store, { bucket, count: keys, prefix: "bench/", ageMs: () => 2 * 86_400_000 })
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const deleted = mode === "purge"
    ? (yield* (yield* Purger).purge({ rule, dryRun: false }).pipe(Effect.withTracerEnabled(false))).deleted
    : (yield* (yield* Runner).run(rule, { trigger: "once" })).run.deleted
  const cpu = process.cpuUsage(cpu0)
  if (deleted !== keys) throw new Error(`${mode} deleted ${deleted} of ${keys} keys`)
  console.log(JSON.stringify({
    mode,
    keys,
    cpuUsPerKey: Number(((cpu.user + cpu.system) / keys).toFixed(2)),
    wallMs: Math.round(performance.now() - t0)
  }))
}).pipe(
  Effect.provide(services.pipe(Layer.provide(Config.Settings.layer(settings)))),
  // as `once` runs without tracing configured
  Effect.provide(Layer.succeed(Tracing.Exporting, false))
)

await Effect.runPromise(program)
NodeFs.rmSync(dir, { recursive: true, force: true })
