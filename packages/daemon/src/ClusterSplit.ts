/**
 * Split runs (`parallelism: N` on a rule, cluster mode only): one fire time of one huge rule run by several runners.
 *
 * - The rule's owner (the runner holding the rule's entity, under the rule's advisory lock, as for any fire time)
 *   cuts the rule's key range into N contiguous ranges `(after, through]` of about equal key counts
 *   (`KeyRange.split`: one listing of the prefix with the parallel lister, whose ranges partition the key space
 *   exactly; the last range is open, so keys written meanwhile are covered too). It records one run (the history's
 *   one row for the fire time) and the plan, one row per chunk in `cos_retention_split_chunks`, in one transaction.
 * - Each chunk is a persisted message, `run`, to a chunk entity (`cos-retention/chunk`, entity id
 *   `rule/scheduledAt/chunk`) whose primary key is rule + scheduled time + chunk: the entity ids hash to different
 *   shards, so the chunks spread over the runners holding them; a chunk whose runner dies has no reply and is
 *   delivered again to its shard's next holder, which resumes it from the chunk's own checkpoint. Sent again (the
 *   rule's owner died and the fire time came back to another), a chunk is stored once: its stored reply, or its
 *   running delivery, answers.
 * - A chunk runs the deletion engine over its range only (startAfter = its checkpoint or lower bound, the listing
 *   cut at its upper bound), writing intent and confirmations to the audit under the parent run's id (so the audit
 *   has one row per key and run, whichever chunk and attempt deleted it). A chunk delivered again first settles the
 *   pending rows of its range that its dead attempt left (HEAD: gone is deleted, present is listed again). A chunk
 *   holds an advisory lock of its own: two runners never run one chunk at once.
 * - Writes of every run of the cluster come out of the bucket's one shared budget (ClusterBudget).
 * - The owner waits for every chunk's reply, then records the run's totals (deletions counted from the audit) and
 *   its outcome: succeeded when every chunk did; failed, naming the first failed chunk and its range, when one did.
 *   The owner stopping (SIGTERM) records the run interrupted; the fire time's next owner takes the same run up again
 *   (the same row), collects the chunks that went on meanwhile, and finishes it.
 *
 * A dry-run rule is not split (its plan runs as one run on the rule's owner).
 */
import type { Deletion, KeyRange } from "@effect-cos/core"
import { Governor } from "@effect-cos/core"
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as Entity from "@effect/cluster/Entity"
import * as Rpc from "@effect/rpc/Rpc"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as PrimaryKey from "effect/PrimaryKey"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as ClusterBudget from "./ClusterBudget.js"
import { type Rule, Settings } from "./Config.js"
import * as Metrics from "./Metrics.js"
import { Purger } from "./Purger.js"
import { askCos, Runner } from "./Runner.js"
import { emptyCounts, type RunCounts, type RunStatus, State, type Trigger } from "./State.js"
import * as StateStore from "./StateStore.js"
import { Status } from "./Status.js"
import * as Tracing from "./Tracing.js"

/**
 * Postgres connections a replica may hold for chunk locks at once: every chunk of every enabled split rule (in the
 * worst case all on this replica), plus one for the parent's statements while it waits.
 */
export const connectionsNeeded = (rules: ReadonlyArray<Rule>): number =>
  rules.filter((r) => r.enabled && r.parallelism > 1 && !r.dryRun).reduce((n, r) => n + r.parallelism + 1, 0)

export const migrate = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* StateStore.withSessionLock(
    sql,
    "cos-retention split migrations",
    Effect.gen(function*() {
      yield* sql`CREATE TABLE IF NOT EXISTS cos_retention_split_chunks (
        rule TEXT NOT NULL,
        scheduled_at BIGINT NOT NULL,
        chunk INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        run_id BIGINT NOT NULL REFERENCES runs (id),
        entity_id TEXT NOT NULL,
        after_key TEXT NOT NULL,
        through_key TEXT,
        checkpoint TEXT,
        status TEXT NOT NULL CHECK (status IN ('planned', 'running', 'interrupted', 'succeeded', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        runner TEXT,
        listed BIGINT NOT NULL DEFAULT 0,
        matched BIGINT NOT NULL DEFAULT 0,
        failed BIGINT NOT NULL DEFAULT 0,
        skipped BIGINT NOT NULL DEFAULT 0,
        throttled BIGINT NOT NULL DEFAULT 0,
        error TEXT,
        PRIMARY KEY (rule, scheduled_at, chunk)
      )`
      yield* ClusterBudget.migrate
    })
  )
}).pipe(Effect.orDie)

