/**
 * The daemon as one layer: preflight (every enabled rule's client can be built: region, endpoint, credentials), the
 * scheduler and the status server over the state database. `Layer.launch` it; interruption (SIGTERM/SIGINT) stops
 * new runs, lets in-flight batches finish within the grace period and records interrupted runs with checkpoints.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type RetentionConfig, Settings } from "./Config.js"
import * as HttpStatus from "./HttpStatus.js"
import { type PurgeError, Purger } from "./Purger.js"
import { Runner } from "./Runner.js"
import { Scheduler } from "./Scheduler.js"
import { State } from "./State.js"
import { Status } from "./Status.js"

/** Fails (the daemon does not start) when an enabled rule's client cannot be built. */
export const Preflight: Layer.Layer<never, PurgeError, Settings | Purger> = Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = yield* Settings
    const purger = yield* Purger
    yield* Effect.forEach(settings.rules.filter((r) => r.enabled), (rule) => purger.check(rule), { discard: true })
  })
)

/** Runner, State, Status and the given Purger (with whatever else its layer provides), shared by everything above. */
export const servicesWith = <ROut, E, R>(purger: Layer.Layer<ROut, E, R>) =>
  Runner.DefaultWithoutDependencies.pipe(Layer.provideMerge(Layer.mergeAll(State.Default, Status.Default, purger)))

/** The running daemon over the Purger given (the real one, or one over the testkit fake). */
export const layerWith = <E, R>(config: RetentionConfig, purger: Layer.Layer<Purger, E, R>) => {
  const services = servicesWith(purger)
  const ready = Layer.merge(services, Preflight.pipe(Layer.provide(services)))
  return Layer.mergeAll(Scheduler.DefaultWithoutDependencies, HttpStatus.layer).pipe(
    Layer.provide(ready),
    Layer.provide(Settings.layer(config))
  )
}

/** The daemon talking to COS over the network. */
export const layer = (config: RetentionConfig) => layerWith(config, Purger.Default)
