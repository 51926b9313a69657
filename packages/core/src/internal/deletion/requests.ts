/**
 * The one retry path of the engine, on top of the client's own quick retries: an exponential, jittered, capped
 * `Schedule`, continued while the failure is retryable and the run is not stopping; throttling bookkeeping (the
 * tally, the governor, the metric) written once.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type { CosError } from "../../CosError.js"
import { isRetryable, isThrottle } from "../../CosError.js"
import { retryAfterFailure } from "../retry.js"
import { onThrottled } from "../throttle.js"
import type { Run } from "./run.js"
import { throttledRequests } from "./tally.js"

/** Exponential backoff with jitter: 100 ms, 200 ms, ... capped at 10 s, times 0.5–1.5. */
export const backoff: Schedule.Schedule<unknown> = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(10))),
  Schedule.jitteredWith({ min: 0.5, max: 1.5 })
)

/** One throttling answer COS sent: counted, and on the metric. */
const countThrottle = (run: Run): Effect.Effect<void> =>
  Effect.suspend(() => {
    run.tally.throttled++
    return Metric.increment(throttledRequests)
  })

/** COS throttled keys of a batch reply: counted (once for the reply), reported to the governor (`slowDown`). */
export const throttled = (run: Run, slowDown: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.zipRight(countThrottle(run), slowDown)

/**
 * `send`, counting every throttling answer the server sent: the client reports each one through `onThrottled`, on
 * every attempt (the ones it retries included); a client that does not (a test double) is counted by its final
 * error.
 */
const counted = <A>(run: Run, send: Effect.Effect<A, CosError>): Effect.Effect<A, CosError> =>
  Effect.suspend(() => {
    let reported = 0
    const report = Effect.suspend(() => {
      reported++
      return countThrottle(run)
    })
    return Effect.locally(send, onThrottled, report).pipe(
      Effect.tapError((e) => (isThrottle(e) && reported === 0 ? countThrottle(run) : Effect.void))
    )
  })

/**
 * Whether to send a failed request again after `attempt` attempts. Throttling is retried up to `maxAttempts`, so
 * it slows the run down without failing it; other retryable failures (5xx, transport) get at most 3 attempts.
 */
export const mayRetry = (run: Run, e: CosError, attempt: number): boolean => {
  if (run.stopping || !isRetryable(e)) return false
  return attempt < (isThrottle(e) ? run.r.maxAttempts : Math.min(3, run.r.maxAttempts))
}

/**
 * One attempt: `before` (the governor's budget, and the caller's `onSend` for deletes: what must happen just before
 * the request leaves), the request counted and timed, every throttling answer counted, and a throttled attempt
 * reported to the governor (`slowDown`).
 */
export const attempt = <A>(
  run: Run,
  before: Effect.Effect<void>,
  send: Effect.Effect<A, CosError>,
  slowDown: Effect.Effect<void>
): Effect.Effect<A, CosError> =>
  Effect.zipRight(before, Effect.zipRight(run.markRequest, counted(run, send))).pipe(
    Effect.zipLeft(run.markDone),
    Effect.tapError((e) => isThrottle(e) ? Effect.zipRight(run.markDone, slowDown) : run.markDone)
  )

/** A request with the engine's retry: throttling slows the run, never fails it. `before` runs on every attempt. */
export const request = <A>(
  run: Run,
  before: Effect.Effect<void>,
  send: Effect.Effect<A, CosError>,
  slowDown: Effect.Effect<void>
): Effect.Effect<A, CosError> =>
  Effect.suspend(() => {
    let attempts = 1
    return retryAfterFailure(attempt(run, before, send, slowDown), {
      schedule: backoff,
      while: (e) => {
        if (!mayRetry(run, e, attempts)) return false
        attempts++
        run.tally.retries++
        return true
      }
    })
  })
