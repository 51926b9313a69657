/**
 * `cos-retention run --config F`: the daemon. Runs until SIGTERM/SIGINT, then stops cleanly (exit 0). Exit 2 when it
 * cannot start (configuration, credentials, state, status port), 1 when the state file was deleted or replaced under
 * it (it stops first: no new runs, in-flight batches finish).
 */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Daemon from "../Daemon.js"
import * as Logging from "../Logging.js"
import * as Tracing from "../Tracing.js"
import { configOption, ExitCode, loadConfig, logFormatOption } from "./common.js"

export const run = Command.make(
  "run",
  { config: configOption, logFormat: logFormatOption },
  ({ config, logFormat }) =>
    Effect.gen(function*() {
      const settings = yield* loadConfig(config, { log: true })
      yield* Effect.logInfo(`cos-retention starting: ${settings.rules.length} rule(s) from ${config}`).pipe(
        Effect.annotateLogs({ state: settings.state })
      )
      let started = false
      yield* Effect.gen(function*() {
        const daemon = yield* Layer.build(Daemon.layer(settings).pipe(Layer.provide(Tracing.layer(settings.tracing))))
        started = true
        yield* Daemon.watch.pipe(Effect.provide(daemon))
      }).pipe(
        Effect.scoped,
        Effect.catchTags({
          PreflightError: (e) => Effect.zipRight(Console.error(e.message), new ExitCode({ code: 2 })),
          HttpStatusError: (e) => Effect.zipRight(Console.error(e.message), new ExitCode({ code: 2 })),
          TracingConfigError: (e) => Effect.zipRight(Console.error(e.message), new ExitCode({ code: 2 })),
          StateError: (e) =>
            started
              ? Effect.zipRight(
                Effect.logError(`${e.line}: the daemon stopped (no new runs; nothing more is recorded there)`),
                new ExitCode({ code: 1 })
              )
              : Effect.zipRight(Console.error(e.line), new ExitCode({ code: 2 }))
        })
      )
    }).pipe(Effect.provide(Logging.layer(logFormat)))
).pipe(Command.withDescription("Run the daemon: apply every enabled rule on its schedule until SIGTERM or SIGINT."))
