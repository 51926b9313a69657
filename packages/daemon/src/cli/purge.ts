/**
 * `cos-retention purge --bucket NAME-APPID --region REGION --prefix P [...]` (or `--keys-from FILE` for an explicit
 * list of keys): one deletion run from the command line, straight through the core engine (no configuration file, no
 * state database); `--audit-log FILE` appends every outcome as a JSON line. With `--incomplete-uploads` it aborts
 * incomplete multipart uploads instead of deleting objects.
 *
 * Exit status: 0 everything matched was deleted (or planned), 1 some keys failed or the run failed, 2 bad arguments
 * or configuration (missing credentials included), 3 stopped by a cap (--max-deletes, --max-delete-size), 130 / 143 interrupted by
 * SIGINT (Ctrl-C) / SIGTERM before everything matched was deleted (the batches in flight finish first, and the
 * summary is printed).
 */
import { CosClient, CosError, CosHttpClient, Credentials, Deletion, Units } from "@effect-cos/core"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as NodeFs from "node:fs"
import * as AuditLog from "../AuditLog.js"
import * as Display from "../Display.js"
import * as KeyList from "../KeyList.js"
import { formatDuration } from "../Logging.js"
import { bytes, choiceOption, ExitCode, intOption, invalidArgument, markLeftUndone, sizeOption } from "./common.js"
import { progressOption, reporter } from "./progress.js"
import { given } from "./rawArgs.js"
import * as verbatim from "./verbatim.js"

/**
 * `30d`, `12h`, `1h30m`, `7 days`, or a date (`2026-01-31`, `2026-01-31T08:00:00+08:00`): the core's one reading
 * (`Units.parseAge`), as in rules and the library. A date-time without a zone is refused as ambiguous.
 */
export const parseOlderThan = (text: string): Duration.Duration | Date | undefined =>
  Either.getOrUndefined(Units.parseAge(text))

const ageOption = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withDescription(description),
    Options.mapEffect((t) => {
      const v = Units.parseAge(t)
      return Either.isLeft(v)
        ? Effect.fail(
          invalidArgument(
            `--${name}: expected a duration (${Units.durationExamples}) or a date (${Units.instantExamples}): ${v.left}`
          )
        )
        : Effect.succeed(v.right)
    }),
    Options.optional
  )

