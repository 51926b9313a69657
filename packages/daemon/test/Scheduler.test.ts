import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as Config from "../src/Config.js"
import { Runner } from "../src/Runner.js"
import { nextFire, Scheduler } from "../src/Scheduler.js"
import { emptyCounts, State, type Trigger } from "../src/State.js"
import { Status } from "../src/Status.js"

type Call = { readonly rule: string; readonly trigger: Trigger; readonly at: number; readonly scheduledAt?: number }

const settingsOf = (rules: ReadonlyArray<Record<string, unknown>>) => {
  const result = Config.decode(
    {
      cos: { region: "ap-beijing" },
      state: ":memory:",
      rules: rules.map((r) => ({ bucket: "examplebucket-1250000000", prefix: "logs/", olderThan: "1d", ...r }))
    },
    { source: "test", baseDir: "/" }
  )
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

const at = (iso: string) => Date.parse(iso)
const iso = (ms: number) => new Date(ms).toISOString()

/**
 * Starts the scheduler at `start` (test clock) over `state` with a runner whose runs take `runFor` minutes; returns
 * the calls made to the runner.
 */
const startScheduler = (options: {
  readonly rules: ReadonlyArray<Record<string, unknown>>
  readonly start: string
  readonly runForMinutes?: number
  readonly state?: Layer.Layer<State>
}) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(at(options.start))
    const calls = yield* Ref.make<ReadonlyArray<Call>>([])
    const layer = Scheduler.DefaultWithoutDependencies.pipe(
      Layer.provideMerge(Runner.Test({ duration: `${options.runForMinutes ?? 1} minutes`, calls })),
      Layer.provideMerge(options.state ?? State.Test),
      Layer.provideMerge(Status.Default),
      Layer.provideMerge(Config.Settings.layer(settingsOf(options.rules)))
    )
    const context = yield* Layer.build(layer)
    return { calls, context }
  })

const advance = (minutes: number, stepMinutes = 1) =>
  Effect.gen(function*() {
    // step by step so each fire's run starts (and is observed) at its own time
    for (let i = 0; i < minutes; i += stepMinutes) {
      yield* TestClock.adjust(`${stepMinutes} minutes`)
      yield* Effect.yieldNow()
    }
  })

const callTimes = (calls: Ref.Ref<ReadonlyArray<Call>>, rule?: string) =>
  Effect.map(Ref.get(calls), (list) => list.filter((c) => rule === undefined || c.rule === rule).map((c) => iso(c.at)))

