/**
 * The throughput governor of the deletion engine: token buckets sized to a bucket's write budget (keys per second:
 * COS counts every key of a batch delete, docs/protocol.md §5) and list budget (requests per second), which halve on
 * 503 SlowDown and grow back additively. Waiting goes through Effect's `Clock`, so `TestClock` drives it in tests.
 *
 * Provide one `Governor` (via `layer`) to share a budget between several purges of the same bucket; without one,
 * each purge makes its own.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as internal from "./internal/governor.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Used to pick the default write budget. */
  readonly region?: string | undefined
  /** Delete keys per second. Default: 30,000 in mainland public regions, else 3,000 (docs/protocol.md §5). */
  readonly writeBudget?: number | undefined
  /** List requests per second. Default 1,000. */
  readonly listBudget?: number | undefined
  /** Rate multiplier on a throttling answer. Default 0.5. */
  readonly decreaseFactor?: number | undefined
  /** The rate never drops below this fraction of the budget. Default 1/32. */
  readonly floorFraction?: number | undefined
  /** Time to grow back from zero to the full budget (additive increase). Default 10 s. */
  readonly recoveryTime?: Duration.DurationInput | undefined
  /** Throttling answers within this time of a decrease count as the same congestion. Default 1 s. */
  readonly cooldown?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface State {
  readonly writeRate: number
  readonly listRate: number
  readonly writeThrottles: number
  readonly listThrottles: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Governor {
  readonly writeBudget: number
  readonly listBudget: number
  /** Waits until `keys` more delete keys may be sent. */
  readonly acquireWrite: (keys: number) => Effect.Effect<void>
  /** Waits until one more list request may be sent. */
  readonly acquireList: Effect.Effect<void>
  /** Reports a throttled delete (503 SlowDown): the write rate is cut. */
  readonly throttledWrite: Effect.Effect<void>
  /** Reports a throttled list request: the list rate is cut. */
  readonly throttledList: Effect.Effect<void>
  readonly state: Effect.Effect<State>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Governor: Context.Tag<Governor, Governor> = internal.GovernorTag

/**
 * The default write budget of a region: 30,000 keys/s for mainland public regions (ap-beijing, ap-nanjing,
 * ap-shanghai, ap-guangzhou, ap-chengdu, ap-chongqing and the -fsi ones), 3,000 elsewhere.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultWriteBudget: (region: string | undefined) => number = internal.defaultWriteBudget

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: Options) => Effect.Effect<Governor> = internal.make

/**
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake: (options?: Options) => Governor = internal.unsafeMake

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: (options?: Options) => Layer.Layer<Governor> = internal.layer