export const purgeOptions = {
  bucket: Options.text("bucket").pipe(Options.withDescription("the bucket, <BucketName>-<APPID>")),
  region: Options.text("region").pipe(Options.withDescription("its region, e.g. ap-guangzhou")),
  prefix: verbatim.text("prefix").pipe(
    Options.withDescription(
      "delete keys under this prefix, exactly as written (spaces included; an empty prefix needs " +
        "--allow-whole-bucket); required unless --keys-from"
    ),
    Options.optional
  ),
  keysFrom: verbatim.text("keys-from").pipe(
    Options.withDescription(
      "delete exactly the keys listed in this file (- for standard input) instead of listing a prefix: one key per" +
        " line, byte for byte (only LF ends a line; no trimming, no comments; empty lines and Windows CR LF line endings are refused), or JSON lines" +
        " {\"key\": \"...\", \"versionId\": \"...\"} when the first line starts with {. The whole list is checked before" +
        " the first delete"
    ),
    Options.optional
  ),
  auditLog: verbatim.text("audit-log").pipe(
    Options.withDescription(
      "append one JSON line per deleted key (key, versionId, outcome, size, bucket, time) and one per failed key" +
        " (with its code) to this file, as outcomes arrive"
    ),
    Options.optional
  ),
  endpoint: Options.text("endpoint").pipe(
    Options.withDescription("send requests to this origin instead of <bucket>.cos.<region>.myqcloud.com"),
    Options.optional
  ),
  olderThan: ageOption(
    "older-than",
    "only keys last modified before now minus this duration (30d, 12h, 1h30m, \"7 days\") or before this date" +
      " (2026-01-31 is midnight UTC; a date-time needs Z or an offset: 2026-01-31T08:00:00+08:00)"
  ),
  newerThan: ageOption(
    "newer-than",
    "only keys last modified after now minus this duration, or after this date (same forms as --older-than);" +
      " with both, --newer-than must reach further back than --older-than (--newer-than 30d --older-than 7d)"
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
  minSize: sizeOption("min-size").pipe(
    Options.withDescription(
      "only objects of at least this many bytes: a byte count or a size (10KB, 5MB, 1.5GB, 5MiB)"
    ),
    Options.optional
  ),
  maxSize: sizeOption("max-size").pipe(
    Options.withDescription("only objects of at most this many bytes (same forms as --min-size)"),
    Options.optional
  ),
  versions: choiceOption("versions", Deletion.versionsModes).pipe(
    Options.withDescription(
      "versioned buckets: current (the default; adds delete markers), all (every version and marker), noncurrent, " +
        "delete-markers"
    ),
    Options.withDefault("current" as const)
  ),
  concurrency: intOption("concurrency", 1, Deletion.runOptionBounds.concurrency.max).pipe(
    Options.withDescription("batch deletes in flight (default 8)"),
    Options.withDefault(8)
  ),
  listConcurrency: intOption("list-concurrency", 1, Deletion.runOptionBounds.listConcurrency.max).pipe(
    Options.withDescription("list requests in flight, the key range split between them (default 4)"),
    Options.withDefault(4)
  ),
  writeBudget: intOption("write-budget", 1).pipe(
    Options.withDescription(
      "keys deleted per second at most (default: COS's documented write limit for the region, 30000 in mainland" +
        " public regions, 3000 elsewhere; raise it only if your bucket's quota is higher)"
    ),
    Options.optional
  ),
  maxDeletes: intOption("max-deletes", 0).pipe(
    Options.withDescription("stop before deleting more than N keys (exit status 3 when the cap stops the run)"),
    Options.optional
  ),
  maxDeleteSize: sizeOption("max-delete-size").pipe(
    Options.withDescription(
      "stop before deleting more than this many bytes: a byte count or a size (500MB, 1.5GB, 10GiB); the key that" +
        " would cross it and the rest are left in place (exit status 3 when the cap stops the run)"
    ),
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
        " parts are billed as storage; --older-than/--newer-than count from their initiation, --include/--exclude match their" +
        " keys, --max-deletes caps the aborts; completed objects are not touched"
    )
  ),
  progress: progressOption
}

type Args = Command.Command.ParseConfig<typeof purgeOptions>

/** COS answers that mean the command line (or the environment) is wrong, not the run (docs/protocol.md §5). */
const isTerminal = () => process.stdin.isTTY === true && process.stderr.isTTY === true

/** Exit 2 with a message on stderr. */
const usageError = (message: string) =>
  Effect.zipRight(Console.error(`cos-retention purge: ${message}`), new ExitCode({ code: 2 }))

const describeFilters = (args: Args, prefix: string) => {
  const parts = [`prefix ${Display.quote(prefix)}`]
  if (args.incompleteUploads) parts.push("incomplete multipart uploads")
  const what = args.incompleteUploads ? "started" : "last modified"
  if (Option.isSome(args.olderThan)) {
    const v = args.olderThan.value
    parts.push(v instanceof Date ? `${what} before ${v.toISOString()}` : `older than ${formatDuration(v)}`)
  }
  if (Option.isSome(args.newerThan)) {
    const v = args.newerThan.value
    parts.push(v instanceof Date ? `${what} after ${v.toISOString()}` : `newer than ${formatDuration(v)}`)
  }
  if (args.include.length > 0) parts.push(`including ${args.include.map(Display.displayKey).join(", ")}`)
  if (args.exclude.length > 0) parts.push(`excluding ${args.exclude.map(Display.displayKey).join(", ")}`)
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
export const describeFailure = (e: CosError.CosError | KeyList.KeyListError): string => {
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

const printHuman = (s: Deletion.Summary, error?: CosError.CosError | KeyList.KeyListError) =>
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
    else if (s.stoppedBy !== undefined) {
      lines.push(
        `stopped early: ${s.stoppedBy}` +
          (s.left === undefined
            ? ""
            : ` (the cap left ${s.left.keys} matched keys, ${bytes(s.left.bytes)}, in place)`)
      )
    }
    if (s.sample.length > 0) lines.push(`sample: ${s.sample.slice(0, 10).map(Display.displayKey).join(", ")}`)
    for (const f of s.failures.slice(0, 10)) {
      const id = f.uploadId !== undefined
        ? ` [upload ${f.uploadId}]`
        : f.versionId === undefined
        ? ""
        : ` [version ${f.versionId}]`
      lines.push(`failed: ${Display.displayKey(f.key)}${id}: ${f.code} ${f.message}`)
    }
    for (const n of s.notes) lines.push(`note: ${n}`)
    yield* Console.log(lines.join("\n"))
  })

