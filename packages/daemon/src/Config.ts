/**
 * The retention configuration: a YAML (or JSON) file decoded with Schema. Every problem is reported with the path of
 * the offending field (`rules[2].schedule: "61 * * * *" is not a valid cron expression (...)`), all of them at once,
 * and the daemon refuses to start while there is any.
 */
import { Deletion, Units } from "@effect-cos/core"
import * as FileSystem from "@effect/platform/FileSystem"
import { Cron } from "croner"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as NodePath from "node:path"
import picomatch from "picomatch"
import * as YAML from "yaml"
import * as StateStore from "./StateStore.js"

// ---------------------------------------------------------------------------------------------------------------
// value parsers (also used by the CLI)
// ---------------------------------------------------------------------------------------------------------------

/**
 * `90m`, `12h`, `30d`, `2w`, `1h30m`, `1.5h`, `7 days`: milliseconds, or undefined. The core's one reading of
 * durations, shared with the CLI and the library (`Units.parseDuration`).
 */
export const parseDuration = Units.parseDuration

/** `1024`, `10KB`, `5MiB`, `1.5GB`: bytes, or undefined (`Units.parseSize`, shared with the CLI). */
export const parseSize = Units.parseSize

/** Why a cron expression is invalid, or undefined when croner accepts it. */
export const cronProblem = (expression: string): string | undefined => {
  try {
    // a pattern no date matches ("0 3 31 2 *": February 31st) would leave its rule never running
    return new Cron(expression, { paused: true, timezone: "UTC" }).nextRun() === null
      ? "it never fires: no date matches it"
      : undefined
  } catch (e) {
    return String((e as Error).message ?? e).replace(/^CronPattern: /, "")
  }
}

/** True when `Intl` knows the IANA time zone. */
export const isTimeZone = (zone: string): boolean => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone })
    return zone.length > 0
  } catch {
    return false
  }
}

const globProblem = (glob: string): string | undefined => {
  if (glob === "") return "an empty glob matches nothing"
  try {
    // Stricter than the engine (an unclosed bracket is an error here, not a literal), then compiled exactly as the
    // engine will match it (Deletion.globRegExp: dotfiles, dot segments and line terminators count).
    picomatch.makeRe(glob, { strictBrackets: true })
    Deletion.globRegExp(glob)
    return undefined
  } catch (e) {
    return (e as Error).message
  }
}

const regexProblem = (source: string): string | undefined => {
  try {
    new RegExp(source)
    return undefined
  } catch (e) {
    return (e as Error).message
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the file's schema
// ---------------------------------------------------------------------------------------------------------------

// exact: an absent field is absent, never `undefined`, so a bad value gets one message, not a union's two.
const opt = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

// A bare number (`olderThan: 30`) has no unit: 30 days? seconds? Refused, naming the forms that say.
const DurationText = Schema.Unknown.pipe(
  Schema.filter((s) =>
    typeof s === "number"
      ? `${s} has no unit: write a duration such as ${s}d, ${s}h or ${s}s (examples: ${Units.durationExamples})`
      : typeof s !== "string"
      ? `${JSON.stringify(s)} is not a duration (examples: ${Units.durationExamples})`
      : parseDuration(s) !== undefined ||
        (Units.parseInstant(s) !== undefined
          ? `"${s}" is a date; a rule runs on a schedule, so its ages are durations counted back from each run ` +
            `(examples: ${Units.durationExamples})`
          : `"${s}" is not a valid duration (examples: ${Units.durationExamples})`)
  )
) as unknown as Schema.Schema<string>

const SizeValue = Schema.Unknown.pipe(
  Schema.filter((v) =>
    ((typeof v === "number" || typeof v === "string") && parseSize(v) !== undefined) ||
    `${JSON.stringify(v)} is not a valid size (examples: 1024, 10KB, 5MiB, 2GB)`
  )
) as unknown as Schema.Schema<number | string>

const PositiveInt = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n >= 1) || `${n} is not a positive whole number`)
)

/** The most chunks a rule's key range is cut into (`parallelism`): more would be mostly listing overhead. */
export const maxParallelism = 64

const NonNegativeInt = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n >= 0) || `${n} is not a whole number >= 0`)
)

const Region = Schema.String.pipe(
  Schema.filter((s) => /^[a-z\d-]+$/.test(s) || `"${s}" is not a valid region (e.g. ap-beijing)`)
)

