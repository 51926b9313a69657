/**
 * `cos-retention audit --config F [--key K | --prefix P] [--rule R] [--run N] [--since T] [--until T]
 * [--format table|jsonl|csv] [--limit N]`: every deletion the state database recorded, one record per deleted key or
 * version, streamed (an export of millions of rows holds one page of 1000 in memory).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as NodeFs from "node:fs"
import * as AuditQuery from "../AuditQuery.js"
import { choiceOption, configOption, ExitCode, intOption, loadConfig } from "./common.js"
import * as verbatim from "./verbatim.js"

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/**
 * An instant for `--since` / `--until`: a date (`2024-01-31`, midnight UTC), a date and time with `Z` or an offset
 * (`2024-01-31T08:00:00+08:00`), or a duration back from now (`7d`, `12h`). A date and time without a zone is refused
 * (it would depend on the machine's zone).
 */
export const parseInstant = (text: string, now: number): number | undefined => {
  const d = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(text)
  if (d !== null) return now - Number(d[1]) * units[d[2]!]!
  if (
    /^\d{4}-\d{2}-\d{2}$/.test(text) ||
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)
  ) {
    const ms = new Date(text).getTime()
    return Number.isNaN(ms) ? undefined : ms
  }
  return undefined
}

const instantHelp = "a date (2024-01-31, UTC), a date and time with Z or an offset (2024-01-31T08:00:00+08:00), or a " +
  "duration back from now (7d, 12h, 90m, 2w)"

/** Exit 2 with a message on stderr. */
const usageError = (message: string) =>
  Effect.zipRight(Console.error(`cos-retention audit: ${message}`), new ExitCode({ code: 2 }))

/** Writes to stdout, waiting for it to drain when the reader is slower (a pipe to `less`, a slow disk). */
const write = (text: string) =>
  Effect.async<void>((resume) => {
    if (process.stdout.write(text)) resume(Effect.void)
    else process.stdout.once("drain", () => resume(Effect.void))
  })

const formats = ["table", "jsonl", "csv"] as const

const pad = (text: string, width: number) => text.padEnd(width)

export const audit = Command.make(
  "audit",
  {
    config: configOption,
    key: verbatim.text("key").pipe(
      Options.withDescription("only this key, exactly (byte for byte: no trimming, case-sensitive)"),
      Options.optional
    ),
    prefix: verbatim.text("prefix").pipe(
      Options.withDescription("only keys starting with this (a plain string prefix, case-sensitive)"),
      Options.optional
    ),
    rule: verbatim.text("rule").pipe(Options.withDescription("only deletions by this rule"), Options.optional),
    run: intOption("run", 1).pipe(Options.withDescription("only deletions of this run id"), Options.optional),
    since: Options.text("since").pipe(
      Options.withDescription(`only deletions at or after this instant: ${instantHelp}`),
      Options.optional
    ),
    until: Options.text("until").pipe(
      Options.withDescription(`only deletions at or before this instant (same forms as --since)`),
      Options.optional
    ),
    format: choiceOption("format", formats).pipe(
      Options.withDescription("table (for people), jsonl (one JSON object per line) or csv (with a header line)"),
      Options.withDefault("table" as const)
    ),
    limit: intOption("limit", 0).pipe(
      Options.withDescription("at most N records (N >= 0)"),
      Options.optional
    )
  },
  (args) =>
    Effect.gen(function*() {
      // Selectors byte for byte (@effect/cli trims some spellings of a value).
      const key = Option.getOrUndefined(args.key)
      const prefix = Option.getOrUndefined(args.prefix)
      const rule = Option.getOrUndefined(args.rule)
      if (key !== undefined && prefix !== undefined) {
        return yield* usageError("--key and --prefix cannot be combined: --key is one exact key, --prefix a range")
      }
      if (key === "") return yield* usageError("--key: expected a key (an exact, non-empty key)")
      const limit = Option.getOrUndefined(args.limit)
      const runId = Option.getOrUndefined(args.run)
      const now = Date.now()
      const instant = (name: string, value: Option.Option<string>) =>
        Option.match(value, {
          onNone: () => Effect.succeed(undefined),
          onSome: (text) => {
            const ms = parseInstant(text, now)
            return ms === undefined
              ? usageError(`--${name}: expected ${instantHelp}; got "${text}"`)
              : Effect.succeed(ms)
          }
        })
      const since = yield* instant("since", args.since)
      const until = yield* instant("until", args.until)
      if (since !== undefined && until !== undefined && since > until) {
        return yield* usageError(
          `--since (${new Date(since).toISOString()}) is after --until (${new Date(until).toISOString()}): ` +
            `no deletion can be in that window`
        )
      }

      const settings = yield* loadConfig(args.config)
      if (settings.state === ":memory:" || !NodeFs.existsSync(settings.state)) {
        yield* Console.error(`no state database at ${settings.state}: no deletion has been recorded`)
        if (args.format === "csv") yield* write(AuditQuery.csvHeader.join(",") + "\n")
        return
      }
      const records = AuditQuery.query({ key, prefix, rule, runId, since, until, limit })
      const ruleWidth = Math.max(4, ...settings.rules.map((r) => r.name.length))
      const tableLine = (r: AuditQuery.AuditRecord) =>
        [
          pad(r.time ?? "(pending)", 24),
          String(r.run).padStart(6),
          pad(r.rule, ruleWidth),
          pad(r.outcome, 21),
          (r.size === null ? "" : String(r.size)).padStart(12),
          pad(r.versionId ?? "", 12),
          AuditQuery.displayKey(r.key)
        ].join("  ")
      const header = args.format === "csv"
        ? AuditQuery.csvHeader.join(",") + "\n"
        : args.format === "table"
        ? [
          "time".padEnd(24),
          "run".padStart(6),
          pad("rule", ruleWidth),
          pad("outcome", 21),
          "size".padStart(12),
          pad(
            "version",
            12
          ),
          "key"
        ].join("  ") + "\n"
        : ""
      const line = args.format === "csv"
        ? AuditQuery.csvLine
        : args.format === "jsonl"
        ? AuditQuery.jsonLine
        : tableLine
      if (header !== "") yield* write(header)
      let count = 0
      yield* records.pipe(
        Stream.runForEachChunk((chunk) => {
          count += chunk.length
          let text = ""
          for (const r of chunk) text += line(r) + "\n"
          return write(text)
        }),
        Effect.provide(Layer.orDie(SqliteClient.layer({ filename: settings.state, readonly: true, disableWAL: true }))),
        Effect.catchTag("SqlError", (e) =>
          Effect.zipRight(
            Console.error(`cos-retention audit: cannot read the state database ${settings.state}: ${e.message}`),
            new ExitCode({ code: 1 })
          ))
      )
      if (args.format === "table" && count === 0) yield* Console.error("no deletion recorded matches")
    })
).pipe(Command.withDescription(
  "Every deletion recorded in the state database, one record per deleted key or version (key, versionId, uploadId, " +
    "size, rule, run, time, outcome, bucket), oldest first; streamed, so exports of any size hold little memory."
))
