import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"

/**
 * Run by the client for every throttling answer it receives (503 `SlowDown` and the like), on every attempt, the ones
 * it retries included: the deletion engine sets it to count what the server sent, not only what outlasted the
 * client's retries.
 *
 * @internal
 */
export const onThrottled: FiberRef.FiberRef<Effect.Effect<void>> = FiberRef.unsafeMake<Effect.Effect<void>>(Effect.void)
