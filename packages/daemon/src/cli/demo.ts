/**
 * `cos-retention demo`: no cloud account needed. Starts the testkit's in-memory COS in process, seeds a realistic
 * bucket (application and web logs of mixed ages, database backups, temporary uploads) and a versioned one (reports
 * with several versions each), runs an example configuration once (an age rule with an exclusion, keepLatest per
 * group, a versions rule, a dry-run rule) and prints per rule what was kept and deleted. State is in memory: nothing
 * is left behind.
 */
import { CosFake, Store } from "@effect-cos/testkit"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Config from "../Config.js"
import * as Daemon from "../Daemon.js"
import * as Display from "../Display.js"
import * as Logging from "../Logging.js"
import { Purger } from "../Purger.js"
import { Runner } from "../Runner.js"
import { State } from "../State.js"
import { bytes, logFormatOption, table } from "./common.js"

const bucket = CosFake.testBucket
const archive = "archive-1250000000"
const day = 86_400_000
const hour = 3_600_000

/** The example configuration, as an operator would write it (credentials are the fake's, set below). */
export const demoConfig = `
cos:
  region: ${CosFake.testRegion}
state: ":memory:"
rules:
  - name: expire-logs
    bucket: ${bucket}
    prefix: logs/
    olderThan: 30d
    exclude: ["logs/audit/**"]        # audit logs are kept whatever their age
    schedule: "0 3 * * *"
    timezone: Asia/Shanghai
  - name: rotate-backups
    bucket: ${bucket}
    prefix: backups/
    keepLatest: { count: 7, groupBy: "^backups/([^/]+)/" }   # the 7 newest dumps of each database
    schedule: "30 3 * * *"
    timezone: Asia/Shanghai
  - name: prune-report-versions
    bucket: ${archive}
    prefix: reports/
    versions: noncurrent              # old versions only; current reports stay
    olderThan: 30d
    schedule: "0 4 * * 0"
  - name: tmp-uploads
    bucket: ${bucket}
    prefix: tmp/
    olderThan: 3d
    dryRun: true                      # plan only: nothing is deleted
    schedule: "*/30 * * * *"
`

const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10)

/** Seeds the fake and returns a short description of what is in it. */
const seed = (store: Store.Store, now: number) =>
  Effect.gen(function*() {
    // application logs: 120 days x 8 files (every 3 hours); web logs: 120 days x 4; audit logs: 120 days x 1
    const logs = (service: string, perDay: number, size: (i: number) => number) => {
      const step = 24 / perDay
      const age = (i: number) => Math.floor(i / perDay) * day + (i % perDay) * step * hour + 60_000
      return Store.seed(store, {
        bucket,
        count: 120 * perDay,
        keyFn: (i) => {
          const t = now - age(i)
          return `logs/${service}/${isoDate(t)}/${String(new Date(t).getUTCHours()).padStart(2, "0")}.log.gz`
        },
        ageMs: age,
        size
      })
    }
    yield* logs("app", 8, (i) => 200_000 + (i * 7919) % 300_000)
    yield* logs("nginx", 4, (i) => 1_000_000 + (i * 104_729) % 2_000_000)
    yield* logs("audit", 1, () => 50_000)
    // nightly database dumps: mysql and postgres for 45 days, redis for 10
    for (
      const [db, days, size] of [["mysql", 45, 80_000_000], ["postgres", 45, 120_000_000], [
        "redis",
        10,
        5_000_000
      ]] as const
    ) {
      yield* Store.seed(store, {
        bucket,
        count: days,
        keyFn: (i) => `backups/${db}/${isoDate(now - i * day - 2 * hour)}.dump.gz`,
        ageMs: (i) => i * day + 2 * hour,
        size: (i) => size + (i * 65_537) % 1_000_000
      })
    }
    // temporary uploads of the last 10 days
    yield* Store.seed(store, {
      bucket,
      count: 200,
      keyFn: (i) => `tmp/uploads/${String(i).padStart(4, "0")}.bin`,
      ageMs: (i) => (i % 10) * day + hour,
      size: 10_000
    })
    // a versioned bucket: 30 monthly reports, each rewritten 4 times (120, 75, 40 and 5 days ago)
    for (const age of [120, 75, 40, 5]) {
      yield* Store.seed(store, {
        bucket: archive,
        count: 30,
        keyFn: (i) => `reports/${String(i + 1).padStart(2, "0")}.pdf`,
        ageMs: age * day,
        size: (i) => 400_000 + i * 1000
      })
    }
  })

interface Snapshot {
  readonly keys: ReadonlyArray<string>
  readonly bytes: number
}

const snapshot = (store: Store.Store, rule: Config.Rule): Effect.Effect<Snapshot> =>
  rule.versions === "current"
    ? Effect.gen(function*() {
      const keys = yield* Store.keys(store, rule.bucket, rule.prefix)
      const all = yield* Store.versions(store, rule.bucket, rule.prefix)
      return { keys, bytes: all.filter((v) => v.isLatest && !v.isDeleteMarker).reduce((n, v) => n + v.size, 0) }
    })
    : Effect.map(Store.versions(store, rule.bucket, rule.prefix), (all) => ({
      keys: all.map((v) => `${v.key}?versionId=${v.versionId}${v.isDeleteMarker ? " (delete marker)" : ""}`),
      bytes: all.reduce((n, v) => n + v.size, 0)
    }))

