/**
 * `cos-retention plan --config F [--json]`: a dry run of every enabled rule (or --rule NAME): what each would delete
 * now (keys, bytes, a sample), and whether COS lifecycle could do the same job server-side. Sends no delete request
 * and writes nothing to the state database. `plan --lifecycle` prints, instead, the lifecycle configuration (XML) of
 * the rules that lifecycle could run, without contacting COS.
 */
import type { Deletion } from "@effect-cos/core"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Rule } from "../Config.js"
import * as Display from "../Display.js"
import * as Lifecycle from "../Lifecycle.js"
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
import { ruleOption, selectRules } from "./once.js"

export interface PlanRow {
  readonly rule: string
  readonly bucket: string
  readonly prefix: string
  readonly listed: number
  readonly matched: number
  readonly matchedBytes: number
  readonly sample: ReadonlyArray<string>
  readonly notes: ReadonlyArray<string>
  /** Whether COS lifecycle could do this rule's job server-side: the equivalent action, or why not. */
  readonly lifecycle: { readonly eligible: true; readonly action: string } | {
    readonly eligible: false
    readonly reasons: ReadonlyArray<string>
  }
  readonly error?: string | undefined
}

const lifecycleOf = (rule: Rule): PlanRow["lifecycle"] => {
  const v = Lifecycle.verdict(rule)
  return v.eligible ? { eligible: true, action: v.summary } : { eligible: false, reasons: v.reasons }
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
            const base = { rule: rule.name, bucket: rule.bucket, prefix: rule.prefix, lifecycle: lifecycleOf(rule) }
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

export const renderPlan = (rows: ReadonlyArray<PlanRow>): string => {
  const lines = table(
    ["rule", "bucket/prefix", "listed", "matched", "bytes", "lifecycle", "sample"],
    rows.map((r) => [
      r.rule,
      `${r.bucket}/${r.prefix === "" ? "" : Display.displayKey(r.prefix)}`,
      r.listed,
      r.matched,
      bytes(r.matchedBytes),
      r.lifecycle.eligible ? "could" : "no",
      r.error !== undefined
        ? `error: ${r.error}`
        : r.sample.slice(0, 3).map(Display.displayKey).join(", ") + (r.sample.length > 3 ? ", ..." : "")
    ])
  )
  const could = rows.filter((r) => r.lifecycle.eligible)
  return could.length === 0 ? lines : [
    lines,
    "",
    ...could.map((r) =>
      `${r.rule}: COS lifecycle could do this server-side (${
        r.lifecycle.eligible ? r.lifecycle.action : ""
      }); see plan --lifecycle`
    )
  ].join("\n")
}

/**
 * `plan --lifecycle`: the configuration on stdout, what lifecycle cannot do on stderr. A lifecycle configuration
 * belongs to one bucket and replaces the bucket's whole configuration when PUT.
 */
const printLifecycle = (rules: ReadonlyArray<Rule>) =>
  Effect.gen(function*() {
    const eligible: Array<{ readonly rule: Rule; readonly action: Lifecycle.Action }> = []
    for (const rule of rules) {
      const v = Lifecycle.verdict(rule)
      if (v.eligible) eligible.push({ rule, action: v.action })
      else yield* Console.error(`${rule.name}: not expressible as COS lifecycle: ${v.reasons.join("; ")}`)
    }
    if (eligible.length === 0) {
      yield* Console.error("no selected rule can be done by COS lifecycle; nothing printed")
      return yield* new ExitCode({ code: 1 })
    }
    const buckets = Array.from(new Set(eligible.map((e) => e.rule.bucket)))
    if (buckets.length > 1) {
      yield* Console.error(
        `plan --lifecycle: the rules lifecycle could run are on ${buckets.length} buckets (${buckets.join(", ")}), ` +
          `and a lifecycle configuration belongs to one bucket: choose one rule with --rule NAME`
      )
      return yield* new ExitCode({ code: 2 })
    }
    yield* Console.log(
      Lifecycle.configurationXml(eligible.map((e) => ({ name: e.rule.name, prefix: e.rule.prefix, action: e.action })))
        .trimEnd()
    )
    yield* Console.error(
      `lifecycle configuration for ${buckets[0]} (${eligible.length} rule(s)); PUT /?lifecycle replaces the bucket's ` +
        `whole lifecycle configuration, so merge it with any rules the bucket already has`
    )
  })

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
    lifecycle: Options.boolean("lifecycle").pipe(
      Options.withDescription(
        "print the COS lifecycle configuration (XML) of the rules lifecycle could run server-side (a prefix and an " +
          "age in whole days; no globs, keepLatest, size bounds, newerThan or caps), instead of planning; contacts no COS"
      )
    ),
    logFormat: logFormatOption
  },
  (args) =>
    Effect.gen(function*() {
      const settings = yield* loadConfig(args.config, { log: true })
      const rules = yield* selectRules(settings, args.rule)
      if (args.lifecycle) return yield* printLifecycle(rules)
      const rows = yield* planRules(rules, args.sample).pipe(Effect.provide(Purger.Default))
      yield* args.json ? printJson(rows) : Console.log(renderPlan(rows))
      if (rows.some((r) => r.error !== undefined)) return yield* new ExitCode({ code: 1 })
    }).pipe(Effect.provide(Logging.layer(args.logFormat)))
).pipe(Command.withDescription(
  "Dry-run every enabled rule: what would be deleted now (keys, bytes, a sample), and whether COS lifecycle could " +
    "do it server-side; --lifecycle prints the equivalent lifecycle configuration."
))