/** Whether a fire time of a rule has a split run's plan (its chunks go on from their own checkpoints). */
export const hasPlan = (rule: string, scheduledAt: number) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql`SELECT 1 FROM cos_retention_split_chunks WHERE rule = ${rule} AND scheduled_at = ${scheduledAt} LIMIT 1`
  ).pipe(
    Effect.map((rows) => rows.length > 0),
    Effect.orDie
  )

/** One chunk of one fire time of one rule. */
export class Chunk extends Schema.Class<Chunk>("@effect-cos/daemon/ClusterSplit/Chunk")({
  rule: Schema.String,
  scheduledAt: Schema.Number,
  chunk: Schema.Number
}) {
  [PrimaryKey.symbol]() {
    return `${this.rule}/${this.scheduledAt}/${this.chunk}`
  }
}

export const ChunkResult = Schema.Struct({
  status: Schema.Literal("succeeded", "failed"),
  runner: Schema.String,
  error: Schema.NullOr(Schema.String)
})

export const ChunkEntity = Entity.make("cos-retention/chunk", [
  // uninterruptible from the client's side: the owner waiting for a chunk never interrupts it. An interrupt the
  // engine does not take for a shard move or a shutdown (the owner's own fiber interrupted: its rule lock lost, a
  // sibling chunk's wait failing) would otherwise reach the chunk, which would stop and store "interrupted" as its
  // reply, and every later attempt at the run (the same message, the same stored reply) would fail with it. A
  // chunk ends on its own runner: done, failed, or that runner stopping or losing the chunk's shard
  Rpc.make("run", { payload: Chunk, success: ChunkResult })
    .annotate(ClusterSchema.Persisted, true)
    .annotate(ClusterSchema.Uninterruptible, "client"),
  // not persisted: which runner holds an entity id now (placement at planning time)
  Rpc.make("where", { success: Schema.String })
])

/**
 * A chunk's entity id: `rule/scheduledAt/chunk`, with `~N` appended when planning picked another id to put the chunk
 * on a less loaded runner (ids hash to shards, shards belong to runners). Recorded in the plan: a chunk sent again
 * goes to the same entity, where its stored message is.
 */
const entityIdFor = (chunk: Chunk, salt: number) =>
  `${chunk.rule}/${chunk.scheduledAt}/${chunk.chunk}` + (salt === 0 ? "" : `~${salt}`)

/** Entity ids tried per chunk when placing it. */
const placementTries = 24

interface ChunkRow {
  readonly chunk: number
  readonly entity_id: string
  readonly chunks: number
  readonly run_id: number | string
  readonly after_key: string
  readonly through_key: string | null
  readonly checkpoint: string | null
  readonly status: string
  readonly error: string | null
}

const rangeText = (row: { readonly after_key: string; readonly through_key: string | null }) =>
  `keys after ${JSON.stringify(row.after_key)} ` +
  (row.through_key === null ? "to the end" : `through ${JSON.stringify(row.through_key)}`)

const failureText = (s: Deletion.Summary) => {
  const first = s.failures[0]
  return `${s.failed} key${s.failed === 1 ? "" : "s"} could not be deleted` +
    (first === undefined ? "" : ` (first: ${first.key}: ${first.code} ${first.message})`)
}

