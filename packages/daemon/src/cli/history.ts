/**
 * `cos-retention history --config F [--limit N] [--rule NAME] [--json]`: recent runs from the state database.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import { runJson } from "../HttpStatus.js"
import { State } from "../State.js"
import { bytes, configOption, jsonOption, loadConfig, printJson, table } from "./common.js"
import { ruleOption } from "./once.js"

const time = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString().replace(/\.\d+Z$/, "Z"))

export const history = Command.make(
  "history",
  {
    config: configOption,
    limit: Options.integer("limit").pipe(Options.withDefault(20), Options.withDescription("runs to show")),
    rule: ruleOption,
    json: jsonOption
  },
  (args) =>
    Effect.gen(function*() {
      const settings = yield* loadConfig(args.config)
      const store = settings.store
      if (store._tag === "sqlite" && store.filename !== ":memory:" && !NodeFs.existsSync(store.filename)) {
        yield* Console.log(`no state database at ${settings.state} yet: no run has been recorded`)
        return
      }
      const runs = yield* Effect.flatMap(State, (s) =>
        s.recentRuns({ limit: args.limit, rule: Option.getOrUndefined(args.rule) })).pipe(
          Effect.provide(State.layerStore(store))
        )
      if (args.json) {
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
).pipe(Command.withDescription("Show recent runs from the state database."))