// docs/protocol.md §1: `<BucketName>-<APPID>`, name part [a-z0-9-], not starting or ending with '-'.
const Bucket = Schema.String.pipe(
  Schema.filter((s) =>
    /^[a-z\d](?:[a-z\d-]*[a-z\d])?-\d+$/.test(s) ||
    `"${s}" is not a valid bucket (expected <name>-<APPID>, e.g. examplebucket-1250000000)`
  )
)

const Endpoint = Schema.String.pipe(
  Schema.filter((s) => {
    try {
      const url = new URL(s.replace(/\{[A-Za-z]+\}/g, "x"))
      return url.protocol === "http:" || url.protocol === "https:" ||
        `"${s}" is not a valid endpoint (expected an http:// or https:// URL)`
    } catch {
      return `"${s}" is not a valid endpoint (expected an http:// or https:// URL)`
    }
  })
)

const EnvName = Schema.String.pipe(
  Schema.filter((s) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) || `"${s}" is not a valid environment variable name`)
)

const CredentialsFields = Schema.Struct({
  secretIdEnv: opt(EnvName),
  secretKeyEnv: opt(EnvName),
  securityTokenEnv: opt(EnvName),
  secretId: opt(Schema.String),
  secretKey: opt(Schema.Redacted(Schema.String)),
  securityToken: opt(Schema.Redacted(Schema.String))
})

const versionsModes: ReadonlyArray<string> = Deletion.versionsModes
const Versions = Schema.String.pipe(
  Schema.filter((s) =>
    versionsModes.includes(s) ||
    `"${s}" is not a versions mode (expected ${versionsModes.slice(0, -1).join(", ")} or ${versionsModes.at(-1)})`
  )
) as unknown as Schema.Schema<VersionsMode, string>

const Target = Schema.String.pipe(
  Schema.filter((s) =>
    s === "objects" || s === "incomplete-uploads" ||
    `"${s}" is not a target (expected objects or incomplete-uploads)`
  )
) as unknown as Schema.Schema<"objects" | "incomplete-uploads", string>

const Glob = Schema.String.pipe(
  Schema.filter((s) => {
    const problem = globProblem(s)
    return problem === undefined || `"${s}" is not a valid glob: ${problem}`
  })
)

// `include: "**/*.log"` (one string, not a list) is named as such rather than as a schema mismatch.
const GlobList = Schema.Unknown.pipe(
  Schema.filter((v) =>
    Array.isArray(v) ||
    (typeof v === "string"
      ? `expected a list of globs, got one string: write [${JSON.stringify(v)}]`
      : `expected a list of globs, got ${JSON.stringify(v)}`)
  ),
  Schema.compose(Schema.Array(Glob), { strict: false })
)

const positiveIntProblem = (n: unknown) =>
  typeof n === "number" && Number.isInteger(n) && n >= 1
    ? undefined
    : `${JSON.stringify(n)} is not a positive whole number`

// `keepLatest: 5` or `keepLatest: { count: 5, groupBy: "^backups/([^/]+)/" }`
const KeepLatest = Schema.Unknown.pipe(
  Schema.filter((v): ReadonlyArray<Schema.FilterIssue> | boolean => {
    if (typeof v === "number") {
      const problem = positiveIntProblem(v)
      return problem === undefined || [{ path: [], message: problem }]
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      return [{ path: [], message: `expected a count or { count, groupBy }, got ${JSON.stringify(v)}` }]
    }
    const out: Array<Schema.FilterIssue> = []
    const o = v as Record<string, unknown>
    for (const k of Object.keys(o)) {
      if (k !== "count" && k !== "groupBy") out.push({ path: [k], message: "is not a known field" })
    }
    if (!("count" in o)) out.push({ path: ["count"], message: "is required" })
    else {
      const problem = positiveIntProblem(o.count)
      if (problem !== undefined) out.push({ path: ["count"], message: problem })
    }
    if ("groupBy" in o) {
      const problem = typeof o.groupBy === "string" ? regexProblem(o.groupBy) : "expected a string"
      if (problem !== undefined) {
        out.push({
          path: ["groupBy"],
          message: `${JSON.stringify(o.groupBy)} is not a valid regular expression: ${problem}`
        })
      }
    }
    return out.length === 0 || out
  })
) as unknown as Schema.Schema<number | { readonly count: number; readonly groupBy?: string }>

