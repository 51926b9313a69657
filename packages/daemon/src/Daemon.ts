/**
 * The daemon as one layer, built in an order that changes nothing until every check passed: preflight (every enabled
 * rule's client can be built: region, endpoint, credentials, all problems at once), then the state's one-writer lock
 * and the database opened (read only so far), then the status port bound, and only then the state written: schema
 * migrated, runs left by a dead process settled, pending audit rows reconciled (Runner.recover), and the scheduler
 * started. `Layer.launch` it, or build it and `watch` the state; interruption (SIGTERM/SIGINT) stops new runs, lets
 * in-flight batches finish within the grace period and records interrupted runs with checkpoints.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { type RetentionConfig, Settings } from "./Config.js"
import * as HttpStatus from "./HttpStatus.js"
import { credentialProblems, Purger } from "./Purger.js"
import { Runner } from "./Runner.js"
import { Scheduler } from "./Scheduler.js"
import { DeferMigrations, State } from "./State.js"
import { Status } from "./Status.js"

/** Enabled rules whose client cannot be built; `problems` holds every one, as `rules[i] (name): ...` lines. */
export class PreflightError extends Schema.TaggedError<PreflightError>()("PreflightError", {
  problems: Schema.Array(Schema.String)
}) {
  get message(): string {
    return this.problems.join("\n")
  }
}

/** Fails (the daemon does not start) when an enabled rule's client cannot be built; reports every such rule. */
export const Preflight: Layer.Layer<never, PreflightError, Settings | Purger> = Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = yield* Settings
    const purger = yield* Purger
    const enabled = settings.rules.map((rule, index) => ({ rule, index })).filter(({ rule }) => rule.enabled)
    const problems = [...yield* credentialProblems(enabled)]
    if (problems.length === 0) {
      for (const { index, rule } of enabled) {
        const r = yield* Effect.either(purger.check(rule))
        if (r._tag === "Left") problems.push(`rules[${index}] (${rule.name}): ${r.left.message}`)
      }
    }
    if (problems.length > 0) return yield* new PreflightError({ problems })
  })
)

/** Runner, State, Status and the given Purger (with whatever else its layer provides), shared by everything above. */
export const servicesWith = <ROut, E, R>(purger: Layer.Layer<ROut, E, R>) =>
  Runner.DefaultWithoutDependencies.pipe(Layer.provideMerge(Layer.mergeAll(State.Default, Status.Default, purger)))

/**
 * Runs `Runner.recover` (every command that opens the state does this first) and then the effect, with the
 * services. For `once` and tests.
 */
export const recovered = Layer.effectDiscard(Effect.flatMap(Runner, (runner) => runner.recover))

/** The running daemon over the Purger given (the real one, or one over the testkit fake). Outputs the
 * services (Runner, State, Status, Purger) too. */
export const layerWith = <E, R>(config: RetentionConfig, purger: Layer.Layer<Purger, E, R>) => {
  const settings = Settings.layer(config)
  const preflight = Preflight.pipe(Layer.provide(purger))
  // the lock is taken and the database opened only once preflight passed; migrations wait for the port
  const state = State.Default.pipe(Layer.provide(DeferMigrations.layer), Layer.provide(preflight))
  const services = Runner.DefaultWithoutDependencies.pipe(
    Layer.provideMerge(Layer.mergeAll(state, Status.Default, purger))
  )
  const bound = HttpStatus.layer.pipe(Layer.provide(services))
  const started = recovered.pipe(Layer.provide(Layer.merge(bound, services)))
  const scheduler = Scheduler.DefaultWithoutDependencies.pipe(Layer.provide(Layer.merge(started, services)))
  return Layer.merge(scheduler, services).pipe(Layer.provide(settings))
}

/** The daemon talking to COS over the network. */
export const layer = (config: RetentionConfig) => layerWith(config, Purger.Default)

/**
 * Checks every second that the state file is still the one opened; fails (the daemon then stops: no new runs,
 * in-flight batches finish) when it was deleted or replaced. Never succeeds.
 */
export const watch = Effect.flatMap(State, (state) =>
  state.check.pipe(
    Effect.repeat(Schedule.spaced("1 second")),
    Effect.zipRight(Effect.never)
  ))
