/**
 * `cos-retention purge --bucket NAME-APPID --region REGION --prefix P [...]`: one deletion run from the command line,
 * straight through the core engine (no configuration file, no state database). With `--incomplete-uploads` it aborts
 * incomplete multipart uploads instead of deleting objects.
 *
 * Exit status: 0 everything matched was deleted (or planned), 1 some keys failed or the run failed, 2 bad arguments
 * or configuration (missing credentials included), 3 stopped by the --max-deletes cap, 130 / 143 interrupted by
 * SIGINT (Ctrl-C) / SIGTERM before everything matched was deleted (the batches in flight finish first, and the
 * summary is printed).
 */
import { CosClient, CosError, Credentials, Deletion } from "@effect-cos/core"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { formatDuration } from "../Logging.js"
import { bytes, choiceOption, ExitCode, intOption, invalidArgument, markLeftUndone } from "./common.js"
import { progressOption, reporter } from "./progress.js"
import * as verbatim from "./verbatim.js"

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** `30d`, `12h`, `90m`, `45s`, `2w`, or a date (`2024-01-31`, an ISO timestamp). */
export const parseOlderThan = (text: string): Duration.Duration | Date | undefined => {
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(text.trim())
  if (m !== null) return Duration.millis(Number(m[1]) * units[m[2]!]!)
  if (/^\d{4}-\d{2}-\d{2}/.test(text.trim())) {
    const d = new Date(text.trim())
    if (!Number.isNaN(d.getTime())) return d
  }
  return undefined
}

export const purgeOptions = {
  bucket: Options.text("bucket").pipe(Options.withDescription("the bucket, <BucketName>-<APPID>")),
  region: Options.text("region").pipe(Options.withDescription("its region, e.g. ap-guangzhou")),
  prefix: verbatim.text("prefix").pipe(
    Options.withDescription(
      "delete keys under this prefix, exactly as written (spaces included; an empty prefix needs --allow-whole-bucket)"
    )
  ),
  endpoint: Options.text("endpoint").pipe(
    Options.withDescription("send requests to this origin instead of <bucket>.cos.<region>.myqcloud.com"),
    Options.optional
  ),
  olderThan: Options.text("older-than").pipe(
    Options.withDescription("only keys last modified before: a duration (30d, 12h, 90m, 2w) or a date (2024-01-31)"),
    Options.mapEffect((t) => {
      const v = parseOlderThan(t)
      return v === undefined
        ? Effect.fail(invalidArgument(`--older-than: expected a duration such as 30d or a date, got "${t}"`))
        : Effect.succeed(v)
    }),
    Options.optional
  ),
  include: verbatim.repeatedText("include").pipe(
    Options.withDescription(
      "only keys matching this glob (repeatable). A glob matches the whole key: * is any run of characters but /, ? one" +
        " of them, ** (a whole segment) crosses /, so logs/** is everything under logs/; dotfiles, . and .. segments" +
        " and line terminators are matched like any character"
    )
  ),
  exclude: verbatim.repeatedText("exclude").pipe(
    Options.withDescription(
      "never delete keys matching this glob (repeatable; same semantics as --include: keep/** protects every key" +
        " under keep/, dotfiles and keys with line breaks included)"
    )
  ),
  minSize: intOption("min-size", 0).pipe(
    Options.withDescription("only objects of at least N bytes"),
    Options.optional
  ),
  maxSize: intOption("max-size", 0).pipe(
    Options.withDescription("only objects of at most N bytes"),
    Options.optional
  ),
  versions: choiceOption("versions", Deletion.versionsModes).pipe(
    Options.withDescription(
      "versioned buckets: current (the default; adds delete markers), all (every version and marker), noncurrent, " +
        "delete-markers"
    ),
    Options.withDefault("current" as const)
  ),
  concurrency: intOption("concurrency", 1).pipe(
    Options.withDescription("batch deletes in flight (default 8)"),
    Options.withDefault(8)
  ),
  listConcurrency: intOption("list-concurrency", 1).pipe(
    Options.withDescription("list requests in flight, the key range split between them (default 4)"),
    Options.withDefault(4)
  ),
  maxDeletes: intOption("max-deletes", 0).pipe(
    Options.withDescription("stop before deleting more than N keys (exit status 3 when the cap stops the run)"),
    Options.optional
  ),
  dryRun: Options.boolean("dry-run").pipe(Options.withDescription("list and plan only: send no delete")),
  json: Options.boolean("json").pipe(Options.withDescription("print the summary as JSON (the last line of stdout)")),
  yes: Options.boolean("yes").pipe(
    Options.withAlias("y"),
    Options.withDescription("delete without asking (needed when not on a terminal)")
  ),
  allowWholeBucket: Options.boolean("allow-whole-bucket").pipe(
    Options.withDescription("permit an empty --prefix: every key of the bucket")
  ),
  incompleteUploads: Options.boolean("incomplete-uploads").pipe(
    Options.withDescription(
      "abort incomplete multipart uploads instead of deleting objects: uploads started and never completed, whose" +
        " parts are billed as storage; --older-than counts from their initiation, --include/--exclude match their" +
        " keys, --max-deletes caps the aborts; completed objects are not touched"
    )
  ),
  progress: progressOption
}