const RuleName = Schema.String.pipe(
  Schema.filter((s) =>
    /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s) ||
    `"${s}" is not a valid rule name (letters, digits, '-', '_' and '.'; it names metrics and log lines)`
  )
)

const Cron_ = Schema.String.pipe(
  Schema.filter((s) => {
    const problem = cronProblem(s)
    return problem === undefined || `"${s}" is not a valid cron expression (${problem})`
  })
)

const TimeZone = Schema.String.pipe(
  Schema.filter((s) => isTimeZone(s) || `"${s}" is not a known IANA time zone (e.g. UTC, Asia/Shanghai)`)
)

const RuleFields = Schema.Struct({
  name: RuleName,
  bucket: Bucket,
  prefix: Schema.String,
  schedule: Cron_,
  timezone: opt(TimeZone),
  region: opt(Region),
  endpoint: opt(Endpoint),
  credentials: opt(CredentialsFields),
  olderThan: opt(DurationText),
  newerThan: opt(DurationText),
  include: opt(GlobList),
  exclude: opt(GlobList),
  minSize: opt(SizeValue),
  maxSize: opt(SizeValue),
  versions: opt(Versions),
  keepLatest: opt(KeepLatest),
  target: opt(Target),
  dryRun: opt(Schema.Boolean),
  maxDeletes: opt(NonNegativeInt),
  maxDeleteSize: opt(SizeValue),
  concurrency: opt(
    PositiveInt.pipe(Schema.filter((n) =>
      n <= Deletion.runOptionBounds.concurrency.max ||
      `${n} is over ${Deletion.runOptionBounds.concurrency.max}, the most batch deletes in flight`
    ))
  ),
  listConcurrency: opt(
    PositiveInt.pipe(Schema.filter((n) =>
      n <= Deletion.runOptionBounds.listConcurrency.max ||
      `${n} is over ${Deletion.runOptionBounds.listConcurrency.max}, the most listing requests in flight`
    ))
  ),
  batchSize: opt(
    PositiveInt.pipe(Schema.filter((n) =>
      n <= Deletion.runOptionBounds.batchSize.max ||
      `${n} is over ${Deletion.runOptionBounds.batchSize.max}, the most one batch delete takes`
    ))
  ),
  writeBudget: opt(PositiveInt),
  parallelism: opt(
    PositiveInt.pipe(
      Schema.filter((n) =>
        n <= maxParallelism || `${n} is over ${maxParallelism}, the most chunks a rule is split into`
      )
    )
  ),
  enabled: opt(Schema.Boolean),
  catchUp: opt(Schema.Boolean),
  allowWholeBucket: opt(Schema.Boolean)
})

const FileSchema = Schema.Struct({
  cos: opt(Schema.Struct({
    region: opt(Region),
    endpoint: opt(Endpoint),
    credentials: opt(CredentialsFields),
    timeout: opt(DurationText)
  })),
  state: opt(Schema.String.pipe(Schema.filter((text) => {
    if (!StateStore.isPostgresUrl(text)) return text.trim() !== "" || "is empty (a SQLite path or a postgres:// URL)"
    return Either.match(StateStore.fromSetting(text, "/"), { onLeft: (e) => e, onRight: () => true })
  }))),
  http: opt(Schema.Struct({
    enabled: opt(Schema.Boolean),
    host: opt(Schema.String),
    port: opt(
      Schema.Number.pipe(
        Schema.filter((n) => (Number.isInteger(n) && n >= 0 && n <= 65535) || `${n} is not a TCP port (0-65535)`)
      )
    )
  })),
  audit: opt(Schema.Struct({ retention: opt(DurationText) })),
  gracePeriod: opt(DurationText),
  tracing: opt(Schema.Struct({
    enabled: opt(Schema.Boolean),
    endpoint: opt(Endpoint),
    serviceName: opt(Schema.NonEmptyTrimmedString)
  })),
  rules: Schema.Array(RuleFields).pipe(
    Schema.filter((rules) => rules.length > 0 || "there must be at least one rule")
  )
})

type FileConfig = typeof FileSchema.Type

// ---------------------------------------------------------------------------------------------------------------
// the decoded configuration
// ---------------------------------------------------------------------------------------------------------------

