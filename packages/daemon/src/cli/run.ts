/**
 * `cos-retention run --config F`: the daemon. Runs until SIGTERM/SIGINT, then stops cleanly (exit 0). Exit 2 when it
 * cannot start (configuration, credentials, state, status port), 1 when the state file was deleted or replaced under
 * it, or its Postgres writer lock was lost to another process (it stops first: no new runs, in-flight batches finish).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Daemon from "../Daemon.js"
import * as Logging from "../Logging.js"
import * as Tracing from "../Tracing.js"
import { configOption, ExitCode, loadConfig, logFormatOption } from "./common.js"

const runnerAddressEnv = "COS_RETENTION_RUNNER_ADDRESS"

const runnerAddressOption = Options.text("runner-address").pipe(
  Options.withDescription(
    `cluster mode (a Postgres state): HOST:PORT where the other replicas reach this one (default: $${runnerAddressEnv})`
  ),
  Options.optional
)

/** The runner address from the flag or the environment; exit 2 with what is expected when missing or malformed. */
const clusterAddress = (flag: Option.Option<string>) =>
  Effect.gen(function*() {
    const Cluster = yield* Effect.promise(() => import("../Cluster.js"))
    const text = Option.getOrUndefined(flag) ?? process.env[runnerAddressEnv]
    if (text === undefined || text === "") {
      yield* Console.error(
        `with a Postgres state, run joins a cluster and needs this replica's address: --runner-address HOST:PORT ` +
          `(or ${runnerAddressEnv}), a host or IP the other replicas can reach`
      )
      return yield* new ExitCode({ code: 2 })
    }
    const parsed = Cluster.parseRunnerAddress(text)
    if (Either.isLeft(parsed)) {
      yield* Console.error(parsed.left)
      return yield* new ExitCode({ code: 2 })
    }
    return parsed.right
  })

export const run = Command.make(
  "run",
  { config: configOption, logFormat: logFormatOption, runnerAddress: runnerAddressOption },
  ({ config, logFormat, runnerAddress }) =>
    Effect.gen(function*() {
      const settings = yield* loadConfig(config, { log: true })
      yield* Effect.logInfo(`cos-retention starting: ${settings.rules.length} rule(s) from ${config}`).pipe(
        Effect.annotateLogs({ state: settings.state })
      )
      if (settings.store._tag === "sqlite" && Option.isSome(runnerAddress)) {
        yield* Console.error(
          `--runner-address is for cluster mode, which needs a Postgres state (state: postgres://...); ` +
            `the state here is the SQLite file ${settings.state}`
        )
        return yield* new ExitCode({ code: 2 })
      }
      let started = false
      yield* Effect.gen(function*() {
        if (settings.store._tag === "postgres") {
          // cluster mode loads the engine (and Postgres) only when it is used
          const Cluster = yield* Effect.promise(() => import("../Cluster.js"))
          const address = yield* clusterAddress(runnerAddress)
          // a state in use (StateError) is refused at start, as for SQLite: exit 2
          const cluster = yield* Layer.build(
            Cluster.layer(settings, { runnerAddress: address }).pipe(Layer.provide(Tracing.layer(settings.tracing)))
          )
          started = true
          // the writer lock lost for good (Postgres restarted and a `once` took the state meanwhile): exit 1
          return yield* Cluster.watchWriterLock.pipe(Effect.provide(cluster))
        }
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
