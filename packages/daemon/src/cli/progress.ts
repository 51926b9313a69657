/**
 * Progress of `cos-retention purge` on stderr: a rewritten line on a terminal, or with `--progress json` one JSON
 * line every few seconds (for CI jobs and log collectors, which see a long purge is alive). The summary stays on
 * stdout either way.
 */
import type { Deletion } from "@effect-cos/core"
import * as Options from "@effect/cli/Options"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { choiceOption } from "./common.js"

export type ProgressMode = "auto" | "json" | "off"

export const progressOption = choiceOption("progress", ["auto", "json", "off"] as const).pipe(
  Options.withDescription(
    "progress on stderr: auto (a live line on a terminal, nothing otherwise), json (one JSON line every 5 s: listed," +
      " matched, deleted, failed, keysPerSecond, elapsedMs), off"
  ),
  Options.withDefault("auto" as ProgressMode)
)

/**
 * Milliseconds between JSON progress lines: 5 s, or `COS_RETENTION_PROGRESS_INTERVAL_MS` (for tests and impatient
 * log collectors; at least 100).
 */
const jsonInterval = (): Duration.Duration => {
  const raw = process.env.COS_RETENTION_PROGRESS_INTERVAL_MS
  const ms = raw === undefined ? NaN : Number(raw)
  return Duration.millis(Number.isFinite(ms) && ms >= 100 ? ms : 5000)
}

const rate = (n: number, ms: number) => (ms > 0 ? Math.round(n / ms * 1000) : 0)

/** One JSON object per line, as `--progress json` prints it. */
export const jsonLine = (p: Deletion.Progress): string =>
  JSON.stringify({
    listed: p.listed,
    matched: p.matched,
    deleted: p.deleted,
    failed: p.failed,
    throttled: p.throttled,
    keysPerSecond: rate(p.deleted, p.elapsedMs),
    elapsedMs: Math.round(p.elapsedMs)
  })

const terminalLine = (p: Deletion.Progress) =>
  `listed ${p.listed}  matched ${p.matched}  deleted ${p.deleted}  ` +
  `${rate(p.deleted, p.elapsedMs)}/s  failed ${p.failed}  throttled ${p.throttled}`

export interface ProgressReporter {
  /** The engine's `onProgress` and `progressInterval`, to spread into its options. */
  readonly options: Pick<Deletion.PurgeOptions, "onProgress" | "progressInterval">
  /** After a run: clears the terminal line, if one was drawn. */
  readonly done: Effect.Effect<void>
}

/** The reporter for a mode; `terminal` says whether stdin and stderr are a terminal. */
export const reporter = (mode: ProgressMode, terminal: boolean): ProgressReporter => {
  if (mode === "json") {
    return {
      options: {
        onProgress: (p) => Effect.sync(() => process.stderr.write(jsonLine(p) + "\n")),
        progressInterval: jsonInterval()
      },
      done: Effect.void
    }
  }
  if (mode === "auto" && terminal) {
    return {
      options: {
        onProgress: (p) => Effect.sync(() => process.stderr.write(`\r\x1b[2K${terminalLine(p)}`)),
        progressInterval: "250 millis"
      },
      done: Effect.sync(() => process.stderr.write("\r\x1b[2K"))
    }
  }
  return { options: {}, done: Effect.void }
}