/** Where a rule's credentials come from: environment variable names, or (with a warning) values in the file. */
export interface CredentialsSpec {
  readonly secretIdEnv: string
  readonly secretKeyEnv: string
  readonly securityTokenEnv: string
  readonly secretId?: string | undefined
  readonly secretKey?: Redacted.Redacted<string> | undefined
  readonly securityToken?: Redacted.Redacted<string> | undefined
}

export type VersionsMode = "current" | "all" | "noncurrent" | "delete-markers"

export interface Rule {
  readonly name: string
  readonly bucket: string
  readonly prefix: string
  readonly region: string
  readonly endpoint?: string | undefined
  readonly credentials: CredentialsSpec
  readonly timeout?: Duration.Duration | undefined
  readonly schedule: string
  readonly timezone: string
  /** As written (`30d`), for display. */
  readonly olderThanText?: string | undefined
  readonly olderThan?: Duration.Duration | undefined
  /** As written (`7d`), for display. */
  readonly newerThanText?: string | undefined
  /** Only keys modified after now minus this (a duration: a scheduled rule's window moves with each run). */
  readonly newerThan?: Duration.Duration | undefined
  readonly include: ReadonlyArray<string>
  readonly exclude: ReadonlyArray<string>
  readonly minSize?: number | undefined
  readonly maxSize?: number | undefined
  readonly versions: VersionsMode
  readonly keepLatest?: { readonly count: number; readonly groupBy?: string | undefined } | undefined
  /** What the rule removes: objects (default), or incomplete multipart uploads (`target: incomplete-uploads`). */
  readonly target: "objects" | "incompleteUploads"
  readonly dryRun: boolean
  readonly maxDeletes?: number | undefined
  /** Bytes: stop before deleting more than this (`stoppedBy: maxDeleteSize`). */
  readonly maxDeleteSize?: number | undefined
  readonly concurrency?: number | undefined
  readonly listConcurrency?: number | undefined
  readonly batchSize?: number | undefined
  readonly writeBudget?: number | undefined
  /** Chunks the rule's key range is cut into, each run by a runner of the cluster (1: not split). */
  readonly parallelism: number
  readonly enabled: boolean
  readonly catchUp: boolean
  readonly allowWholeBucket: boolean
}

export interface RetentionConfig {
  /** The file it came from (absolute), or a label. */
  readonly source: string
  /** For display: the SQLite file (absolute), `:memory:`, or the Postgres URL without its password. */
  readonly state: string
  /** Where the state lives (the Postgres URL `Redacted`). */
  readonly store: StateStore.StateStore
  readonly http: { readonly enabled: boolean; readonly host: string; readonly port: number }
  readonly auditRetention: Duration.Duration
  readonly gracePeriod: Duration.Duration
  /**
   * The `tracing` section as written (absent fields absent): Tracing.ts combines it with the standard `OTEL_*`
   * environment variables.
   */
  readonly tracing: {
    readonly enabled?: boolean | undefined
    readonly endpoint?: string | undefined
    readonly serviceName?: string | undefined
  }
  readonly rules: ReadonlyArray<Rule>
  /** Accepted but worth fixing: secrets written in the file. */
  readonly warnings: ReadonlyArray<string>
}

export const defaults = {
  state: "cos-retention.db",
  httpHost: "127.0.0.1",
  httpPort: 9464,
  auditRetention: "180d",
  gracePeriod: "20s",
  timezone: "UTC"
} as const

/**
 * The configuration is unusable: `issues` are `path: problem` lines.
 */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  source: Schema.String,
  issues: Schema.Array(Schema.String)
}) {
  get message() {
    return `${this.source}: ${this.issues.length} problem${this.issues.length === 1 ? "" : "s"}\n  ${
      this.issues.join("\n  ")
    }`
  }
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, p) => typeof p === "number" ? `${acc}[${p}]` : acc === "" ? String(p) : `${acc}.${String(p)}`,
    ""
  )

/** Credential fields whose value must never be printed, not even when it has the wrong type. */
const secretFields: ReadonlySet<PropertyKey> = new Set(["secretId", "secretKey", "securityToken"])

const kind = (v: unknown) =>
  v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "a mapping" : `a ${typeof v}`