type Args = Command.Command.ParseConfig<typeof purgeOptions>

/** COS answers that mean the command line (or the environment) is wrong, not the run (cos-api.md §5). */
const isTerminal = () => process.stdin.isTTY === true && process.stderr.isTTY === true

/** Exit 2 with a message on stderr. */
const usageError = (message: string) =>
  Effect.zipRight(Console.error(`cos-retention purge: ${message}`), new ExitCode({ code: 2 }))

const describeFilters = (args: Args) => {
  const parts = [`prefix "${args.prefix}"`]
  if (args.incompleteUploads) parts.push("incomplete multipart uploads")
  if (Option.isSome(args.olderThan)) {
    const v = args.olderThan.value
    const what = args.incompleteUploads ? "started" : "last modified"
    parts.push(v instanceof Date ? `${what} before ${v.toISOString()}` : `older than ${formatDuration(v)}`)
  }
  if (args.include.length > 0) parts.push(`including ${args.include.join(", ")}`)
  if (args.exclude.length > 0) parts.push(`excluding ${args.exclude.join(", ")}`)
  if (Option.isSome(args.minSize)) parts.push(`at least ${args.minSize.value} bytes`)
  if (Option.isSome(args.maxSize)) parts.push(`at most ${args.maxSize.value} bytes`)
  if (args.versions !== "current") parts.push(`versions: ${args.versions}`)
  return parts.join(", ")
}

const rate = (n: number, ms: number) => (ms > 0 ? Math.round(n / ms * 1000) : 0)

/** The summary of an `--incomplete-uploads` run: uploads, not keys or bytes. */
const uploadLines = (s: Deletion.Summary) => [
  s.dryRun
    ? `plan for ${s.bucket}: ${s.matched} of ${s.listed} incomplete uploads match; nothing aborted (dry run)`
    : `${s.bucket}: aborted ${s.deleted} of ${s.matched} matching incomplete uploads, ${s.failed} failed, ` +
      `${s.skipped} skipped; listed ${s.listed} uploads in ${(s.durationMs / 1000).toFixed(1)} s`,
  `${s.requests} requests, ${s.retries} retries, ${s.throttled} throttled`
]

/** Why a run failed, in a sentence that says what to check. */
export const describeFailure = (e: CosError.CosError): string => {
  switch (e._tag) {
    case "CosServiceError": {
      const hint = e.code === "SignatureDoesNotMatch" || e.code === "InvalidAccessKeyId"
        ? ": check COS_SECRET_ID and COS_SECRET_KEY (and COS_SECURITY_TOKEN for temporary keys)"
        : e.status === 403
        ? ": the credentials may not list or delete in this bucket"
        : e.code === "NoSuchBucket"
        ? `: check --bucket and --region`
        : ""
      const what = e.status === 403 ? "COS refused the request" : "COS answered with an error"
      return `${what} (${e.status} ${e.code})${hint} [${e.operation}: ${e.cosMessage}]`
    }
    case "CosTransportError": {
      const refused = /ECONNREFUSED (\S+)/.exec(e.reason)
      if (refused !== null) return `cannot connect to ${refused[1]} (connection refused) [${e.operation}]`
      const dns = /(?:ENOTFOUND|EAI_AGAIN) (\S+)/.exec(e.reason)
      if (dns !== null) return `cannot resolve ${dns[1]} (DNS) [${e.operation}]`
      return `no answer from COS (${e.reason}) [${e.operation}]`
    }
    case "CosTimeoutError":
      return `no answer from COS within ${e.timeoutMs} ms [${e.operation}]`
    default:
      return e.message
  }
}

