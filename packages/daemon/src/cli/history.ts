/**
 * `cos-retention history --config F [--limit N] [--rule NAME] [--json]`: recent runs from the state database.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import { Settings } from "../Config.js"
import * as Daemon from "../Daemon.js"
import { runJson } from "../HttpStatus.js"
import * as Logging from "../Logging.js"
import { Purger } from "../Purger.js"
import { Runner } from "../Runner.js"
import { type RunRecord, State } from "../State.js"
import * as StateFile from "../StateFile.js"
import {
  bytes,
  configOption,
  ExitCode,
  intOption,
  jsonOption,
  loadConfig,
  logFormatOption,
  printJson,
  table
} from "./common.js"
import { ruleOption } from "./once.js"

const time = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString().replace(/\.\d+Z$/, "Z"))

const printRuns = (json: boolean, runs: ReadonlyArray<RunRecord>) =>
  Effect.gen(function*() {
    if (json) {
      return yield* printJson(runs.map((r) => ({ rule: r.rule, ...runJson(r) })))
    }
    yield* Console.log(table(
      ["id", "rule", "trigger", "status", "started", "ended", "deleted", "bytes", "failed", "error"],
      runs.map((r) => [
        r.id,
        r.rule,
        r.trigger,
        r.dryRun ? `${r.status} (dry run)` : r.status,
        time(r.startedAt),
        time(r.endedAt),
        r.deleted,
        bytes(r.bytes),
        r.failed,
        r.error ?? ""
      ])
    ))
  })

export const history = Command.make(
  "history",
  {
    config: configOption,
    limit: intOption("limit", 1).pipe(Options.withDefault(20), Options.withDescription("runs to show (default 20)")),
    rule: ruleOption,
    json: jsonOption,
    logFormat: logFormatOption
  },
  (args) =>
    Effect.gen(function*() {
      const settings = yield* loadConfig(args.config, { log: true })
      const store = settings.store
      if (store._tag === "postgres") {
        // Postgres: read what the daemons recorded (they settle the state themselves)
        const runs = yield* Effect.flatMap(State, (s) =>
          s.recentRuns({ limit: args.limit, rule: Option.getOrUndefined(args.rule) })).pipe(
            Effect.provide(State.layerStore(store)),
            Effect.catchTag("StateError", (e) =>
              Effect.zipRight(Console.error(e.line), new ExitCode({ code: 2 })))
          )
        return yield* printRuns(args.json, runs)
      }
      const problem = Either.try({ try: () => StateFile.inspect(settings.state), catch: (e) => e })
      if (Either.isLeft(problem)) {
        if (!(problem.left instanceof StateFile.StateError)) return yield* Effect.die(problem.left)
        yield* Console.error(problem.left.line)
        return yield* new ExitCode({ code: 2 })
      }
      if (settings.state !== ":memory:" && !NodeFs.existsSync(settings.state)) {
        yield* Console.log(`no state database at ${settings.state} yet: no run has been recorded`)
        return
      }
      const query = Effect.flatMap(State, (s) =>
        s.recentRuns({ limit: args.limit, rule: Option.getOrUndefined(args.rule) }))
      // With the state free, history holds it like any command and first settles what a dead process left (runs
      // still `running`, pending audit rows: HEAD requests with the rules' credentials). Held by a live process
      // (a daemon), it only reads: that process settled the state when it opened it.
      const runs = yield* Effect.flatMap(Runner, (runner) =>
        Effect.zipRight(runner.recover, query)).pipe(
          Effect.provide(Daemon.servicesWith(Purger.Default).pipe(Layer.provide(Settings.layer(settings)))),
          Effect.catchTag("StateError", (e) =>
            e.holder === undefined
              ? Effect.fail(e)
              : Effect.zipRight(
                Console.error(`note: ${e.line}; showing the runs it has recorded so far`),
                Effect.provide(query, State.layerReadonly(settings.state))
              )),
          Effect.catchTag("StateError", (e) =>
            Effect.zipRight(Console.error(e.line), new ExitCode({ code: 2 })))
        )
      yield* printRuns(args.json, runs)
    }).pipe(Effect.provide(Logging.layer(args.logFormat)))
).pipe(Command.withDescription("Show recent runs from the state database."))
