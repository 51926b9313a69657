/**
 * Log output: JSON lines for machines, readable lines on a terminal. Logs go to stderr so that `--json` output on
 * stdout stays parseable. Rule and bucket are log annotations (see Runner and Scheduler); secrets are never logged.
 */
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"

export type LogFormat = "auto" | "json" | "pretty"

/** `auto`: JSON unless stderr is a terminal. */
export const resolve = (format: LogFormat): "json" | "pretty" =>
  format === "auto" ? (process.stderr.isTTY ? "pretty" : "json") : format

export const layer = (format: LogFormat): Layer.Layer<never> =>
  Logger.replace(
    Logger.defaultLogger,
    resolve(format) === "json"
      ? Logger.withConsoleError(Logger.jsonLogger)
      : Logger.prettyLogger({ stderr: true, colors: "auto" })
  )