const printHuman = (s: Deletion.Summary, error?: CosError.CosError) =>
  Effect.gen(function*() {
    const lines = s.target === "incompleteUploads" ? uploadLines(s) : [
      s.dryRun
        ? `plan for ${s.bucket} (${s.versions}): ${s.matched} of ${s.listed} listed keys match (${
          bytes(s.matchedBytes)
        }); nothing deleted (dry run)`
        : `${s.bucket}: deleted ${s.deleted} of ${s.matched} matching keys (${bytes(s.bytes)}), ${s.failed} failed, ` +
          `${s.skipped} skipped; listed ${s.listed} in ${(s.durationMs / 1000).toFixed(1)} s ` +
          `(${rate(s.deleted, s.durationMs)} keys/s)`,
      `breakdown: ${s.breakdown.objects} objects, ${s.breakdown.versions} versions, ${s.breakdown.deleteMarkers} ` +
      `delete markers; ${s.requests} requests, ${s.retries} retries, ${s.throttled} throttled`
    ]
    if (error !== undefined) lines.push(`failed: ${describeFailure(error)}`)
    else if (s.stoppedBy !== undefined) lines.push(`stopped early: ${s.stoppedBy}`)
    if (s.sample.length > 0) lines.push(`sample: ${s.sample.slice(0, 10).join(", ")}`)
    for (const f of s.failures.slice(0, 10)) {
      const id = f.uploadId !== undefined
        ? ` [upload ${f.uploadId}]`
        : f.versionId === undefined
        ? ""
        : ` [version ${f.versionId}]`
      lines.push(`failed: ${f.key}${id}: ${f.code} ${f.message}`)
    }
    for (const n of s.notes) lines.push(`note: ${n}`)
    yield* Console.log(lines.join("\n"))
  })

const printSummary = (args: Args, s: Deletion.Summary, error?: CosError.CosError) =>
  args.json
    ? Console.log(JSON.stringify(error === undefined ? s : { ...s, error: error.message }))
    : Effect.zipRight(
      printHuman(s, error),
      error === undefined ? Effect.void : Console.error(`error: ${error.message}`)
    )

