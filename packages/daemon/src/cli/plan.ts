/**
 * `cos-retention plan --config F [--json]`: a dry run of every enabled rule (or --rule NAME): what each would delete
 * now (keys, bytes, a sample). Sends no delete request and writes nothing to the state database.
 */
import type { Deletion } from "@effect-cos/core"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Rule } from "../Config.js"
import * as Logging from "../Logging.js"
import { Purger } from "../Purger.js"
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

export interface PlanRow {
  readonly rule: string
  readonly bucket: string
  readonly prefix: string
  readonly listed: number
  readonly matched: number
  readonly matchedBytes: number
  readonly sample: ReadonlyArray<string>
  readonly notes: ReadonlyArray<string>
  readonly error?: string | undefined
}

/** Plans rules with the Purger in context. */
export const planRules = (rules: ReadonlyArray<Rule>, sampleSize: number) =>
  Effect.flatMap(
    Purger,
    (purger) =>
      Effect.forEach(rules, (rule) =>
        purger.purge({ rule, dryRun: true, sampleSize }).pipe(
          Effect.either,
          Effect.map((r): PlanRow => {
            const base = { rule: rule.name, bucket: rule.bucket, prefix: rule.prefix }
            return Either.match(r, {
              onLeft: (e) => ({
                ...base,
                listed: 0,
                matched: 0,
                matchedBytes: 0,
                sample: [],
                notes: [],
                error: e.message
              }),
              onRight: (s: Deletion.Summary) => ({
                ...base,
                listed: s.listed,
                matched: s.matched,
                matchedBytes: s.matchedBytes,
                sample: s.sample,
                notes: s.notes
              })
            })
          })
        ))
  )

export const renderPlan = (rows: ReadonlyArray<PlanRow>): string =>
  table(
    ["rule", "bucket/prefix", "listed", "matched", "bytes", "sample"],
    rows.map((r) => [
      r.rule,
      `${r.bucket}/${r.prefix}`,
      r.listed,
      r.matched,
      bytes(r.matchedBytes),
      r.error !== undefined
        ? `error: ${r.error}`
        : r.sample.slice(0, 3).join(", ") + (r.sample.length > 3 ? ", ..." : "")
    ])
  )

export const plan = Command.make(
  "plan",
  {
    config: configOption,
    rule: ruleOption,
    json: jsonOption,
    sample: intOption("sample", 0).pipe(
      Options.withDefault(10),
      Options.withDescription("keys in each sample (default 10)")
    ),
    logFormat: logFormatOption
  },
  (args) =>
    Effect.gen(function*() {
      const settings = yield* loadConfig(args.config, { log: true })
      const rules = Option.match(args.rule, {
        onNone: () => settings.rules.filter((r) => r.enabled),
        onSome: (name) => settings.rules.filter((r) => r.name === name)
      })
      if (Option.isSome(args.rule) && rules.length === 0) {
        yield* Console.error(
          `no rule named ${JSON.stringify(args.rule.value)} (rules: ${settings.rules.map((r) => r.name).join(", ")})`
        )
        return yield* new ExitCode({ code: 2 })
      }
      const rows = yield* planRules(rules, args.sample).pipe(Effect.provide(Purger.Default))
      yield* args.json ? printJson(rows) : Console.log(renderPlan(rows))
      if (rows.some((r) => r.error !== undefined)) return yield* new ExitCode({ code: 1 })
    }).pipe(Effect.provide(Logging.layer(args.logFormat)))
).pipe(Command.withDescription("Dry-run every enabled rule: what would be deleted now (keys, bytes, a sample)."))