/** The chunk entity: runs one chunk on the runner holding it. */
export const ChunkEntityLive = (runnerLabel: string) =>
  ChunkEntity.toLayer(
    Effect.gen(function*() {
      const settings = yield* Settings
      const state = yield* State
      const purger = yield* Purger
      const sql = yield* SqlClient.SqlClient
      // tracing off: a chunk's engine builds no spans (as Runner.run)
      const exporting = yield* Tracing.Exporting

      const where = (c: Chunk) => sql`rule = ${c.rule} AND scheduled_at = ${c.scheduledAt} AND chunk = ${c.chunk}`

      /** Pending audit rows of this run in this chunk's range (left by an attempt that died): settled by a HEAD. */
      const settleRange = (rule: Rule, row: ChunkRow, runId: number) =>
        Effect.gen(function*() {
          // COLLATE "C": byte order, which for UTF-8 is the order COS lists keys in. The attempt's unresolved
          // intents first become pending rows (a request's keys all come from one chunk: its first key places it).
          const first = sql`(i.keys::jsonb->0->>0)`
          yield* state.expandIntents(sql`i.run_id = ${runId} AND ${first} COLLATE "C" > ${row.after_key} COLLATE "C"
            AND ${row.through_key === null ? sql`true` : sql`${first} COLLATE "C" <= ${row.through_key} COLLATE "C"`}`)
          const pending = yield* sql<{ id: number | string; bucket: string; key: string; version_id: string }>`
            SELECT id, bucket, key, version_id FROM audit WHERE run_id = ${runId} AND state = 'pending'
              AND key COLLATE "C" > ${row.after_key} COLLATE "C"
              AND ${row.through_key === null ? sql`true` : sql`key COLLATE "C" <= ${row.through_key} COLLATE "C"`}`
            .pipe(Effect.orDie)
          if (pending.length === 0) return
          const { gone, present } = yield* askCos(
            purger,
            rule,
            pending.map((p) => ({ id: Number(p.id), bucket: p.bucket, key: p.key, versionId: p.version_id })),
            exporting
          )
          yield* state.settlePending(gone, present)
          yield* Effect.logInfo(
            `settled ${pending.length} pending audit rows of this chunk's earlier attempt: ${gone.length} deleted`
          )
        })

      const runChunk = (rule: Rule, c: Chunk, row: ChunkRow) =>
        Effect.gen(function*() {
          const runId = Number(row.run_id)
          yield* sql`UPDATE cos_retention_split_chunks SET status = 'running', attempts = attempts + 1,
            runner = ${runnerLabel}, error = NULL WHERE ${where(c)}`.pipe(Effect.orDie)
          yield* settleRange(rule, row, runId)
          const ctx = { id: runId, rule: rule.name, bucket: rule.bucket }
          const governor = yield* ClusterBudget.make(rule)
          const startAfter = row.checkpoint ?? row.after_key
          yield* Effect.logInfo(
            `chunk ${c.chunk + 1} of ${row.chunks} started (${rangeText(row)}` +
              (row.checkpoint === null ? ")" : `, resuming after ${JSON.stringify(row.checkpoint)})`)
          )
          const record = (
            summary: Deletion.Summary,
            status: "interrupted" | "succeeded" | "failed",
            error: string | null
          ) =>
            sql`UPDATE cos_retention_split_chunks SET status = ${status}, error = ${error},
              listed = listed + ${summary.listed}, matched = matched + ${summary.matched},
              failed = ${summary.failed}, skipped = skipped + ${summary.skipped},
              throttled = throttled + ${summary.throttled} WHERE ${where(c)}`.pipe(Effect.orDie)
          let last: Deletion.Summary | undefined
          const exit = yield* purger.purge({
            rule,
            dryRun: false,
            startAfter: startAfter === "" ? undefined : startAfter,
            through: row.through_key ?? undefined,
            gracePeriod: settings.gracePeriod,
            hooks: {
              onSend: (objects) => state.recordIntent(ctx, objects),
              onDeleted: (deleted, sent) =>
                Effect.zipRight(
                  state.confirmDeleted(ctx, deleted, sent),
                  Metrics.recordDeleted(rule.name, deleted.length, deleted.reduce((n, d) => n + (d.size ?? 0), 0))
                ),
              onCheckpoint: (afterKey) =>
                sql`UPDATE cos_retention_split_chunks SET checkpoint = ${afterKey} WHERE ${where(c)}`.pipe(
                  Effect.orDie
                ),
              onSummary: (summary) => Effect.sync(() => (last = summary))
            }
          }).pipe(
            (engine) => exporting ? engine : Effect.withTracerEnabled(engine, false),
            Effect.provideService(Governor.Governor, governor),
            // interrupted (this runner stops): the chunk stays unanswered and goes to its shard's next holder
            Effect.onInterrupt(() =>
              last === undefined
                ? sql`UPDATE cos_retention_split_chunks SET status = 'interrupted' WHERE ${where(c)}`.pipe(Effect.orDie)
                : record(last, "interrupted", null)
            ),
            Effect.exit
          )
          if (Exit.isSuccess(exit)) {
            const summary = exit.value
            if (summary.stoppedBy === "interrupted") {
              yield* record(summary, "interrupted", null)
              return yield* Effect.interrupt
            }
            const error = summary.failed > 0 ? failureText(summary) : null
            if (summary.failed > 0) yield* Metrics.recordFailed(rule.name, summary.failed)
            yield* record(summary, error === null ? "succeeded" : "failed", error)
            return { status: error === null ? "succeeded" as const : "failed" as const, runner: runnerLabel, error }
          }
          if (Exit.isInterrupted(exit)) return yield* Effect.interrupt
          const error = Option.match(Cause.failureOption(exit.cause), {
            onSome: (e) => e.message,
            onNone: () => `unexpected error: ${Cause.squash(exit.cause)}`
          })
          if (last !== undefined) yield* record(last, "failed", error)
          else {
            yield* sql`UPDATE cos_retention_split_chunks SET status = 'failed', error = ${error} WHERE ${where(c)}`
              .pipe(Effect.orDie)
          }
          return { status: "failed" as const, runner: runnerLabel, error }
        })

      return {
        where: () => Effect.succeed(runnerLabel),
        run: ({ payload: c }) =>
          Effect.gen(function*() {
            const rule = settings.rules.find((r) => r.name === c.rule)
            if (rule === undefined) {
              return {
                status: "failed" as const,
                runner: runnerLabel,
                error: `the rule is not in the configuration of runner ${runnerLabel}`
              }
            }
            // another runner still runs this chunk (it lost its shard without noticing yet): wait for it to stop
            // rather than answer while it deletes
            return yield* StateStore.waitForSessionLock(
              sql,
              `cos-retention chunk ${c.rule}/${c.scheduledAt}/${c.chunk}`,
              Duration.sum(settings.gracePeriod, Duration.seconds(10)),
              "the chunk is still running on another runner; waiting",
              Effect.gen(function*() {
                const rows = yield* sql<ChunkRow>`SELECT * FROM cos_retention_split_chunks WHERE ${where(c)}`.pipe(
                  Effect.orDie
                )
                const row = rows[0]
                if (row === undefined) {
                  return { status: "failed" as const, runner: runnerLabel, error: "no such chunk in the run's plan" }
                }
                if (row.status === "succeeded" || row.status === "failed") {
                  return { status: row.status as "succeeded" | "failed", runner: runnerLabel, error: row.error }
                }
                return yield* runChunk(rule, c, row).pipe(
                  Effect.catchAllDefect((defect) =>
                    Effect.gen(function*() {
                      const error = `the chunk crashed: ${Cause.pretty(Cause.die(defect))}`
                      yield* Effect.logError(error)
                      yield* sql`UPDATE cos_retention_split_chunks SET status = 'failed', error = ${error}
                        WHERE ${where(c)}`.pipe(Effect.ignore)
                      return { status: "failed" as const, runner: runnerLabel, error }
                    })
                  )
                )
              })
            )
          }).pipe(
            Effect.orDie,
            Effect.annotateLogs({
              rule: c.rule,
              scheduledAt: new Date(c.scheduledAt).toISOString(),
              chunk: c.chunk,
              runner: runnerLabel
            })
          )
      }
    }),
    { concurrency: "unbounded", maxIdleTime: "1 hour" }
  )

