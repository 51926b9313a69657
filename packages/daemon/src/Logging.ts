/**
 * Log output: JSON lines for machines, readable lines on a terminal. Logs go to stderr so that `--json` output on
 * stdout stays parseable. Rule and bucket are log annotations (see Runner and Scheduler); secrets are never logged.
 */
import * as Duration from "effect/Duration"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"

export type LogFormat = "auto" | "json" | "pretty"

/** `auto`: JSON unless stderr is a terminal. */
export const resolve = (format: LogFormat): "json" | "pretty" =>
  format === "auto" ? (process.stderr.isTTY ? "pretty" : "json") : format

/**
 * The cluster engine annotates some of its own lines with `runner` as an address object, over ours: shown as
 * `HOST:PORT` like every other line of the replica.
 */
const runnerAsText = <O>(logger: Logger.Logger<unknown, O>): Logger.Logger<unknown, O> =>
  Logger.mapInputOptions(logger, (options) => {
    const runner = HashMap.get(options.annotations, "runner")
    if (Option.isNone(runner) || typeof runner.value !== "object" || runner.value === null) return options
    const { host, port } = runner.value as { readonly host?: unknown; readonly port?: unknown }
    if (typeof host !== "string" || typeof port !== "number") return options
    return { ...options, annotations: HashMap.set(options.annotations, "runner", `${host}:${port}`) }
  })

export const layer = (format: LogFormat): Layer.Layer<never> =>
  Logger.replace(
    Logger.defaultLogger,
    resolve(format) === "json"
      ? Logger.withConsoleError(runnerAsText(Logger.jsonLogger))
      // NO_COLOR (https://no-color.org): no escapes, terminal or not.
      : runnerAsText(
        Logger.prettyLogger({ stderr: true, colors: (process.env["NO_COLOR"] ?? "") === "" ? "auto" : false })
      )
  )

const durationUnits: ReadonlyArray<readonly [string, number]> = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1000],
  ["ms", 1]
]

/** A duration as people write it (and as the configuration takes it): `5s`, `2m30s`, `30d`, `250ms`. */
export const formatDuration = (input: Duration.DurationInput): string => {
  let ms = Math.round(Duration.toMillis(Duration.decode(input)))
  if (!Number.isFinite(ms)) return "forever"
  if (ms <= 0) return "0s"
  let out = ""
  for (const [unit, size] of durationUnits) {
    if (ms >= size) {
      out += `${Math.floor(ms / size)}${unit}`
      ms %= size
    }
  }
  return out
}
