/**
 * What the subcommands share: the `--config`, `--json` and `--log-format` options, loading the configuration
 * (problems printed, exit 2), exit codes and plain-text tables.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Config from "../Config.js"
import type { LogFormat } from "../Logging.js"

/** Ends the process with this code (after the message, if any, was printed). */
export class ExitCode extends Schema.TaggedError<ExitCode>()("ExitCode", { code: Schema.Number }) {}

export const configOption = Options.file("config", { exists: "yes" }).pipe(
  Options.withAlias("c"),
  Options.withDescription("the retention configuration (YAML or JSON)")
)

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("print JSON instead of a table"))

/** An invalid value as @effect/cli reports it (exit 2); the text is what the user sees. */
export const invalidArgument = (text: string) => ValidationError.invalidValue(HelpDoc.p(text))

/** One of `choices`; a wrong value is our sentence naming the flag and what it accepts. */
export const choiceOption = <const A extends string>(name: string, choices: ReadonlyArray<A>) =>
  Options.text(name).pipe(Options.mapEffect((v) =>
    (choices as ReadonlyArray<string>).includes(v)
      ? Effect.succeed(v as A)
      : Effect.fail(invalidArgument(`--${name}: expected one of ${choices.join(", ")}, got ${JSON.stringify(v)}`))
  ))

/** A whole number of at least `min`; a wrong value is our sentence naming the flag. */
export const intOption = (name: string, min: number) =>
  Options.text(name).pipe(Options.mapEffect((v) => {
    const n = /^[+-]?\d+$/.test(v.trim()) ? Number(v) : Number.NaN
    return Number.isSafeInteger(n) && n >= min
      ? Effect.succeed(n)
      : Effect.fail(invalidArgument(`--${name}: expected a whole number of at least ${min}, got ${JSON.stringify(v)}`))
  }))

export const logFormatOption = choiceOption("log-format", ["auto", "json", "pretty"] as const).pipe(
  Options.withDefault("auto" as LogFormat),
  Options.withDescription(
    "log lines (on stderr): json, pretty, or auto (json unless stderr is a terminal; the default)"
  )
)

/**
 * Loads the configuration; on problems prints them to stderr and exits with code 2. Warnings go to the log (commands
 * with `--log-format`) or to stderr. Config.ts (and the YAML parser, croner) is imported here, when a command reads a
 * configuration, so that `purge` and `--help`, which share this file, never load it.
 */
export const loadConfig = (
  path: string,
  options: { readonly log?: boolean } = {}
): Effect.Effect<Config.RetentionConfig, ExitCode, FileSystem.FileSystem> =>
  Effect.promise(() => import("../Config.js")).pipe(
    Effect.flatMap((Config) => Config.load(path)),
    Effect.tap((config) =>
      Effect.forEach(
        config.warnings,
        (w) => options.log === true ? Effect.logWarning(w) : Console.error(`warning: ${w}`)
      )
    ),
    Effect.catchTag(
      "ConfigError",
      (e) =>
        Effect.zipRight(
          Console.error(`${e.message}\nthe configuration is not valid; nothing was started`),
          new ExitCode({ code: 2 })
        )
    )
  )

let signal: "SIGINT" | "SIGTERM" | undefined
let leftUndone = false

/** Remembers which signal (SIGINT or SIGTERM) interrupted the process, for {@link teardown}. Call once, at start. */
export const recordSignals = (): void => {
  for (const s of ["SIGINT", "SIGTERM"] as const) process.once(s, () => (signal ??= s))
}

/**
 * Called by a command whose interruption leaves work undone (`purge` stopped before everything it matched was
 * deleted): the process then exits 130 (SIGINT) or 143 (SIGTERM), as a shell reports a process killed by that
 * signal, or 1 if the interruption came from elsewhere.
 */
export const markLeftUndone = (): void => {
  leftUndone = true
}

/**
 * For `NodeRuntime.runMain`: an `ExitCode` failure gives its code, an @effect/cli validation error 2, interruption
 * (SIGTERM/SIGINT) 0 (the daemon's clean stop), or 130/143/1 if the command marked work left undone
 * ({@link markLeftUndone}), other failures 1.
 */
export const teardown = <E, A>(exit: Exit.Exit<A, E>, onExit: (code: number) => void) => {
  if (Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause) && leftUndone) {
    return onExit(signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 1)
  }
  if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return onExit(0)
  const code = Option.match(Cause.failureOption(exit.cause), {
    onNone: () => 1,
    // @effect/cli argument errors (unknown flag, missing or invalid value) are bad arguments: exit 2.
    onSome: (e) => (e instanceof ExitCode ? e.code : ValidationError.isValidationError(e) ? 2 : 1)
  })
  // ExitCode and validation errors were explained to the user already; anything else is shown here (bin.ts turns
  // off runMain's own error report, which would log every ExitCode as an error).
  const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
  if (!(failure instanceof ExitCode) && !ValidationError.isValidationError(failure)) {
    process.stderr.write(Cause.pretty(exit.cause) + "\n")
  }
  onExit(code)
}

// ---------------------------------------------------------------------------------------------------------------
// output
// ---------------------------------------------------------------------------------------------------------------

/** A plain-text table; numbers right-aligned. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string | number>>): string => {
  const cells = [header, ...rows.map((r) => r.map(String))]
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)))
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === "number"))
  const line = (r: ReadonlyArray<string>) =>
    r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...cells.slice(1).map(line)].join("\n")
}

export const bytes = (n: number): string => {
  if (n < 1024) return `${n} B`
  const units = ["KiB", "MiB", "GiB", "TiB"]
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`
}

export const printJson = (value: unknown) => Console.log(JSON.stringify(value, null, 2))