describe("Scheduler", () => {
  it("computes fire times in the rule's time zone (Asia/Shanghai has no DST, New York has)", () => {
    const daily = (timezone: string) => ({ schedule: "0 3 * * *", timezone })
    assert.strictEqual(
      nextFire(daily("UTC"), new Date("2026-03-07T12:00:00Z"))!.toISOString(),
      "2026-03-08T03:00:00.000Z"
    )
    assert.strictEqual(
      nextFire(daily("Asia/Shanghai"), new Date("2026-03-07T12:00:00Z"))!.toISOString(),
      "2026-03-07T19:00:00.000Z"
    )
    // 03:00 in New York is 08:00Z before the DST switch on 2026-03-08 and 07:00Z after it
    assert.strictEqual(
      nextFire(daily("America/New_York"), new Date("2026-03-07T00:00:00Z"))!.toISOString(),
      "2026-03-07T08:00:00.000Z"
    )
    assert.strictEqual(
      nextFire(daily("America/New_York"), new Date("2026-03-08T12:00:00Z"))!.toISOString(),
      "2026-03-09T07:00:00.000Z"
    )
  })

  it.scoped("fires each rule at its own zone's 03:00, driven by the test clock", () =>
    Effect.gen(function*() {
      const { calls } = yield* startScheduler({
        start: "2026-03-01T00:00:00Z",
        rules: [
          { name: "utc", schedule: "0 3 * * *", timezone: "UTC" },
          { name: "shanghai", schedule: "0 3 * * *", timezone: "Asia/Shanghai" }
        ]
      })
      yield* advance(24 * 60, 60)
      assert.deepStrictEqual(yield* callTimes(calls, "utc"), ["2026-03-01T03:00:00.000Z"])
      assert.deepStrictEqual(yield* callTimes(calls, "shanghai"), ["2026-03-01T19:00:00.000Z"])
      yield* advance(24 * 60, 60)
      assert.deepStrictEqual(yield* callTimes(calls, "utc"), ["2026-03-01T03:00:00.000Z", "2026-03-02T03:00:00.000Z"])
      assert.deepStrictEqual(yield* callTimes(calls, "shanghai"), [
        "2026-03-01T19:00:00.000Z",
        "2026-03-02T19:00:00.000Z"
      ])
      // each run is recorded with the fire time it ran for
      const list = yield* Ref.get(calls)
      assert.deepStrictEqual(list.map((c) => c.scheduledAt), list.map((c) => c.at))
    }))

  it.scoped("does not start a rule again while its previous run is going, and counts the skips", () =>
    Effect.gen(function*() {
      const { calls, context } = yield* startScheduler({
        start: "2026-03-01T00:00:00Z",
        runForMinutes: 12,
        rules: [{ name: "busy", schedule: "*/5 * * * *" }]
      })
      yield* advance(30)
      // runs at :05 (until :17) and :20 (until :32); :10, :15, :25 and :30 are skipped
      assert.deepStrictEqual(yield* callTimes(calls), ["2026-03-01T00:05:00.000Z", "2026-03-01T00:20:00.000Z"])
      const live = yield* Effect.flatMap(Status, (s) => s.rule("busy")).pipe(Effect.provide(context))
      assert.strictEqual(live.skippedOverlaps, 4)
    }))

  it.scoped("catches up a fire time missed while the daemon was down, once, when the rule asks", () => {
    const lines: Array<{ message: string; rule: unknown; lastMissed: unknown }> = []
    const collect = Logger.make(({ annotations, message }) => {
      lines.push({
        message: String(message),
        rule: HashMap.get(annotations, "rule").pipe(Option.getOrUndefined),
        lastMissed: HashMap.get(annotations, "lastMissed").pipe(Option.getOrUndefined)
      })
    })
    return Effect.gen(function*() {
      // one shared database across "restarts"
      const stateContext = yield* Layer.build(State.Test)
      const state = Layer.succeedContext(stateContext)
      // the last run started on 2026-03-01 at 03:00 UTC; the daemon is back on 2026-03-03 at 10:00
      yield* TestClock.setTime(at("2026-03-01T03:00:00Z"))
      yield* Effect.gen(function*() {
        const s = yield* State
        for (const name of ["catcher", "sleeper", "fresh"]) {
          const run = yield* s.startRun({ rule: name, trigger: "schedule", dryRun: false })
          yield* s.finishRun(run.id, "succeeded", emptyCounts)
        }
      }).pipe(Effect.provide(state))
      const { calls } = yield* startScheduler({
        start: "2026-03-03T10:00:00Z",
        state,
        rules: [
          { name: "catcher", schedule: "0 3 * * *", catchUp: true },
          { name: "sleeper", schedule: "0 3 * * *", catchUp: false },
          // its last fire (03:00 today, Asia/Shanghai = 19:00Z yesterday) is after the last run: also caught up
          { name: "fresh", schedule: "0 12 * * *", timezone: "UTC", catchUp: true },
          { name: "never-ran", schedule: "0 3 * * *", catchUp: true }
        ]
      })
      yield* Effect.yieldNow()
      const list = yield* Ref.get(calls)
      assert.deepStrictEqual(
        list.map((c) => [c.rule, c.trigger, iso(c.at), c.scheduledAt === undefined ? null : iso(c.scheduledAt)]),
        [
          // run now, for the fire time that was missed
          ["catcher", "catch-up", "2026-03-03T10:00:00.000Z", "2026-03-03T03:00:00.000Z"],
          ["fresh", "catch-up", "2026-03-03T10:00:00.000Z", "2026-03-02T12:00:00.000Z"]
        ]
      )
      // the rule that does not catch up says it skipped what it missed, with the last of it
      const skips = lines.filter((l) => l.message.startsWith("skipped the fire times that came due while the daemon"))
      assert.deepStrictEqual(skips.map((l) => [l.rule, l.lastMissed]), [["sleeper", "2026-03-03T03:00:00.000Z"]])
      assert.include(skips[0]!.message, "catchUp: false")
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)))
  })

  it.scoped("does not catch up when the last run is newer than the last fire time", () =>
    Effect.gen(function*() {
      const stateContext = yield* Layer.build(State.Test)
      const state = Layer.succeedContext(stateContext)
      yield* TestClock.setTime(at("2026-03-03T03:00:00Z"))
      yield* Effect.flatMap(State, (s) => s.startRun({ rule: "catcher", trigger: "schedule", dryRun: false })).pipe(
        Effect.provide(state)
      )
      const { calls } = yield* startScheduler({
        start: "2026-03-03T10:00:00Z",
        state,
        rules: [{ name: "catcher", schedule: "0 3 * * *", catchUp: true }]
      })
      yield* Effect.yieldNow()
      assert.deepStrictEqual(yield* Ref.get(calls), [])
    }))

  it.scoped("resumes at start a run that was interrupted with a checkpoint", () =>
    Effect.gen(function*() {
      const stateContext = yield* Layer.build(State.Test)
      const state = Layer.succeedContext(stateContext)
      yield* TestClock.setTime(at("2026-03-03T03:00:00Z"))
      yield* Effect.gen(function*() {
        const s = yield* State
        const run = yield* s.startRun({
          rule: "long",
          trigger: "schedule",
          dryRun: false,
          scheduledAt: at("2026-03-03T03:00:00Z")
        })
        yield* s.saveCheckpoint("long", run.id, "logs/0999")
        // the process died here: the run is still "running" in the database
      }).pipe(Effect.provide(state))
      const { calls } = yield* startScheduler({
        start: "2026-03-03T03:30:00Z",
        state,
        rules: [{ name: "long", schedule: "0 3 * * *" }, { name: "off", schedule: "* * * * *", enabled: false }]
      })
      yield* advance(3)
      // the resumed run carries on the interrupted run's fire time
      assert.deepStrictEqual((yield* Ref.get(calls)).map((c) => [c.rule, c.trigger, c.scheduledAt]), [[
        "long",
        "resume",
        at("2026-03-03T03:00:00Z")
      ]])
      const previous = yield* Effect.flatMap(State, (s) => s.getRun(1)).pipe(Effect.provide(state))
      assert.strictEqual(previous?.status, "interrupted")
    }))
})