/** What the summary shows of its samples (a run with --audit-log keeps more failures, for the log). */
const shownSample = 20

const printSummary = (args: Args, summary: Deletion.Summary, error?: CosError.CosError | KeyList.KeyListError) => {
  const s = summary.sample.length > shownSample || summary.failures.length > shownSample
    ? { ...summary, sample: summary.sample.slice(0, shownSample), failures: summary.failures.slice(0, shownSample) }
    : summary
  return args.json
    ? Console.log(JSON.stringify(error === undefined ? s : { ...s, error: error.message }))
    : Effect.zipRight(
      printHuman(s, error),
      error === undefined ? Effect.void : Console.error(`error: ${error.message}`)
    )
}

/** Filters that need a listing (ages, sizes, globs, a prefix): they do not apply to an explicit list of keys. */
const listingFlags = [
  "prefix",
  "include",
  "exclude",
  "older-than",
  "newer-than",
  "max-delete-size",
  "min-size",
  "max-size",
  "versions",
  "list-concurrency",
  "allow-whole-bucket"
] as const

const keysNote = "COS reports a key that does not exist as deleted: with --keys-from, `deleted` counts the keys COS " +
  "accepted, and some of them may have been absent already (telling them apart would need a HEAD per key)"

/** Where the keys come from: a prefix to list, or a list already checked (a file, or standard input spooled). */
type Source =
  | { readonly _tag: "prefix"; readonly prefix: string }
  | { readonly _tag: "keys"; readonly path: string; readonly label: string; readonly list: KeyList.Checked }

