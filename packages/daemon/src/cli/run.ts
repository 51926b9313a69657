/**
 * `cos-retention run --config F`: the daemon. Runs until SIGTERM/SIGINT, then stops cleanly (exit 0).
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
      yield* Layer.launch(Daemon.layer(settings).pipe(Layer.provide(Tracing.layer(settings.tracing)))).pipe(
        Effect.catchTags({
          PurgeError: (e) =>
            Effect.zipRight(
              Console.error(`rules[${settings.rules.findIndex((r) => r.name === e.rule)}] (${e.rule}): ${e.message}`),
              new ExitCode({ code: 2 })
            ),
          HttpStatusError: (e) => Effect.zipRight(Console.error(e.message), new ExitCode({ code: 2 })),
          TracingConfigError: (e) => Effect.zipRight(Console.error(e.message), new ExitCode({ code: 2 }))
        })
      )
    }).pipe(Effect.provide(Logging.layer(logFormat)))
).pipe(Command.withDescription("Run the daemon: apply every enabled rule on its schedule until SIGTERM or SIGINT."))
