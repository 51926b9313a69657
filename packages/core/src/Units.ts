/**
 * The one reading of durations, instants and sizes written as text, shared by the library (`Deletion.purge`'s
 * `olderThan`/`newerThan` given as strings), the daemon's YAML rules and the `cos-retention` CLI, so that `30d`,
 * `7 days` and `1h30m` mean the same everywhere.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"

const unitMillis: ReadonlyArray<readonly [ReadonlyArray<string>, number]> = [
  [["ms", "milli", "millis", "millisecond", "milliseconds"], 1],
  [["s", "sec", "secs", "second", "seconds"], 1000],
  [["m", "min", "mins", "minute", "minutes"], 60_000],
  [["h", "hr", "hrs", "hour", "hours"], 3_600_000],
  [["d", "day", "days"], 86_400_000],
  [["w", "week", "weeks"], 604_800_000]
]
const units = new Map(unitMillis.flatMap(([names, ms]) => names.map((n) => [n, ms] as const)))

/**
 * What {@link parseDuration} accepts, for error messages.
 *
 * @since 0.2.0
 */
export const durationExamples = "30d, 12h, 90m, 45s, 2w, 1h30m, 1.5h, 7 days"

/**
 * A duration as text, in milliseconds (rounded), or undefined: one or more `<number><unit>` parts, spaces allowed
 * between them (`30d`, `1h30m`, `1.5h`, `7 days`, `2 weeks 3 days`), units `ms`, `s`, `m`, `h`, `d`, `w` or their
 * English names (`seconds`, `minutes`, `hours`, `days`, `weeks`, singular or plural). Lower case only (`M` could be
 * read as months). Never negative.
 *
 * @since 0.2.0
 */
export const parseDuration = (text: string): number | undefined => {
  const s = text.trim()
  if (s === "") return undefined
  const part = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/y
  let total = 0
  let at = 0
  while (at < s.length) {
    part.lastIndex = at
    const m = part.exec(s)
    if (m === null) return undefined
    const ms = units.get(m[2]!)
    if (ms === undefined) return undefined
    total += Number(m[1]) * ms
    at = part.lastIndex
  }
  return Number.isFinite(total) ? Math.round(total) : undefined
}

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate()

/**
 * What {@link parseInstant} accepts, for error messages.
 *
 * @since 0.2.0
 */
export const instantExamples = "2026-01-31 (midnight UTC), 2026-01-31T08:00:00Z, 2026-01-31T08:00:00+08:00"

/**
 * An absolute date or date-time: `YYYY-MM-DD` (midnight UTC), or `YYYY-MM-DDTHH:MM[:SS[.fff]]` with `Z` or an offset
 * (`+08:00`, `-0500`). A date-time without a zone is refused as ambiguous (it would depend on the machine's zone).
 * The reason is a sentence; `undefined` when the text does not look like a date at all.
 *
 * @since 0.2.0
 */
export const parseInstant = (text: string): Either.Either<Date, string> | undefined => {
  const s = text.trim()
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|z|[+-]\d{2}:?\d{2})?)?$/
    .exec(s)
  if (m === null) {
    return /^\d{4}-\d{2}-\d{2}/.test(s)
      ? Either.left(`"${s}" is not a date (${instantExamples})`)
      : undefined
  }
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) {
    return Either.left(`"${s}" is not a calendar date`)
  }
  if (m[4] === undefined) return Either.right(new Date(Date.UTC(year, month - 1, day)))
  const zone = m[8]
  if (zone === undefined) {
    return Either.left(
      `"${s}" has no time zone, so it is ambiguous: add Z for UTC or an offset such as +08:00`
    )
  }
  const [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)]
  if (hour > 23 || minute > 59 || second > 59) return Either.left(`"${s}" is not a time of day`)
  let offset = 0
  if (zone !== "Z" && zone !== "z") {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!
    const [oh, om] = [Number(z[2]), Number(z[3])]
    if (oh > 14 || om > 59) return Either.left(`"${s}" has an offset out of range (-14:00 to +14:00)`)
    offset = (z[1] === "-" ? -1 : 1) * (oh * 60 + om) * 60_000
  }
  const millis = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000)
  return Either.right(new Date(Date.UTC(year, month - 1, day, hour, minute, second, millis) - offset))
}

/**
 * An age bound (`olderThan`, `newerThan`): a duration counted back from the start of the run, or an absolute
 * instant; else the sentence saying what is accepted.
 *
 * @since 0.2.0
 */
export const parseAge = (text: string): Either.Either<Duration.Duration | Date, string> => {
  const ms = parseDuration(text)
  if (ms !== undefined) return Either.right(Duration.millis(ms))
  const instant = parseInstant(text)
  if (instant !== undefined) return instant
  return Either.left(`"${text}" is neither a duration (${durationExamples}) nor a date (${instantExamples})`)
}

/**
 * The instant an age bound stands for at `now` (ms), or undefined when the value is none of the accepted forms (a
 * string is read by {@link parseAge}).
 *
 * @since 0.2.0
 */
export const boundAt = (value: Duration.DurationInput | Date | string, now: number): number | undefined => {
  if (value instanceof Date) {
    const t = value.getTime()
    return Number.isNaN(t) ? undefined : t
  }
  if (typeof value === "string") {
    const parsed = parseAge(value)
    if (Either.isLeft(parsed)) return undefined
    return parsed.right instanceof Date ? parsed.right.getTime() : now - Duration.toMillis(parsed.right)
  }
  const d = Duration.decodeUnknown(value)
  if (d._tag === "None") return undefined
  const ms = Duration.toMillis(d.value)
  return Number.isFinite(ms) && ms >= 0 ? now - ms : undefined
}

/**
 * Why an age window selects nothing (`newerThan`'s bound not before `olderThan`'s), naming the two fields as the
 * caller spells them; undefined when it can match (or either bound is absent).
 *
 * @since 0.2.0
 */
export const emptyWindow = (
  bounds: { readonly olderThan: number | undefined; readonly newerThan: number | undefined },
  names: { readonly olderThan: string; readonly newerThan: string }
): string | undefined =>
  bounds.olderThan !== undefined && bounds.newerThan !== undefined && bounds.newerThan >= bounds.olderThan
    ? `${names.newerThan} must reach further back than ${names.olderThan}: keys must be modified after ` +
      `${new Date(bounds.newerThan).toISOString()} (${names.newerThan}) and before ` +
      `${new Date(bounds.olderThan).toISOString()} (${names.olderThan}), so nothing could match`
    : undefined

const sizeUnits: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4
}

/**
 * What {@link parseSize} accepts, for error messages.
 *
 * @since 0.2.0
 */
export const sizeExamples = "a byte count (1048576) or a size: 10KB, 5MB, 1.5GB, 5MiB"

/**
 * `1024`, `10KB`, `5MiB`, `1.5GB`: a whole number of bytes (KB, MB, GB, TB decimal; KiB, MiB, GiB, TiB binary; any
 * case), or undefined. Never negative.
 *
 * @since 0.2.0
 */
export const parseSize = (value: number | string): number | undefined => {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim())
  if (m === null) return undefined
  const unit = sizeUnits[m[2]!.toLowerCase()]
  if (unit === undefined) return undefined
  const n = Math.round(Number(m[1]) * unit)
  return Number.isSafeInteger(n) ? n : undefined
}