const keysSource = (from: string) =>
  Effect.gen(function*() {
    if (from === "-") {
      if (process.stdin.isTTY === true) {
        return yield* usageError(
          "--keys-from -: standard input is a terminal; pipe the list in (or name a file with --keys-from FILE)"
        )
      }
      const stdin = yield* Effect.try({
        try: () => NodeFs.fstatSync(0),
        catch: (e) => (e as Error).message
      }).pipe(Effect.catchAll((reason) =>
        usageError(`--keys-from -: cannot read standard input (${reason}); pipe the list in or name a file`)
      ))
      if (stdin.isDirectory()) {
        return yield* usageError(
          "--keys-from -: standard input is a directory, not a list of keys; pipe the list in or name a file"
        )
      }
      const spooled = yield* KeyList.spool(process.stdin, "- (standard input)")
      return { _tag: "keys", path: spooled.path, label: "standard input", list: spooled } as const
    }
    const stat = yield* Effect.try({
      try: () =>
        NodeFs.statSync(from),
      catch: (e) => (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message
    }).pipe(Effect.catchAll((reason) =>
      usageError(`--keys-from ${from}: ${reason} (expected a file of keys, or - for standard input)`)
    ))
    if (!stat.isFile() && !stat.isFIFO()) {
      return yield* usageError(`--keys-from ${from}: not a file (expected a file of keys, or - for standard input)`)
    }
    if (stat.isFIFO()) {
      // A named pipe can be read only once: spooled like standard input.
      const spooled = yield* KeyList.spool(NodeFs.createReadStream(from), from)
      return { _tag: "keys", path: spooled.path, label: from, list: spooled } as const
    }
    const list = yield* KeyList.check(from)
    return { _tag: "keys", path: from, label: from, list } as const
  }).pipe(
    Effect.catchTag("KeyListError", (e) =>
      usageError(e.message))
  )

const handler = (args: Args) =>
  Effect.gen(function*() {
    const keysFrom = args.keysFrom
    if (Option.isSome(keysFrom)) {
      const conflicting = listingFlags.filter((f) => given(process.argv, f))
      if (conflicting.length > 0) {
        return yield* usageError(
          `--keys-from names the keys to delete itself; ${conflicting.map((f) => `--${f}`).join(", ")} ` +
            `select keys from a listing and cannot be combined with it (give versions in the list as JSON lines ` +
            `{"key": "...", "versionId": "..."})`
        )
      }
    } else if (Option.isNone(args.prefix)) {
      return yield* usageError(
        "--prefix is required: the key prefix to delete under (or --keys-from FILE to delete an explicit list of keys)"
      )
    }
    const prefix = Option.getOrElse(args.prefix, () => "")
    if (Option.isNone(keysFrom) && prefix === "" && !args.allowWholeBucket) {
      return yield* usageError("an empty --prefix selects every key of the bucket; add --allow-whole-bucket to mean it")
    }
    if (args.incompleteUploads) {
      const conflicting = [
        Option.isSome(args.minSize) ? "--min-size" : undefined,
        Option.isSome(args.maxSize) ? "--max-size" : undefined,
        Option.isSome(args.maxDeleteSize) ? "--max-delete-size" : undefined,
        args.versions !== "current" ? "--versions" : undefined
      ].filter((f) => f !== undefined)
      if (conflicting.length > 0) {
        return yield* usageError(
          `${conflicting.join(", ")} cannot be combined with --incomplete-uploads: incomplete uploads have no size ` +
            "or versions; select them by --prefix, --include/--exclude, --older-than and --newer-than"
        )
      }
    }
    for (const [flag, globs] of [["--include", args.include], ["--exclude", args.exclude]] as const) {
      for (const glob of globs) {
        const problem = Deletion.globProblem(glob)
        if (problem !== undefined) {
          return yield* usageError(`${flag} ${Display.quote(glob)} is not a valid glob: ${problem}`)
        }
      }
    }
    if (Option.isSome(args.minSize) && Option.isSome(args.maxSize) && args.minSize.value > args.maxSize.value) {
      return yield* usageError(
        `--min-size (${args.minSize.value} bytes) is more than --max-size (${args.maxSize.value} bytes), so nothing` +
          " could match"
      )
    }
    if (Option.isSome(args.olderThan) && Option.isSome(args.newerThan)) {
      const now = Date.now()
      const problem = Units.emptyWindow(
        { olderThan: Units.boundAt(args.olderThan.value, now), newerThan: Units.boundAt(args.newerThan.value, now) },
        { olderThan: "--older-than", newerThan: "--newer-than" }
      )
      if (problem !== undefined) return yield* usageError(problem)
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
    }).pipe(Layer.provide(CosHttpClient.layer()))

    // The list is checked (standard input spooled) before anything else happens: a bad line deletes nothing.
    const source: Source = Option.isSome(keysFrom)
      ? yield* keysSource(keysFrom.value)
      : { _tag: "prefix", prefix }
    const auditLog = Option.isSome(args.auditLog)
      ? yield* AuditLog.open(args.auditLog.value, args.bucket).pipe(
        Effect.catchAll((message) => usageError(message))
      )
      : undefined

    const progress = reporter(args.progress, terminal)
    const runOptions: Deletion.RunOptions = {
      bucket: args.bucket,
      concurrency: args.concurrency,
      listConcurrency: args.listConcurrency,
      writeBudget: Option.getOrUndefined(args.writeBudget),
      maxDeletes: Option.getOrUndefined(args.maxDeletes),
      allowWholeBucket: args.allowWholeBucket,
      onDeleted: auditLog?.deleted,
      ...progress.options
    }
    const options: Deletion.PurgeOptions = {
      ...runOptions,
      prefix,
      include: args.include.length > 0 ? args.include : undefined,
      exclude: args.exclude.length > 0 ? args.exclude : undefined,
      olderThan: Option.getOrUndefined(args.olderThan),
      newerThan: Option.getOrUndefined(args.newerThan),
      maxDeleteSize: Option.getOrUndefined(args.maxDeleteSize),
      minSize: Option.getOrUndefined(args.minSize),
      maxSize: Option.getOrUndefined(args.maxSize),
      versions: args.versions,
      // Uploads are listed page after page: the default of 4 would only add a note.
      listConcurrency: args.incompleteUploads ? 1 : args.listConcurrency,
      target: args.incompleteUploads ? "incompleteUploads" : "objects"
    }
    let last: Deletion.Summary | undefined
    const onSummary = (s: Deletion.Summary) =>
      Effect.suspend(() => {
        last = source._tag === "keys" ? { ...s, notes: [...s.notes, keysNote] } : s
        return Effect.void
      })
    // every failed key goes to --audit-log as its outcome is known (not in a dry run: nothing is sent)
    const onFailed = (dryRun: boolean) => dryRun ? undefined : auditLog?.failed
    const run = (dryRun: boolean) =>
      Effect.map(
        (source._tag === "prefix"
          ? Deletion.purge({ ...options, dryRun, onSummary, onFailed: onFailed(dryRun) })
          : Deletion.deleteKeys(
            // The list was checked: only a file changed since can fail here (the run then ends with that error).
            KeyList.stream(source.path, source.list.format, source.label),
            { ...runOptions, dryRun, onSummary, onFailed: onFailed(dryRun) }
          )).pipe(
            Effect.ensuring(progress.done),
            // `purge` exports no traces: the spans of every request and batch would be built for nobody
            Effect.withTracerEnabled(false)
          ),
        () => last!
      )
    const description = source._tag === "prefix"
      ? describeFilters(args, prefix)
      : `${source.list.entries} keys listed in ${source.label}`

    const program = Effect.gen(function*() {
      if (!args.dryRun && !args.yes) {
        // On a terminal: show the plan, then ask.
        const plan = yield* run(true)
        yield* printHuman(plan)
        if (plan.matched === 0) {
          if (args.json) yield* printSummary(args, plan)
          return plan
        }
        const go = yield* Prompt.confirm({
          message: (args.incompleteUploads
            ? `Abort these ${plan.matched} incomplete uploads in ${args.bucket}? `
            : `Delete these ${plan.matched} keys (${bytes(plan.matchedBytes)}) from ${args.bucket}? `) +
            `(${description})`,
          initial: false
        })
        if (!go) {
          yield* Console.error("nothing deleted")
          if (args.json) yield* printSummary(args, plan)
          return plan
        }
      }
      const summary = yield* run(args.dryRun)
      yield* printSummary(args, summary)
      return summary
    }).pipe(Effect.provide(clientLayer))

    const summary = yield* program.pipe(
      Effect.catchAll((e: CosError.CosError | KeyList.KeyListError | { readonly _tag: "QuitException" }) => {
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
    if (summary.stoppedBy === "maxDeletes" || summary.stoppedBy === "maxDeleteSize") {
      return yield* new ExitCode({ code: 3 })
    }
  }).pipe(Effect.scoped)

export const purge = Command.make("purge", purgeOptions, handler).pipe(
  Command.withDescription(
    "Delete every key under a prefix that the filters select (or, with --keys-from, exactly the keys of a list): " +
      "listed in parallel, deleted in batches of 1000, governed, exact. With --incomplete-uploads: abort the " +
      "incomplete multipart uploads the filters select instead. Credentials from COS_SECRET_ID, COS_SECRET_KEY " +
      "(and COS_SECURITY_TOKEN). " +
      "Exit status: 0 everything matched was deleted (or planned); 1 some keys failed or the run failed; 2 bad " +
      "arguments or configuration; 3 stopped by a cap, --max-deletes or --max-delete-size (the rest is left in " +
      "place); 130 (Ctrl-C, " +
      "SIGINT) or 143 (SIGTERM) interrupted before everything matched was " +
      "deleted (batches in flight finish first and the summary is printed)."
  )
)
