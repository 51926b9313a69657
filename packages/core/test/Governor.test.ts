import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as Governor from "../src/Governor.js"

/** Milliseconds of TestClock time an effect needs before it completes. */
const timeToComplete = <A>(effect: Effect.Effect<A>, stepMs = 10, maxMs = 60_000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    let elapsed = 0
    while (elapsed <= maxMs) {
      yield* Effect.yieldNow()
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return elapsed
      yield* TestClock.adjust(Duration.millis(stepMs))
      elapsed += stepMs
    }
    return Number.POSITIVE_INFINITY
  })

describe("Governor", () => {
  it("defaults the write budget by region", () => {
    assert.strictEqual(Governor.defaultWriteBudget("ap-guangzhou"), 30_000)
    assert.strictEqual(Governor.defaultWriteBudget("ap-shenzhen-fsi"), 30_000)
    assert.strictEqual(Governor.defaultWriteBudget("ap-singapore"), 3_000)
    assert.strictEqual(Governor.defaultWriteBudget(undefined), 3_000)
    assert.strictEqual(Governor.unsafeMake({ region: "ap-beijing" }).writeBudget, 30_000)
    assert.strictEqual(Governor.unsafeMake({ region: "eu-frankfurt" }).listBudget, 1_000)
  })

  it.effect("lets one second's budget through at once, then paces deletes at the budget", () =>
    Effect.gen(function*() {
      const g = yield* Governor.make({ writeBudget: 1000 })
      assert.strictEqual(yield* timeToComplete(g.acquireWrite(1000)), 0)
      // 3 more batches of 1000 keys need 3 more seconds.
      const t = yield* timeToComplete(Effect.all([g.acquireWrite(1000), g.acquireWrite(1000), g.acquireWrite(1000)], {
        concurrency: "unbounded"
      }))
      assert.isTrue(t >= 2990 && t <= 3010, `took ${t} ms`)
    }))

  it.effect("paces list requests at the list budget", () =>
    Effect.gen(function*() {
      const g = yield* Governor.make({ listBudget: 10 })
      const t = yield* timeToComplete(Effect.replicateEffect(g.acquireList, 30))
      // 10 at once, 20 more at 10/s.
      assert.isTrue(t >= 1990 && t <= 2010, `took ${t} ms`)
    }))

  it.effect("halves the rate on throttling, once per cooldown, and grows back additively", () =>
    Effect.gen(function*() {
      const g = yield* Governor.make({ writeBudget: 1000, recoveryTime: "10 seconds" })
      yield* g.throttledWrite
      yield* g.throttledWrite // same congestion: ignored for the rate
      let s = yield* g.state
      assert.strictEqual(s.writeRate, 500)
      assert.strictEqual(s.writeThrottles, 2)
      // A batch of 500 right after the throttle waits about a second at the halved rate.
      const t = yield* timeToComplete(g.acquireWrite(500))
      assert.isTrue(t >= 900 && t <= 1100, `took ${t} ms`)
      yield* TestClock.adjust("2 seconds")
      yield* g.throttledWrite
      s = yield* g.state
      assert.isTrue(s.writeRate > 250 && s.writeRate < 500, `rate ${s.writeRate}`)
      yield* TestClock.adjust("20 seconds")
      yield* g.acquireWrite(1)
      s = yield* g.state
      assert.strictEqual(s.writeRate, 1000)
    }))

  it.effect("never goes below the floor", () =>
    Effect.gen(function*() {
      const g = yield* Governor.make({ writeBudget: 3200, floorFraction: 1 / 32 })
      for (let i = 0; i < 20; i++) {
        yield* g.throttledWrite
        yield* TestClock.adjust("1001 millis")
      }
      const s = yield* g.state
      // 100 keys/s floor; the additive increase over the last second adds 320.
      assert.isTrue(s.writeRate >= 100 && s.writeRate < 800, `rate ${s.writeRate}`)
    }))
})