const issueMessage = (issue: ParseResult.ArrayFormatterIssue, input: unknown): string => {
  if (issue._tag === "Missing") return "is required"
  if (issue._tag === "Unexpected") return "is not a known field"
  const field = issue.path[issue.path.length - 1]
  if (field !== undefined && secretFields.has(field) && issue.path.includes("credentials")) {
    // Schema's message quotes the value (`Expected string, actual ["..."]`): say what was wrong, not what it was.
    const value = issue.path.reduce<unknown>((v, k) => (typeof v === "object" && v !== null ? (v as any)[k] : v), input)
    return `expected a string, got ${kind(value)} (the value is not shown: it is a secret)`
  }
  return issue.message
}

/**
 * Decodes an already-parsed document (YAML or JSON). `baseDir` resolves a relative `state` path.
 */
export const decode = (
  input: unknown,
  options: { readonly source: string; readonly baseDir: string }
): Either.Either<RetentionConfig, ConfigError> => {
  const decoded = Schema.decodeUnknownEither(FileSchema, { errors: "all", onExcessProperty: "error" })(input)
  const issues = Either.isLeft(decoded)
    ? ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map((issue) => {
      const path = formatPath(issue.path)
      return path === "" ? issueMessage(issue, input) : `${path}: ${issueMessage(issue, input)}`
    })
    : []
  issues.push(...crossCheck(input))
  if (Either.isLeft(decoded) || issues.length > 0) {
    const sorted = dedupe(issues).map((line, i) => [line, i] as const)
      .sort(([a, i], [b, j]) => ruleIndex(a) - ruleIndex(b) || i - j)
      .map(([line]) => line)
    return Either.left(new ConfigError({ source: options.source, issues: sorted }))
  }
  return Either.right(resolve(decoded.right, options))
}

const dedupe = (lines: ReadonlyArray<string>) => Array.from(new Set(lines))

// Checks that span several fields, run on the raw document so they are reported along with field errors.
const crossCheck = (input: unknown): Array<string> => {
  const issues: Array<string> = []
  if (typeof input !== "object" || input === null) return issues
  const doc = input as Record<string, any>
  const cosRegion = typeof doc.cos === "object" && doc.cos !== null ? doc.cos.region : undefined
  if (!Array.isArray(doc.rules)) return issues
  const seen = new Map<string, number>()
  doc.rules.forEach((r: unknown, i: number) => {
    if (typeof r !== "object" || r === null) return
    const rule = r as Record<string, unknown>
    const at = `rules[${i}]`
    if (typeof rule.name === "string") {
      const first = seen.get(rule.name)
      if (first !== undefined) {
        issues.push(`${at}.name: "${rule.name}" is already the name of rules[${first}]; rule names must be unique`)
      } else seen.set(rule.name, i)
    }
    if (rule.region === undefined && cosRegion === undefined) {
      issues.push(`${at}.region: no region (set cos.region or ${at}.region)`)
    }
    if (rule.prefix === "" && rule.allowWholeBucket !== true) {
      issues.push(
        `${at}.prefix: an empty prefix selects the whole bucket; set allowWholeBucket: true if that is intended`
      )
    }
    // `olderThan: 0s` selects every key as surely as no olderThan at all: it is no age filter for this guard.
    const age = typeof rule.olderThan === "string" ? parseDuration(rule.olderThan) : undefined
    const noAge = rule.olderThan === undefined || (age !== undefined && age <= 0)
    if (rule.target === "incomplete-uploads") {
      // Aborting uploads younger than any bound would break transfers in progress.
      if (noAge) {
        issues.push(`${at}.olderThan: a target: incomplete-uploads rule needs olderThan (greater than zero)`)
      }
      for (const field of ["minSize", "maxSize", "keepLatest", "maxDeleteSize"] as const) {
        if (rule[field] !== undefined) {
          issues.push(`${at}.${field}: does not apply to target: incomplete-uploads (uploads have no size or ranking)`)
        }
      }
      if (rule.versions !== undefined && rule.versions !== "current") {
        issues.push(`${at}.versions: does not apply to target: incomplete-uploads`)
      }
    } else if (noAge && rule.keepLatest === undefined && rule.versions !== "delete-markers") {
      issues.push(
        `${at}: a rule needs olderThan or keepLatest (or versions: delete-markers)` +
          (rule.olderThan === undefined ? "" : `; olderThan: ${rule.olderThan} selects every key, whatever its age`)
      )
    }
    const newer = typeof rule.newerThan === "string" ? parseDuration(rule.newerThan) : undefined
    if (age !== undefined && newer !== undefined && newer <= age) {
      issues.push(
        `${at}.newerThan: ${rule.newerThan} must reach further back than olderThan (${rule.olderThan}): keys must be ` +
          `modified less than ${rule.newerThan} ago and more than ${rule.olderThan} ago, so nothing could match`
      )
    }
    if (typeof rule.parallelism === "number" && rule.parallelism > 1) {
      const postgres = typeof doc.state === "string" && StateStore.isPostgresUrl(doc.state)
      if (!postgres) {
        issues.push(
          `${at}.parallelism: splitting a rule over runners needs cluster mode (state: postgres://...); one daemon ` +
            "already lists and deletes in parallel (listConcurrency, concurrency): remove parallelism or set it to 1"
        )
      }
      const unsplittable: Array<string> = []
      if (rule.target === "incomplete-uploads") unsplittable.push("target: incomplete-uploads")
      if (rule.versions !== undefined && rule.versions !== "current") unsplittable.push(`versions: ${rule.versions}`)
      if (rule.keepLatest !== undefined) unsplittable.push("keepLatest (it ranks keys across the whole range)")
      if (rule.maxDeletes !== undefined) unsplittable.push("maxDeletes (a cap for the whole run)")
      if (rule.maxDeleteSize !== undefined) unsplittable.push("maxDeleteSize (a cap for the whole run)")
      if (unsplittable.length > 0) {
        issues.push(
          `${at}.parallelism: a split rule deletes current objects by key range, which rules out ` +
            `${unsplittable.join(", ")}; remove parallelism or those fields`
        )
      }
    }
    const sizeOf = (v: unknown) => typeof v === "number" || typeof v === "string" ? parseSize(v) : undefined
    const minSize = sizeOf(rule.minSize)
    const maxSize = sizeOf(rule.maxSize)
    if (minSize !== undefined && maxSize !== undefined && minSize > maxSize) {
      issues.push(`${at}.minSize: ${minSize} bytes is more than maxSize (${maxSize} bytes)`)
    }
  })
  return issues
}

