/**
 * Options resolved and checked once, before any request: a `Resolved` value or a `CosInvalidRequest` naming the
 * option and what it accepts. Nothing here throws.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { CosInvalidRequest } from "../../CosError.js"
import type * as Deletion from "../../Deletion.js"
import * as Units from "../../Units.js"
import { globProblem } from "../glob.js"

/**
 * The versions modes, in the order the docs list them: one list for the engine, the daemon's configuration and the
 * CLI's `--versions` choice.
 *
 * @internal
 */
export const versionsModes = ["current", "all", "noncurrent", "delete-markers"] as const satisfies ReadonlyArray<
  Deletion.VersionsMode
>

/** @internal */
export const isVersionsMode = (u: unknown): u is Deletion.VersionsMode =>
  typeof u === "string" && (versionsModes as ReadonlyArray<string>).includes(u)

/** @internal */
export interface Resolved {
  readonly bucket: string
  readonly concurrency: number
  readonly listConcurrency: number
  readonly batchSize: number
  readonly maxDeletes: number | undefined
  /** `PurgeOptions.maxDeleteSize`: bytes. */
  readonly maxDeleteSize: number | undefined
  readonly dryRun: boolean
  readonly quiet: boolean
  readonly maxAttempts: number
  readonly gracePeriod: Duration.Duration
  readonly sampleSize: number
  readonly progressInterval: Duration.Duration
  readonly options: Deletion.RunOptions
}

/** @internal */
export const invalid = (reason: string) => new CosInvalidRequest({ operation: "Deletion.purge", reason })

/** @internal */
export const runOptionBounds = {
  concurrency: { min: 1, max: 1000 },
  listConcurrency: { min: 1, max: 256 },
  batchSize: { min: 1, max: 1000 }
} as const

/** An integer option within bounds: the value, or the sentence saying what is accepted. */
const int = (name: string, v: number | undefined, def: number, min: number, max: number): number | string => {
  const n = v ?? def
  return Number.isInteger(n) && n >= min && n <= max ? n : `${name} must be an integer from ${min} to ${max}, got ${v}`
}

/**
 * The run options (everything but the filters and the bucket) checked once.
 *
 * @internal
 */
export const resolve = (
  options: Deletion.RunOptions & { readonly maxDeleteSize?: number | undefined }
): Either.Either<Omit<Resolved, "bucket">, CosInvalidRequest> => {
  const { batchSize: b, concurrency: c, listConcurrency: l } = runOptionBounds
  const concurrency = int("concurrency", options.concurrency, 8, c.min, c.max)
  const listConcurrency = int("listConcurrency", options.listConcurrency, 1, l.min, l.max)
  const batchSize = int("batchSize", options.batchSize, 1000, b.min, b.max)
  const maxDeletes = options.maxDeletes === undefined
    ? undefined
    : int("maxDeletes", options.maxDeletes, 0, 0, Number.MAX_SAFE_INTEGER)
  const maxDeleteSize = options.maxDeleteSize === undefined
    ? undefined
    : Number.isSafeInteger(options.maxDeleteSize) && options.maxDeleteSize >= 0
    ? options.maxDeleteSize
    : `maxDeleteSize must be a whole number of bytes >= 0, got ${options.maxDeleteSize}`
  const maxAttempts = int("maxAttempts", options.maxAttempts, 10, 1, 100)
  const sampleSize = int("sampleSize", options.sampleSize, 20, 0, 100_000)
  for (const v of [concurrency, listConcurrency, batchSize, maxDeletes, maxDeleteSize, maxAttempts, sampleSize]) {
    if (typeof v === "string") return Either.left(invalid(v))
  }
  const gracePeriod = Duration.decodeUnknown(options.gracePeriod ?? Duration.seconds(10))
  if (gracePeriod._tag === "None") return Either.left(invalid(`gracePeriod is not a duration: ${options.gracePeriod}`))
  const progressInterval = Duration.decodeUnknown(options.progressInterval ?? Duration.seconds(1))
  if (progressInterval._tag === "None") {
    return Either.left(invalid(`progressInterval is not a duration: ${options.progressInterval}`))
  }
  return Either.right({
    concurrency: concurrency as number,
    listConcurrency: listConcurrency as number,
    batchSize: batchSize as number,
    maxDeletes: maxDeletes as number | undefined,
    maxDeleteSize: maxDeleteSize as number | undefined,
    dryRun: options.dryRun === true,
    quiet: options.quiet === true,
    maxAttempts: maxAttempts as number,
    gracePeriod: gracePeriod.value,
    sampleSize: sampleSize as number,
    progressInterval: progressInterval.value,
    options
  })
}

/**
 * The bucket of a run: the options', else the client's default.
 *
 * @internal
 */