const handler = (args: Args) =>
  Effect.gen(function*() {
    if (args.prefix === "" && !args.allowWholeBucket) {
      return yield* usageError("an empty --prefix selects every key of the bucket; add --allow-whole-bucket to mean it")
    }
    if (args.incompleteUploads) {
      const conflicting = [
        Option.isSome(args.minSize) ? "--min-size" : undefined,
        Option.isSome(args.maxSize) ? "--max-size" : undefined,
        args.versions !== "current" ? "--versions" : undefined
      ].filter((f) => f !== undefined)
      if (conflicting.length > 0) {
        return yield* usageError(
          `${conflicting.join(", ")} cannot be combined with --incomplete-uploads: incomplete uploads have no size ` +
            "or versions; select them by --prefix, --include/--exclude and --older-than"
        )
      }
    }
    const terminal = isTerminal()
    if (!args.dryRun && !args.yes && !terminal) {
      return yield* usageError(
        "refusing to delete without confirmation: not on a terminal, so pass --yes (or --dry-run to see the plan)"
      )
    }
    const credentials = yield* Credentials.fromConfig().pipe(
      Effect.catchTag(
        "CosCredentialsError",
        (e) => usageError(`${e.reason} (COS credentials come from the environment)`)
      )
    )
    const clientLayer = CosClient.layer({
      region: args.region,
      bucket: args.bucket,
      credentials,
      endpoint: Option.getOrUndefined(args.endpoint)
    }).pipe(Layer.provide(NodeHttpClient.layerUndici))

    const progress = reporter(args.progress, terminal)
    const options: Deletion.PurgeOptions = {
      bucket: args.bucket,
      prefix: args.prefix,
      include: args.include.length > 0 ? args.include : undefined,
      exclude: args.exclude.length > 0 ? args.exclude : undefined,
      olderThan: Option.getOrUndefined(args.olderThan),
      minSize: Option.getOrUndefined(args.minSize),
      maxSize: Option.getOrUndefined(args.maxSize),
      versions: args.versions,
      concurrency: args.concurrency,
      // Uploads are listed page after page: the default of 4 would only add a note.
      listConcurrency: args.incompleteUploads ? 1 : args.listConcurrency,
      maxDeletes: Option.getOrUndefined(args.maxDeletes),
      allowWholeBucket: args.allowWholeBucket,
      target: args.incompleteUploads ? "incompleteUploads" : "objects",
      ...progress.options
    }
    let last: Deletion.Summary | undefined
    const run = (dryRun: boolean) =>
      Deletion.purge({ ...options, dryRun, onSummary: (s) => Effect.sync(() => (last = s)) }).pipe(
        Effect.ensuring(progress.done)
      )

    const program = Effect.gen(function*() {
      if (!args.dryRun && !args.yes) {
        // On a terminal: show the plan, then ask.
        const plan = yield* run(true)
        yield* printHuman(plan)
        if (plan.matched === 0) {
          if (args.json) yield* Console.log(JSON.stringify(plan))
          return plan
        }
        const go = yield* Prompt.confirm({
          message: (args.incompleteUploads
            ? `Abort these ${plan.matched} incomplete uploads in ${args.bucket}? `
            : `Delete these ${plan.matched} keys (${bytes(plan.matchedBytes)}) from ${args.bucket}? `) +
            `(${describeFilters(args)})`,
          initial: false
        })
        if (!go) {
          yield* Console.error("nothing deleted")
          if (args.json) yield* Console.log(JSON.stringify(plan))
          return plan
        }
      }
      const summary = yield* run(args.dryRun)
      yield* printSummary(args, summary)
      return summary
    }).pipe(Effect.provide(clientLayer))

    const summary = yield* program.pipe(
      Effect.catchAll((e: CosError.CosError | { readonly _tag: "QuitException" }) => {
        if (e._tag === "QuitException") {
          return Effect.zipRight(Console.error("nothing deleted"), new ExitCode({ code: 1 }))
        }
        // Bad arguments or configuration (refused before sending, unknown credentials, no such bucket): exit 2.
        const code = CosError.isConfiguration(e) ? 2 : 1
        const shown = last === undefined
          ? (args.json
            ? Console.log(JSON.stringify({ error: e.message }))
            : Console.error(`failed: ${describeFailure(e)}\nerror: ${e.message}`))
          : printSummary(args, last, e)
        return Effect.zipRight(shown, new ExitCode({ code }))
      }),
      Effect.onInterrupt(() =>
        Effect.suspend(() => {
          // Interrupted (Ctrl-C, SIGTERM) before everything matched was deleted: exit 130 / 143, not 0.
          const done = last !== undefined && last.stoppedBy === undefined && last.failed === 0 && last.skipped === 0 &&
            last.dryRun === args.dryRun
          if (!done) markLeftUndone()
          return last === undefined ? Effect.void : printSummary(args, last)
        })
      )
    )
    if (summary.failed > 0) return yield* new ExitCode({ code: 1 })
    // A safety cap is not "everything matched was deleted": its own status, so scripts can tell.
    if (summary.stoppedBy === "maxDeletes") return yield* new ExitCode({ code: 3 })
  })

export const purge = Command.make("purge", purgeOptions, handler).pipe(
  Command.withDescription(
    "Delete every key under a prefix that the filters select: listed in parallel, deleted in batches of 1000, " +
      "governed, exact. With --incomplete-uploads: abort the incomplete multipart uploads the filters select " +
      "instead. Credentials from COS_SECRET_ID, COS_SECRET_KEY (and COS_SECURITY_TOKEN). " +
      "Exit status: 0 everything matched was deleted (or planned); 1 some keys failed or the run failed; 2 bad " +
      "arguments or configuration; 3 stopped by the --max-deletes cap (the rest is left in place); 130 (Ctrl-C, " +
      "SIGINT) or 143 (SIGTERM) interrupted before everything matched was " +
      "deleted (batches in flight finish first and the summary is printed)."
  )
)