const ruleIndex = (line: string) => {
  const m = /^rules\[(\d+)\]/.exec(line)
  return m === null ? -1 : Number(m[1])
}

const resolve = (
  file: FileConfig,
  options: { readonly source: string; readonly baseDir: string }
): RetentionConfig => {
  const warnings: Array<string> = []
  const secretWarnings = (path: string, c: typeof CredentialsFields.Type | undefined) => {
    if (c?.secretKey !== undefined) {
      warnings.push(`${path}.secretKey: a secret is written in the config file; prefer secretKeyEnv`)
    }
    if (c?.securityToken !== undefined) {
      warnings.push(`${path}.securityToken: a secret is written in the config file; prefer securityTokenEnv`)
    }
  }
  secretWarnings("cos.credentials", file.cos?.credentials)
  const rules = file.rules.map((r, i): Rule => {
    const at = `rules[${i}]`
    const region = r.region ?? file.cos?.region
    const versions = r.versions ?? "current"
    const minSize = r.minSize === undefined ? undefined : parseSize(r.minSize)
    const maxSize = r.maxSize === undefined ? undefined : parseSize(r.maxSize)
    secretWarnings(`${at}.credentials`, r.credentials)
    const base = file.cos?.credentials
    const own = r.credentials
    const credentials: CredentialsSpec = {
      secretIdEnv: own?.secretIdEnv ?? base?.secretIdEnv ?? "COS_SECRET_ID",
      secretKeyEnv: own?.secretKeyEnv ?? base?.secretKeyEnv ?? "COS_SECRET_KEY",
      securityTokenEnv: own?.securityTokenEnv ?? base?.securityTokenEnv ?? "COS_SECURITY_TOKEN",
      secretId: own?.secretId ?? (own?.secretIdEnv === undefined ? base?.secretId : undefined),
      secretKey: own?.secretKey ?? (own?.secretKeyEnv === undefined ? base?.secretKey : undefined),
      securityToken: own?.securityToken ?? (own?.securityTokenEnv === undefined ? base?.securityToken : undefined)
    }
    const keepLatest = r.keepLatest === undefined
      ? undefined
      : typeof r.keepLatest === "number"
      ? { count: r.keepLatest }
      : r.keepLatest
    const olderThanMs = r.olderThan === undefined ? undefined : parseDuration(r.olderThan)
    const newerThanMs = r.newerThan === undefined ? undefined : parseDuration(r.newerThan)
    const timeoutMs = file.cos?.timeout === undefined ? undefined : parseDuration(file.cos.timeout)
    return {
      name: r.name,
      bucket: r.bucket,
      prefix: r.prefix,
      region: region ?? "",
      endpoint: r.endpoint ?? file.cos?.endpoint,
      credentials,
      timeout: timeoutMs === undefined ? undefined : Duration.millis(timeoutMs),
      schedule: r.schedule,
      timezone: r.timezone ?? defaults.timezone,
      olderThanText: r.olderThan,
      olderThan: olderThanMs === undefined ? undefined : Duration.millis(olderThanMs),
      newerThanText: r.newerThan,
      newerThan: newerThanMs === undefined ? undefined : Duration.millis(newerThanMs),
      include: r.include ?? [],
      exclude: r.exclude ?? [],
      minSize,
      maxSize,
      versions,
      keepLatest,
      target: r.target === "incomplete-uploads" ? "incompleteUploads" : "objects",
      dryRun: r.dryRun ?? false,
      maxDeletes: r.maxDeletes,
      maxDeleteSize: r.maxDeleteSize === undefined ? undefined : parseSize(r.maxDeleteSize),
      concurrency: r.concurrency,
      listConcurrency: r.listConcurrency,
      batchSize: r.batchSize,
      writeBudget: r.writeBudget,
      parallelism: r.parallelism ?? 1,
      enabled: r.enabled ?? true,
      catchUp: r.catchUp ?? false,
      allowWholeBucket: r.allowWholeBucket ?? false
    }
  })
  const store = Either.getOrThrow(StateStore.fromSetting(file.state ?? defaults.state, options.baseDir))
  if (store._tag === "postgres" && store.passwordInUrl) {
    warnings.push("state: a password is written in the config file; prefer PGPASSWORD in the environment")
  }
  return {
    source: options.source,
    state: StateStore.display(store),
    store,
    http: {
      enabled: file.http?.enabled ?? true,
      host: file.http?.host ?? defaults.httpHost,
      port: file.http?.port ?? defaults.httpPort
    },
    auditRetention: Duration.millis(parseDuration(file.audit?.retention ?? defaults.auditRetention)!),
    gracePeriod: Duration.millis(parseDuration(file.gracePeriod ?? defaults.gracePeriod)!),
    tracing: file.tracing ?? {},
    rules,
    warnings
  }
}

