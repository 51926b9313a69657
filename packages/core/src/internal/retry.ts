/**
 * `Effect.retry` with its schedule set up only once the effect has failed.
 *
 * `Effect.retry` builds a schedule driver (a `Ref`, the iteration metadata service, the `while` wrapper) before the
 * first attempt, and nearly every request succeeds at once: about 30 fiber-runtime operations per request for
 * nothing. Here the first attempt runs bare; its failure starts `Effect.retry` over an effect that fails once more
 * with that same error (no request sent) and then runs the real effect again. The schedule and `while` therefore see
 * exactly the inputs `Effect.retry` would give them, in the same order: same delays, same number of attempts.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Schedule from "effect/Schedule"

/** @internal */
export interface Policy<E> {
  readonly schedule: Schedule.Schedule<unknown, E>
  readonly while: (error: E) => boolean
}

/** @internal */
export const retryAfterFailure: {
  <E>(policy: Policy<E>): <A, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Policy<E>): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Policy<E>): Effect.Effect<A, E, R> =>
    Effect.catchAll(self, (first) => {
      let replayed = false
      const again = Effect.suspend(() => {
        if (replayed) return self
        replayed = true
        return Effect.fail(first)
      })
      return Effect.retry(again, { schedule: policy.schedule, while: policy.while })
    })
)