export interface SplitOutcome {
  readonly runId: number | null
  readonly status: RunStatus | "crashed"
}

/**
 * The rule owner's part of a split run (called under the rule's advisory lock): plan (or take up the plan of an
 * earlier attempt at this fire time), send every chunk, wait for them, record the run's totals and outcome.
 */
export const runSplit = (rule: Rule, options: {
  readonly scheduledAt: number
  readonly trigger: Trigger
  readonly runner: string
}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const state = yield* State
    const status = yield* Status
    const runner = yield* Runner
    const purger = yield* Purger
    const makeClient = yield* ChunkEntity.client
    /**
     * Entity ids for the chunks, spread over the runners: for each chunk, the first of a few candidate ids whose holder
     * (asked with `where`) runs the fewest chunks so far among the healthy runners. A runner that cannot be asked
     * in time is skipped; the first id is the fallback.
     */
    const place = (name: string, scheduledAt: number, count: number) =>
      Effect.gen(function*() {
        const runners = yield* sql<{ address: string }>`SELECT address FROM cluster_runners WHERE healthy`.pipe(
          Effect.orElseSucceed(() => [] as ReadonlyArray<{ address: string }>)
        )
        const load = new Map<string, number>(runners.map((r) => [r.address, 0]))
        const ids: Array<string> = []
        for (let i = 0; i < count; i++) {
          const chunk = new Chunk({ rule: name, scheduledAt, chunk: i })
          const least = Math.min(...load.values(), Number.POSITIVE_INFINITY)
          let chosen: { id: string; runner: string | undefined } = { id: entityIdFor(chunk, 0), runner: undefined }
          for (let salt = 0; salt < placementTries && load.size > 1; salt++) {
            const id = entityIdFor(chunk, salt)
            const holder = yield* makeClient(id).where(undefined).pipe(Effect.timeout("5 seconds"), Effect.option)
            if (Option.isSome(holder) && (load.get(holder.value) ?? Number.POSITIVE_INFINITY) <= least) {
              chosen = { id, runner: holder.value }
              break
            }
            if (salt === 0 && Option.isSome(holder)) chosen = { id, runner: holder.value }
          }
          if (chosen.runner !== undefined) load.set(chosen.runner, (load.get(chosen.runner) ?? 0) + 1)
          ids.push(chosen.id)
        }
        return ids
      })
    const plan = sql<ChunkRow>`SELECT * FROM cos_retention_split_chunks
      WHERE rule = ${rule.name} AND scheduled_at = ${options.scheduledAt} ORDER BY chunk`.pipe(Effect.orDie)

    let chunks = yield* plan
    let runId: number
    if (chunks.length > 0) {
      runId = Number(chunks[0]!.run_id)
      const run = yield* state.getRun(runId)
      if (run !== undefined && (run.status === "succeeded" || run.status === "failed")) {
        return { runId, status: run.status } satisfies SplitOutcome
      }
      // an earlier owner of this fire time stopped or died (its run was recorded interrupted): the same run goes on
      yield* sql`UPDATE runs SET status = 'running', ended_at = NULL, error = NULL, runner = ${options.runner}
        WHERE id = ${runId}`.pipe(Effect.orDie)
      yield* Effect.logInfo(`taking up split run ${runId} of this fire time (${chunks.length} chunks)`)
    } else {
      // as before any run: pending rows of ended runs of this rule are settled first
      // a run that cannot start is recorded failed with its fire time, as one run would be (Runner.run): the fire
      // time is decided and `history` says why
      // the run's row, written once the run starts or is refused
      const startRun = state.startRun({
        rule: rule.name,
        trigger: options.trigger,
        dryRun: false,
        scheduledAt: options.scheduledAt,
        runner: options.runner
      })
      const refuse = (error: string) =>
        Effect.gen(function*() {
          const record = yield* startRun
          yield* state.finishRun(record.id, "failed", emptyCounts, error)
          yield* Metrics.recordRun(rule.name, "failed", 0)
          yield* Effect.logError(`split run failed: ${error}`).pipe(Effect.annotateLogs({ run: record.id }))
          return { runId: record.id, status: "failed" } satisfies SplitOutcome
        })
      const reconciled = yield* Effect.either(runner.reconcile(rule))
      if (reconciled._tag === "Left") {
        return yield* refuse(
          `pending audit rows of an interrupted run could not be reconciled (${reconciled.left.message}); ` +
            "the rule does not run until they are"
        )
      }
      const ranges = yield* Effect.either(purger.split(rule, rule.parallelism))
      if (ranges._tag === "Left") {
        return yield* refuse(`could not split the rule's key range: ${ranges.left.message}`)
      }
      const record = yield* startRun
      runId = record.id
      const placed = yield* place(rule.name, options.scheduledAt, ranges.right.length)
      yield* Effect.forEach(ranges.right, (r: KeyRange.Range, i) =>
        sql`INSERT INTO cos_retention_split_chunks ${
          sql.insert({
            rule: rule.name,
            scheduled_at: options.scheduledAt,
            chunk: i,
            chunks: ranges.right.length,
            run_id: runId,
            entity_id: placed[i]!,
            after_key: r.after,
            through_key: r.through ?? null,
            status: "planned"
          })
        }`, { discard: true }).pipe(sql.withTransaction, Effect.orDie)
      chunks = yield* plan
      yield* Effect.logInfo(`split run ${runId} started: ${chunks.length} chunks`).pipe(
        Effect.annotateLogs({ run: runId, chunks: chunks.length })
      )
    }
    const startedAt = (yield* state.getRun(runId))?.startedAt ?? (yield* Clock.currentTimeMillis)
    yield* status.update(rule.name, (live) => ({ ...live, current: { runId, startedAt } }))
    yield* Metrics.setRunning(rule.name, true)

    const finish = (outcome: Exclude<RunStatus, "running">, error: string | undefined) =>
      Effect.gen(function*() {
        const totals = yield* sql<Record<string, number | string>>`SELECT
            coalesce(sum(listed), 0) AS listed, coalesce(sum(matched), 0) AS matched,
            coalesce(sum(failed), 0) AS failed, coalesce(sum(skipped), 0) AS skipped,
            coalesce(sum(throttled), 0) AS throttled,
            (SELECT count(*) FROM audit WHERE run_id = ${runId} AND state = 'deleted') AS deleted,
            (SELECT coalesce(sum(size), 0) FROM audit WHERE run_id = ${runId} AND state = 'deleted') AS bytes
          FROM cos_retention_split_chunks WHERE rule = ${rule.name} AND scheduled_at = ${options.scheduledAt}`.pipe(
          Effect.orDie
        )
        const t = totals[0] ?? {}
        const n = (k: string) =>
          Number(t[k] ?? 0)
        const counts: RunCounts = {
          listed: n("listed"),
          matched: n("matched"),
          deleted: n("deleted"),
          bytes: n("bytes"),
          failed: n("failed"),
          skipped: n("skipped"),
          throttled: n("throttled")
        }
        yield* state.finishRun(runId, outcome, counts, error)
        // every chunk answered: leftover intent rows are keys that were not deleted
        if (outcome !== "interrupted") {
          yield* state.dropPending(runId)
        }
        const now = yield* Clock.currentTimeMillis
        yield* Metrics.recordRun(rule.name, outcome, (now - startedAt) / 1000)
        if (outcome === "succeeded") {
          yield* Metrics.recordSuccessAt(rule.name, Math.floor(now / 1000))
        }
        yield* Metrics.setRunning(rule.name, false)
        yield* status.update(rule.name, (live) => ({ ...live, current: undefined }))
        const log = outcome === "succeeded"
          ? Effect.logInfo
          : outcome === "interrupted"
          ? Effect.logWarning
          : Effect.logError
        yield* log(`split run ${outcome}${error === undefined ? "" : `: ${error}`}`).pipe(
          Effect.annotateLogs({ run: runId, chunks: chunks.length, ...counts })
        )
      })

    const results = yield* Effect.forEach(chunks, (row) => {
      const chunk = new Chunk({ rule: rule.name, scheduledAt: options.scheduledAt, chunk: row.chunk })
      return makeClient(row.entity_id).run(chunk).pipe(
        Effect.tapError((e) =>
          Effect.logWarning(`could not deliver chunk ${row.chunk + 1} yet, retrying: ${e._tag}`)
        ),
        Effect.retry(Schedule.spaced("1 second")),
        Effect.map((result) => ({ row, result }))
      )
    }, { concurrency: "unbounded" }).pipe(
      Effect.onInterrupt(() =>
        finish(
          "interrupted",
          "interrupted (the replica coordinating this split run stopped); its chunks go on, and the fire time's " +
            "next owner collects them"
        )
      )
    )
    const failed = results.filter((r) => r.result.status === "failed")
    const first = failed[0]
    const error = first === undefined ?
      undefined :
      `${failed.length} of ${chunks.length} chunks failed; chunk ${first.row.chunk + 1} (${
        rangeText(first.row)
      }, on runner ${first.result.runner}): ${first.result.error ?? "failed"}`
    const outcome = first === undefined ? "succeeded" as const : "failed" as const
    yield* finish(outcome, error)
    return { runId, status: outcome } satisfies SplitOutcome
  })