export const bucketOf = (
  options: Deletion.RunOptions,
  defaultBucket: string | undefined
): Either.Either<string, CosInvalidRequest> => {
  const bucket = options.bucket ?? defaultBucket
  return bucket === undefined
    ? Either.left(invalid("no bucket: name one in the options or in the client"))
    : Either.right(bucket)
}

/**
 * The filters of a purge checked once (the prefix, its whole-bucket guard, the mode, dates, globs, sizes,
 * keepLatest).
 *
 * @internal
 */
export const checkFilters = (
  options: Deletion.PurgeOptions
): Either.Either<{ readonly prefix: string; readonly mode: Deletion.VersionsMode }, CosInvalidRequest> => {
  const prefix = options.prefix
  if (typeof prefix !== "string") return Either.left(invalid("a prefix is required"))
  if (prefix === "" && options.allowWholeBucket !== true) {
    return Either.left(invalid(
      "an empty prefix selects every key of the bucket; set allowWholeBucket (--allow-whole-bucket) to mean it"
    ))
  }
  const mode = options.versions ?? "current"
  if (!isVersionsMode(mode)) return Either.left(invalid(`unknown versions mode ${JSON.stringify(mode)}`))
  for (const [name, v] of [["olderThan", options.olderThan], ["newerThan", options.newerThan]] as const) {
    if (v === undefined) continue
    if (typeof v === "string") {
      const parsed = Units.parseAge(v)
      if (Either.isLeft(parsed)) return Either.left(invalid(`${name}: ${parsed.left}`))
    } else if (Units.boundAt(v, 0) === undefined) {
      return Either.left(invalid(`${name} is not a valid date or a duration >= 0: ${String(v)}`))
    }
  }
  // A glob the engine cannot compile is refused, never read as matching nothing (as an exclude, that would delete
  // what it names).
  for (const [name, globs] of [["include", options.include], ["exclude", options.exclude]] as const) {
    for (const g of globs ?? []) {
      const problem = globProblem(g)
      if (problem !== undefined) {
        return Either.left(invalid(`${name} glob ${JSON.stringify(g)} is not valid: ${problem}`))
      }
    }
  }
  for (const [name, v] of [["minSize", options.minSize], ["maxSize", options.maxSize]] as const) {
    if (v !== undefined && !(v >= 0)) return Either.left(invalid(`${name} must be a number of bytes >= 0, got ${v}`))
  }
  if (options.minSize !== undefined && options.maxSize !== undefined && options.minSize > options.maxSize) {
    return Either.left(invalid(
      `minSize (${options.minSize} bytes) is more than maxSize (${options.maxSize} bytes), so nothing could match`
    ))
  }
  const keep = options.keepLatest
  if (keep !== undefined && !(Number.isInteger(keep.count) && keep.count >= 0)) {
    return Either.left(invalid(`keepLatest.count must be an integer >= 0, got ${keep.count}`))
  }
  return Either.right({ prefix, mode })
}

/**
 * The age window at `now` refused when it is empty (`newerThan`'s bound not before `olderThan`'s).
 *
 * @internal
 */
export const checkWindow = (options: Deletion.Filters, now: number): Either.Either<void, CosInvalidRequest> => {
  const at = (v: Deletion.Filters["olderThan"]) => v === undefined ? undefined : Units.boundAt(v, now)
  const problem = Units.emptyWindow(
    { olderThan: at(options.olderThan), newerThan: at(options.newerThan) },
    { olderThan: "olderThan", newerThan: "newerThan" }
  )
  return problem === undefined ? Either.void : Either.left(invalid(problem))
}

/**
 * What a purge removes (`objects` unless the options say otherwise).
 *
 * @internal
 */
export const targetOf = (options: Deletion.PurgeOptions): Either.Either<Deletion.Target, CosInvalidRequest> => {
  const target = options.target ?? "objects"
  return target === "objects" || target === "incompleteUploads"
    ? Either.right(target)
    : Either.left(invalid(`unknown target ${JSON.stringify(target)}`))
}

/**
 * The filters that do not apply to incomplete uploads refused: they have no size, no versions and no ranking.
 *
 * @internal
 */
export const checkUploadFilters = (options: Deletion.PurgeOptions): Either.Either<void, CosInvalidRequest> => {
  const refuse = (field: string) =>
    Either.left(
      invalid(`${field} does not apply to incomplete uploads (they have no size, versions or ranking); remove it`)
    )
  if (options.versions !== undefined && options.versions !== "current") return refuse("versions")
  if (options.minSize !== undefined) return refuse("minSize")
  if (options.maxSize !== undefined) return refuse("maxSize")
  if (options.keepLatest !== undefined) return refuse("keepLatest")
  if (options.maxDeleteSize !== undefined) return refuse("maxDeleteSize")
  return Either.void
}