/**
 * Parses YAML (or JSON, which YAML reads too) text and decodes it.
 */
export const parse = (
  text: string,
  options: { readonly source: string; readonly baseDir: string }
): Either.Either<RetentionConfig, ConfigError> => {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    return Either.left(
      new ConfigError({
        source: options.source,
        issues: doc.errors.map((e) => `syntax: ${e.message.split("\n")[0]}`)
      })
    )
  }
  return decode(doc.toJS() ?? {}, options)
}

/**
 * Reads and decodes a configuration file.
 */
export const load = (path: string): Effect.Effect<RetentionConfig, ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const absolute = NodePath.resolve(path)
    const text = yield* fs.readFileString(absolute).pipe(
      Effect.mapError((e) => new ConfigError({ source: path, issues: [`cannot read the file: ${e.message}`] }))
    )
    return yield* parse(text, { source: path, baseDir: NodePath.dirname(absolute) })
  })

/**
 * The loaded configuration, for the daemon's services.
 */
export class Settings extends Context.Tag("@effect-cos/daemon/Settings")<Settings, RetentionConfig>() {
  static readonly layer = (config: RetentionConfig): Layer.Layer<Settings> => Layer.succeed(Settings, config)
  /** Loads the file and logs its warnings. */
  static readonly layerFile = (path: string): Layer.Layer<Settings, ConfigError, FileSystem.FileSystem> =>
    Layer.effect(
      Settings,
      Effect.tap(load(path), (config) => Effect.forEach(config.warnings, (w) => Effect.logWarning(w)))
    )
}
