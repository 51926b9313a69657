/**
 * `cos-retention once --config F [--rule NAME] [--json]`: every enabled rule (or the one named) now, one after the
 * other, recorded in the state database like scheduled runs. Exit 1 if any run failed, else 3 if a rule's cap
 * (`maxDeletes`, `maxDeleteSize`) stopped a run (as `purge` does: what was matched is not all deleted), else 0.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { type RetentionConfig, type Rule, Settings } from "../Config.js"
import * as Daemon from "../Daemon.js"
import { runJson } from "../HttpStatus.js"
import * as Logging from "../Logging.js"
import { Purger } from "../Purger.js"
import { capText, Runner } from "../Runner.js"
import * as Tracing from "../Tracing.js"
import { bytes, configOption, ExitCode, jsonOption, loadConfig, logFormatOption, printJson, table } from "./common.js"
import * as verbatim from "./verbatim.js"

export const ruleOption = verbatim.text("rule").pipe(
  Options.withDescription("only this rule (even if disabled)"),
  Options.optional
)

/**
 * The rule `--rule` names (even if disabled), or every enabled rule without it. A name no rule has is refused: the
 * rules there are go to stderr, and the command exits 2.
 */
export const selectRules = (
  settings: RetentionConfig,
  rule: Option.Option<string>
): Effect.Effect<Array<Rule>, ExitCode> => {
  const rules = Option.match(rule, {
    onNone: () => settings.rules.filter((r) => r.enabled),
    onSome: (name) => settings.rules.filter((r) => r.name === name)
  })
  if (Option.isSome(rule) && rules.length === 0) {
    return Effect.zipRight(
      Console.error(
        `no rule named ${JSON.stringify(rule.value)} (rules: ${settings.rules.map((r) => r.name).join(", ")})`
      ),
      new ExitCode({ code: 2 })
    )
  }
  return Effect.succeed(rules)
}

export const once = Command.make(
  "once",
  {
    config: configOption,
    rule: ruleOption,
    json: jsonOption,
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("plan only: delete nothing")),
    logFormat: logFormatOption
  },
  (args) =>
    Effect.gen(function*() {
      const settings = yield* loadConfig(args.config, { log: true })
      const rules = yield* selectRules(settings, args.rule)
      // the state is locked and opened, then settled (runs left by a dead process, pending audit rows) before any run
      const results = yield* Effect.flatMap(Runner, (runner) =>
        Effect.zipRight(
          runner.recover,
          Effect.forEach(rules, (rule) =>
            Effect.map(
              Effect.either(runner.run(rule, { trigger: "once", dryRun: args.dryRun })),
              (r) => ({ rule, r })
            ))
        )).pipe(
          // the state lost while the runs go (its Postgres writer lock taken by another process after a restart of
          // Postgres, or the file replaced): stop, as the daemon does
          Effect.raceFirst(Daemon.watch),
          Effect.provide(Daemon.servicesWith(Purger.Default).pipe(Layer.provide(Settings.layer(settings)))),
          Effect.provide(Tracing.layer(settings.tracing)),
          Effect.catchTag("TracingConfigError", (e) =>
            Effect.zipRight(Console.error(e.message), new ExitCode({ code: 2 }))),
          Effect.catchTag("StateError", (e) =>
            Effect.zipRight(Console.error(e.line), new ExitCode({ code: 2 })))
        )
      const rows = results.map(({ r, rule }) =>
        Either.match(r, {
          onLeft: (e) => ({ rule: rule.name, status: "failed", error: e.message }),
          onRight: (o) => ({ rule: rule.name, ...runJson(o.run), summary: o.summary ?? null })
        })
      )
      if (args.json) {
        yield* printJson(rows)
      } else {
        yield* Console.log(table(
          ["rule", "status", "matched", "deleted", "bytes", "failed", "skipped", "error"],
          rows.map((row) => {
            const run = "id" in row ? row : undefined
            return [
              row.rule,
              run?.dryRun === true ? `${row.status} (dry run)` : row.status,
              run?.matched ?? 0,
              run?.deleted ?? 0,
              bytes(run?.bytes ?? 0),
              run?.failed ?? 0,
              run?.skipped ?? 0,
              row.error ?? ""
            ]
          })
        ))
      }
      if (
        rows.some((row) => row.status !== "succeeded")
      ) return yield* new ExitCode({ code: 1 })
      // a cap is not "everything matched was deleted": its own exit status, so scripts can tell
      const capped = results.flatMap(({ r, rule }) => {
        const text = Either.isRight(r) && r.right.summary !== undefined ? capText(rule, r.right.summary) : undefined
        return text === undefined ? [] : [`rule ${JSON.stringify(rule.name)} ${text}`]
      })
      if (capped.length > 0) {
        yield* Console.error(capped.join("\n"))
        return yield* new ExitCode({ code: 3 })
      }
    }).pipe(Effect.provide(Logging.layer(args.logFormat)))
).pipe(Command.withDescription(
  "Run every enabled rule (or --rule NAME) once, now. Exit 1 if any run failed, 3 if a rule's cap (maxDeletes, " +
    "maxDeleteSize) stopped a run (the rest is left in place), 2 for an invalid configuration or state."
))