const describeRule = (r: Config.Rule) =>
  [
    `${r.bucket}/${r.prefix}`,
    r.versions === "current" ? undefined : `versions: ${r.versions}`,
    r.olderThanText === undefined ? undefined : `older than ${r.olderThanText}`,
    r.newerThanText === undefined ? undefined : `newer than ${r.newerThanText}`,
    r.exclude.length > 0 ? `except ${r.exclude.join(", ")}` : undefined,
    r.keepLatest === undefined
      ? undefined
      : `all but the newest ${r.keepLatest.count}${r.keepLatest.groupBy === undefined ? "" : " per group"}`,
    r.dryRun ? "(dry run)" : undefined
  ].filter((x) => x !== undefined).join(", ")

const examples = (keys: ReadonlyArray<string>, n = 3) => {
  const shown = keys.slice(0, n).map(Display.displayKey).join(", ")
  return keys.length <= n ? shown : `${shown}, ... (${keys.length - n} more)`
}

/** Runs the demo; returns the rendered report. */
export const runDemo = Effect.gen(function*() {
  const started = Date.now()
  const parsed = Config.parse(demoConfig, { source: "demo", baseDir: "." })
  if (Either.isLeft(parsed)) return yield* Effect.die(parsed.left)
  const credentials: Config.CredentialsSpec = {
    ...parsed.right.rules[0]!.credentials,
    secretId: CosFake.testCredentials.secretId,
    secretKey: CosFake.testCredentials.secretKey
  }
  const settings: Config.RetentionConfig = {
    ...parsed.right,
    rules: parsed.right.rules.map((r) => ({ ...r, credentials }))
  }
  // The purger over the testkit's in-memory COS (provided too, to seed and inspect it); no network. The testkit is
  // loaded by this command only (Cli.ts imports each subcommand on demand).
  const purger = Purger.DefaultWithoutDependencies.pipe(Layer.provideMerge(CosFake.layer({
    buckets: [{ name: bucket, region: CosFake.testRegion }, {
      name: archive,
      region: CosFake.testRegion,
      versioning: "Enabled"
    }],
    credentials: [CosFake.testCredentials]
  })))
  const services = Daemon.servicesWith(purger).pipe(Layer.provide(Config.Settings.layer(settings)))
  return yield* Effect.gen(function*() {
    const { store } = yield* CosFake.CosFake
    const runner = yield* Runner
    const state = yield* State
    yield* seed(store, Date.now())
    const lines: Array<string> = []
    const rows: Array<ReadonlyArray<string | number>> = []
    for (const rule of settings.rules) {
      const before = yield* snapshot(store, rule)
      const outcome = yield* Effect.either(runner.run(rule, { trigger: "once", sampleSize: 3 }))
      const after = yield* snapshot(store, rule)
      const kept = new Set(after.keys)
      const deleted = before.keys.filter((k) => !kept.has(k))
      if (Either.isLeft(outcome)) {
        rows.push([rule.name, "failed", before.keys.length, 0, after.keys.length, ""])
        lines.push(`${rule.name}: failed: ${outcome.left.message}`)
        continue
      }
      const { run, summary } = outcome.right
      rows.push([
        rule.name,
        run.status + (run.dryRun ? " (dry run)" : ""),
        before.keys.length,
        rule.dryRun ? 0 : deleted.length,
        after.keys.length,
        bytes(before.bytes - after.bytes)
      ])
      lines.push(`${rule.name}: ${describeRule(rule)}`)
      if (rule.dryRun) {
        lines.push(
          `  would delete ${summary?.matched ?? 0} (${bytes(summary?.matchedBytes ?? 0)}): ${
            examples(summary?.sample ?? [])
          }`
        )
      } else {
        lines.push(`  deleted ${deleted.length}: ${examples(deleted)}`)
      }
      lines.push(`  kept    ${after.keys.length}: ${examples(after.keys)}`)
      for (const note of summary?.notes ?? []) lines.push(`  note: ${note}`)
    }
    const audit = yield* state.audit()
    const runs = yield* state.recentRuns({ limit: 100 })
    return [
      `cos-retention demo: an in-memory COS (no account, no network) seeded with ${bucket} (logs, backups, tmp)`,
      `and the versioned ${archive}; the example configuration's ${settings.rules.length} rules, each run once.`,
      "",
      table(["rule", "status", "before", "deleted", "kept", "freed"], rows),
      "",
      ...lines,
      "",
      `state (in memory): ${runs.length} runs recorded, ${audit.length} deleted keys/versions in the audit.`,
      `done in ${((Date.now() - started) / 1000).toFixed(1)} s. Next: examples/retention.yaml, docs/daemon.md.`
    ].join("\n")
  }).pipe(Effect.provide(services))
})

export const demo = Command.make(
  "demo",
  { logFormat: logFormatOption },
  ({ logFormat }) =>
    Effect.flatMap(runDemo, Console.log).pipe(
      Effect.provide(Logging.layer(logFormat)),
      // the demo's own report is the output; the runs' log lines only at warning level and above
      Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))
    )
).pipe(
  Command.withDescription(
    "Run an example configuration once against an in-memory COS; print what was kept and deleted."
  )
)
