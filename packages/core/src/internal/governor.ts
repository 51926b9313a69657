/**
 * Token buckets with additive-increase / multiplicative-decrease, timed by Effect's Clock.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Governor from "../Governor.js"

/** Mainland public regions, whose buckets get 30,000 write QPS (docs/protocol.md §5 "Documented limits"). */
const mainland: ReadonlySet<string> = new Set([
  "ap-beijing",
  "ap-nanjing",
  "ap-shanghai",
  "ap-guangzhou",
  "ap-chengdu",
  "ap-chongqing",
  "ap-shenzhen-fsi",
  "ap-shanghai-fsi",
  "ap-beijing-fsi"
])

/** @internal */
export const defaultWriteBudget = (region: string | undefined): number =>
  region !== undefined && mainland.has(region) ? 30_000 : 3_000

/** @internal */
export const defaultListBudget = 1_000

/** @internal */
export const GovernorTag = Context.GenericTag<Governor.Governor>("@effect-cos/core/Governor")

/**
 * One rate-limited resource. A caller takes `n` tokens at once and may drive the balance negative: it then sleeps
 * until the debt would be repaid at the current rate, so concurrent callers queue up in arrival order.
 */
class Bucket {
  rate: number
  tokens: number
  last: number | undefined = undefined
  lastDecrease = Number.NEGATIVE_INFINITY
  throttles = 0
  constructor(
    readonly budget: number,
    readonly floor: number,
    readonly decrease: number,
    /** Rate regained per second after a decrease. */
    readonly increasePerSecond: number,
    readonly cooldownMs: number
  ) {
    this.rate = budget
    this.tokens = budget
  }

  private refill(now: number): void {
    if (this.last === undefined) {
      this.last = now
      return
    }
    const elapsed = now - this.last
    if (elapsed <= 0) return
    this.last = now
    if (this.rate < this.budget) this.rate = Math.min(this.budget, this.rate + this.increasePerSecond * elapsed / 1000)
    // The burst allowance is one second's worth at the current rate.
    this.tokens = Math.min(this.rate, this.tokens + this.rate * elapsed / 1000)
  }

  /** Takes `n` tokens; returns how many milliseconds to wait before going ahead. */
  take(n: number, now: number): number {
    this.refill(now)
    this.tokens -= n
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens / this.rate * 1000)
  }

  /** A throttling answer: cut the rate, at most once per cooldown (concurrent requests see the same congestion). */
  slowDown(now: number): void {
    this.refill(now)
    this.throttles++
    if (now - this.lastDecrease < this.cooldownMs) return
    this.lastDecrease = now
    this.rate = Math.max(this.floor, this.rate * this.decrease)
    if (this.tokens > 0) this.tokens = 0
  }
}

/** @internal */
export const unsafeMake = (options: Governor.Options = {}): Governor.Governor => {
  const writeBudget = options.writeBudget ?? defaultWriteBudget(options.region)
  const listBudget = options.listBudget ?? defaultListBudget
  if (!(writeBudget > 0) || !(listBudget > 0)) throw new RangeError("Governor budgets must be positive")
  const decrease = options.decreaseFactor ?? 0.5
  const floorFraction = options.floorFraction ?? 1 / 32
  const recoveryMs = Duration.toMillis(options.recoveryTime ?? Duration.seconds(10))
  const cooldownMs = Duration.toMillis(options.cooldown ?? Duration.seconds(1))
  const bucket = (budget: number) =>
    new Bucket(budget, Math.max(budget * floorFraction, 1), decrease, budget * 1000 / recoveryMs, cooldownMs)
  const write = bucket(writeBudget)
  const list = bucket(listBudget)
  const acquire = (b: Bucket, n: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const wait = b.take(n, now)
      return wait === 0 ? Effect.void : Effect.sleep(Duration.millis(wait))
    })
  return {
    writeBudget,
    listBudget,
    acquireWrite: (keys) => acquire(write, keys),
    acquireList: acquire(list, 1),
    throttledWrite: Effect.map(Clock.currentTimeMillis, (now) => write.slowDown(now)),
    throttledList: Effect.map(Clock.currentTimeMillis, (now) => list.slowDown(now)),
    state: Effect.sync(() => ({
      writeRate: write.rate,
      listRate: list.rate,
      writeThrottles: write.throttles,
      listThrottles: list.throttles
    }))
  }
}

/** @internal */
export const make = (options?: Governor.Options): Effect.Effect<Governor.Governor> =>
  Effect.sync(() => unsafeMake(options))

/** @internal */
export const layer = (options?: Governor.Options): Layer.Layer<Governor.Governor> =>
  Layer.effect(GovernorTag, make(options))
