/**
 * Cluster mode: with a Postgres state, every `cos-retention run` on the same configuration joins one cluster on
 * `@effect/cluster` (runners, shard locks and messages in Postgres through the engine's SQL storage; runners talk over
 * sockets at their `--runner-address`). The engine gives each rule to exactly one runner at a time (the rule's name is
 * an entity id, which lives on one shard, which one runner holds); we add:
 *
 * - A fire time is one persisted message, `fire`, addressed to the rule, with the scheduled time as its primary key
 *   and its delivery time: sending it twice (a scheduler that moved, a restart) stores it once, so each fire time of
 *   each rule runs at most once, and a message with no reply yet (its runner died or stopped) is delivered again to
 *   the rule's next owner: at least once. The run it starts resumes from the rule's checkpoint.
 * - One scheduler for the whole cluster (an engine singleton): croner computes each rule's next fire time in its time
 *   zone, and the message for it is sent when it is due. The replicas record when each was up (ClusterUptime), so
 *   the cluster as a whole follows one daemon's catch-up rules: a scheduler that takes over sends late the fire times
 *   that came due since the cluster's current up period began (they came due while the cluster was up, whoever held
 *   the scheduler); fire times due while no replica was up are never stored, and follow `catchUp` as for one daemon
 *   after downtime (the last of them runs once, if the rule asks; else the scheduler logs them skipped); a fire time
 *   whose run a downtime of the whole cluster cut is decided as one daemon decides at start (`afterDowntime`:
 *   resumed from a checkpoint, else skipped). The engine's own
 *   ClusterCron is not used: it takes Effect's cron (not our time-zone rules) and its "next run from previous"
 *   option breaks the chain on restart (Effect-TS/effect#5960).
 * - Overlap as for one daemon: a fire time whose rule is still running is skipped (logged, counted). Belt and
 *   braces against a runner that lost its shard without noticing: a run holds a Postgres advisory lock for its rule;
 *   a fire waits for it up to the grace period plus 10 s (a replica handing the rule over finishes its in-flight
 *   batches meanwhile) and is skipped as an overlap if it cannot take it.
 * - After a takeover, the fire time whose run was cut goes first, as one daemon resumes before it runs anything new:
 *   delivered again with its run left to resume, it is never skipped as an overlap (it waits for the rule), and a
 *   later fire time that finds the rule's last run left to resume, its message still unanswered, is skipped (it
 *   would otherwise start a second run over the same keys, a split run's chunks beside the first run's).
 *
 * Runs left `running` are marked interrupted only by the rule's new owner, once it holds the rule's lock (other
 * replicas' runs are alive): never all at start as one daemon does.
 */
import { Governor } from "@effect-cos/core"
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as DeliverAt from "@effect/cluster/DeliverAt"
import * as Entity from "@effect/cluster/Entity"
import * as EntityId from "@effect/cluster/EntityId"
import * as EngineRunnerAddress from "@effect/cluster/RunnerAddress"
import * as Sharding from "@effect/cluster/Sharding"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as Singleton from "@effect/cluster/Singleton"
import * as Snowflake from "@effect/cluster/Snowflake"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as Rpc from "@effect/rpc/Rpc"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PrimaryKey from "effect/PrimaryKey"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as ClusterBudget from "./ClusterBudget.js"
import * as ClusterSplit from "./ClusterSplit.js"
import * as ClusterStorage from "./ClusterStorage.js"
import * as ClusterUptime from "./ClusterUptime.js"
import { type RetentionConfig, type Rule, Settings } from "./Config.js"
import { Preflight } from "./Daemon.js"
import * as HttpStatus from "./HttpStatus.js"
import * as Metrics from "./Metrics.js"
import { Purger } from "./Purger.js"
import { Runner } from "./Runner.js"
import { nextFire, previousFire } from "./Scheduler.js"
import { emptyCounts, type RunRecord, State } from "./State.js"
import * as StateStore from "./StateStore.js"
import { Status } from "./Status.js"

export interface RunnerAddress {
  readonly host: string
  readonly port: number
}

/** Parses `HOST:PORT` (`[::1]:PORT` for IPv6); the error is a sentence saying what is accepted. */
export const parseRunnerAddress = (text: string): Either.Either<RunnerAddress, string> => {
  const m = /^(?:\[([^\]]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text.trim())
  const port = m === null ? NaN : Number(m[3])
  if (m === null || !(port >= 1 && port <= 65535)) {
    return Either.left(
      `the runner address ${JSON.stringify(text)} is not HOST:PORT (a host or IP the other replicas can reach, ` +
        `and a TCP port 1-65535)`
    )
  }
  return Either.right({ host: m[1] ?? m[2]!, port })
}

/** The environment variable read when `--runner-address` is not given. */
export const runnerAddressEnv = "COS_RETENTION_RUNNER_ADDRESS"

/** One fire time of one rule (the entity id is the rule's name). */
export class Fire extends Schema.Class<Fire>("@effect-cos/daemon/Cluster/Fire")({
  /** The scheduled time, epoch milliseconds: the idempotency key. */
  scheduledAt: Schema.Number,
  trigger: Schema.Literal("schedule", "catch-up")
}) {
  [PrimaryKey.symbol]() {
    return String(this.scheduledAt)
  }
  [DeliverAt.symbol]() {
    return DateTime.unsafeMake(this.scheduledAt)
  }
}

export const FireResult = Schema.Struct({
  outcome: Schema.Literal("ran", "skipped"),
  runId: Schema.NullOr(Schema.Number),
  status: Schema.NullOr(Schema.String),
  runner: Schema.String
})

export const RuleEntity = Entity.make("cos-retention/rule", [
  Rpc.make("fire", { payload: Fire, success: FireResult }).annotate(ClusterSchema.Persisted, true)
])

const runnerLabel = (address: RunnerAddress) => `${address.host}:${address.port}`

const RuleEntityLive = (address: RunnerAddress) =>
  RuleEntity.toLayer(
    Effect.gen(function*() {
      const entity = yield* Entity.CurrentAddress
      const settings = yield* Settings
      const runner = yield* Runner
      const state = yield* State
      const status = yield* Status
      const sql = yield* SqlClient.SqlClient
      const uptime = yield* ClusterUptime.ClusterUptime
      const name = entity.entityId
      const me = runnerLabel(address)
      // one fire time at a time holds the rule on this replica (the others are skipped as overlaps, or wait: see
      // `fire`)
      const holder = yield* Effect.makeSemaphore(1)

      const skipped = (reason: string) =>
        Effect.as(Effect.logWarning(reason), { outcome: "skipped" as const, runId: null, status: null, runner: me })

      const overlapBecause = (reason: string) =>
        Effect.gen(function*() {
          yield* Metrics.recordOverlap(name)
          yield* status.update(name, (live) => ({ ...live, skippedOverlaps: live.skippedOverlaps + 1 }))
          return yield* skipped(`skipped a scheduled run: ${reason}`)
        })
      const overlap = overlapBecause("the previous run of this rule is still going")

      /** Whether a run left unfinished has something to resume from: the rule's checkpoint, or a split run's plan. */
      const resumable = (rule: Rule, run: RunRecord) =>
        rule.dryRun
          ? Effect.succeed(false)
          : rule.parallelism > 1
          ? run.scheduledAt === null ? Effect.succeed(false) : ClusterSplit.hasPlan(name, run.scheduledAt)
          : Effect.map(state.getCheckpoint(name), (c) => c !== undefined)

      /**
       * This fire time's own run, if one was recorded and left unfinished (its replica died or stopped) with something
       * to resume from.
       */
      const ownUnfinished = (rule: Rule, scheduledAt: number) =>
        Effect.gen(function*() {
          const own = (yield* state.recentRuns({ limit: 20, rule: name })).find((r) =>
            r.scheduledAt === scheduledAt && (r.status === "running" || r.status === "interrupted")
          )
          return own !== undefined && (yield* resumable(rule, own)) ? own : undefined
        })

      /**
       * The rule's last run, if it is an earlier fire time's, left unfinished with something to resume from, and that
       * fire time's message is still unanswered (the engine delivers it again, to this replica or the rule's next
       * owner): that fire time resumes its run, and this one must not start another over the same keys meanwhile.
       */
      const resumesFirst = (rule: Rule, scheduledAt: number) =>
        Effect.gen(function*() {
          const last = yield* state.lastRun(name)
          if (
            last === undefined || last.scheduledAt === null || last.scheduledAt === scheduledAt ||
            (last.status !== "running" && last.status !== "interrupted") || !(yield* resumable(rule, last))
          ) return undefined
          const unanswered = yield* sql`SELECT 1 FROM cluster_messages WHERE entity_type = ${RuleEntity.type}
            AND entity_id = ${name} AND tag = 'fire' AND deliver_at = ${last.scheduledAt} AND NOT processed LIMIT 1`
            .pipe(Effect.orDie)
          return unanswered.length > 0 ? last : undefined
        })

      /** The answer to a fire time whose run ended already (succeeded or failed), if it has one. */
      const alreadyRan = (scheduledAt: number) =>
        Effect.gen(function*() {
          const done = (yield* state.recentRuns({ limit: 20, rule: name })).find((r) =>
            r.scheduledAt === scheduledAt && (r.status === "succeeded" || r.status === "failed")
          )
          if (done === undefined) return undefined
          yield* Effect.logInfo(`this fire time already ran (run ${done.id}, ${done.status}); not running it again`)
          return { outcome: "skipped" as const, runId: done.id, status: done.status, runner: me }
        })

      /**
       * A fire time from before the cluster's current up period (every replica was down after it came due) whose run,
       * if any, the downtime cut: decided as one daemon decides at start (afterDowntime). `run` for any other.
       */
      const downtimeDecision = (rule: Rule, scheduledAt: number) =>
        Effect.gen(function*() {
          const up = yield* Effect.orDie(uptime.current)
          if (scheduledAt >= up.since) return { decision: "run" as const }
          const runs = yield* state.recentRuns({ limit: 20, rule: name })
          // its run started in this up period (the catch-up or a resume, cut by a failover since): it goes on
          const own = runs.find((r) => r.scheduledAt === scheduledAt)
          if (own !== undefined && own.startedAt >= up.since) return { decision: "run" as const }
          const last = runs[0]
          const canResume = last === undefined ? false : yield* resumable(rule, last)
          const decision = afterDowntime(rule, { scheduledAt, upSince: up.since, lastRun: last, resumable: canResume })
          return { decision, up, last, resumable: canResume }
        })

      const skippedAfterDowntime = (
        rule: Rule,
        found: { readonly up: ClusterUptime.Uptime; readonly last: RunRecord | undefined; readonly resumable: boolean }
      ) => {
        const { last, up } = found
        const pending = found.resumable && last !== undefined && last.startedAt < up.since &&
          (last.status === "interrupted" || last.status === "running")
        const missed = catchUpFire(rule, { upSince: up.since, lastStartedAt: last?.startedAt })
        const why = pending
          ? `the run the downtime left unfinished (fire time ${
            last.scheduledAt === null ? "unknown" : new Date(last.scheduledAt).toISOString()
          }) resumes instead, as one daemon resumes at start and does not catch up`
          : !rule.catchUp
          ? "as one daemon after downtime, the rule does not catch up (catchUp: false)"
          : missed === undefined
          ? "the rule has run since"
          : `the rule catches up its last missed fire time instead (${new Date(missed).toISOString()})`
        return skipped(
          `skipped a fire time that came due before every replica was down (the cluster is up again since ${
            new Date(up.since).toISOString()
          }): ${why}`
        )
      }

      return {
        fire: ({ payload }) =>
          Effect.gen(function*() {
            const rule = settings.rules.find((r) => r.name === name)
            if (rule === undefined || !rule.enabled) {
              return yield* skipped("skipped a fire time of a rule this replica's configuration does not enable")
            }
            // the idempotency key is the rule and the fire time: a fire time whose run finished but whose answer
            // was not stored (its runner died or stopped right after) comes again, and is not run twice. Checked
            // before the overlap guard too, so that such a message (delivered again at a restart or a takeover)
            // does not hold the rule while a fire time that has not run arrives (that one would be skipped)
            const done = yield* alreadyRan(payload.scheduledAt)
            if (done !== undefined) return done
            // decided before the overlap guard too: a fire time the downtime cut, delivered again at the restart,
            // must not hold the rule while its catch-up arrives
            const afterDown = yield* downtimeDecision(rule, payload.scheduledAt)
            if (afterDown.decision === "skip") return yield* skippedAfterDowntime(rule, afterDown)
            const trigger = afterDown.decision === "catch-up" ? "catch-up" as const : payload.trigger
            // a fire time delivered again with a run of its own left unfinished to resume (its replica died or
            // stopped before answering) is never skipped as an overlap: skipped, it would be answered, and its run
            // never finished (nor its split run's chunks collected). It waits for the fire time holding the rule
            // here (which does not start a run meanwhile: `resumesFirst`) and for the rule's lock, however long
            const own = yield* ownUnfinished(rule, payload.scheduledAt)
            const underLock = Effect.gen(function*() {
              const abandoned = yield* state.markAbandonedOf(name)
              if (abandoned.length > 0) {
                yield* Effect.logWarning(`${abandoned.length} run(s) of this rule were left unfinished by a replica`)
                  .pipe(Effect.annotateLogs({ runs: abandoned.join(",") }))
              }
              // (again under the lock: a run of it may have ended meanwhile on the replica handing the rule over)
              const doneMeanwhile = yield* alreadyRan(payload.scheduledAt)
              if (doneMeanwhile !== undefined) return doneMeanwhile
              // one daemon resumes an interrupted run and skips the fire times due meanwhile: so does the cluster,
              // whichever of the two messages comes first after a takeover
              const first = yield* resumesFirst(rule, payload.scheduledAt)
              if (first !== undefined) {
                return yield* overlapBecause(
                  `the run of fire time ${new Date(first.scheduledAt!).toISOString()} (run ${first.id}), left ` +
                    "unfinished by a replica, resumes first (its fire time is delivered again)"
                )
              }
              // returns the run the attempt recorded (a failed run says nothing: looked up below)
              const attempt = Effect.gen(function*() {
                if (rule.parallelism > 1 && !rule.dryRun) {
                  // a split rule: chunks spread over the runners (ClusterSplit); the run may be an earlier
                  // attempt's, taken up again
                  const split = yield* ClusterSplit.runSplit(rule, {
                    scheduledAt: payload.scheduledAt,
                    trigger,
                    runner: me
                  })
                  return split.runId
                }
                // as one daemon at start: a rule whose last run was interrupted with a checkpoint resumes
                // (whoever marked it: an earlier attempt at this message may have, before losing the rule)
                const last = yield* state.lastRun(name)
                const checkpoint = yield* state.getCheckpoint(name)
                const resume = last?.status === "interrupted" && checkpoint !== undefined && !rule.dryRun
                const outcome = yield* runner.run(rule, {
                  trigger: resume ? "resume" : trigger,
                  scheduledAt: payload.scheduledAt,
                  runner: me
                }).pipe(
                  // the bucket's write budget is shared by the whole cluster (ClusterBudget)
                  Effect.provideServiceEffect(Governor.Governor, ClusterBudget.make(rule))
                )
                return outcome.run.id
              })
              // the fire time is answered "ran" only with a run of its own: the row the attempt recorded for this
              // scheduled time. An attempt that fails before recording one (the runs table could not be written,
              // a bug before the run started) is tried again, up to maxFireAttempts times, and then the fire time
              // is recorded as a failed run saying why: decided, in the history, never retried forever. Only when
              // not even that row can be written is the fire time left undecided: the defect makes the engine
              // deliver it again (after a backoff of up to 10 s), as for a replica that died before answering
              let why = "the attempt recorded none"
              for (let n = 1; n <= maxFireAttempts; n++) {
                // runs recorded so far: this attempt's run, if it records one, comes after them
                const before = (yield* state.lastRun(name))?.id ?? 0
                // failures are recorded and logged by the runner; a defect (a bug, or Postgres gone mid-run) is
                // logged here
                const exit = yield* attempt.pipe(
                  Effect.tapDefect((cause) => Effect.logError("the run crashed; the rule stays scheduled", cause)),
                  Effect.exit
                )
                const known = Exit.isSuccess(exit) ? exit.value : null
                const own = (yield* state.recentRuns({ limit: 20, rule: name })).find((r) =>
                  r.scheduledAt === payload.scheduledAt && (known === null ? r.id > before : r.id === known)
                )
                if (own !== undefined) {
                  return { outcome: "ran" as const, runId: own.id, status: own.status, runner: me }
                }
                const cause = Exit.isFailure(exit) ? Cause.squash(exit.cause) : "the attempt recorded none"
                why = describe(cause)
                if (n < maxFireAttempts) {
                  const wait = Duration.times(fireRetryBase, 2 ** (n - 1))
                  yield* Effect.logWarning(
                    `no run was recorded for this fire time (${why}); trying again in ${Duration.format(wait)} ` +
                      `(attempt ${n} of ${maxFireAttempts})`
                  )
                  yield* Effect.sleep(wait)
                }
              }
              const error = `gave up on this fire time after ${maxFireAttempts} attempts that could not record ` +
                `a run (the last: ${why}); nothing was deleted for it, the next fire time runs as usual`
              const recorded = yield* Effect.exit(Effect.gen(function*() {
                const record = yield* state.startRun({
                  rule: name,
                  trigger,
                  dryRun: rule.dryRun,
                  scheduledAt: payload.scheduledAt,
                  runner: me
                })
                yield* state.finishRun(record.id, "failed", emptyCounts, error)
                return record.id
              }))
              if (Exit.isFailure(recorded)) {
                return yield* Effect.dieMessage(
                  `no run was recorded for this fire time after ${maxFireAttempts} attempts (${why}), and not ` +
                    "even its failure could be; it will be delivered again"
                )
              }
              yield* Metrics.recordRun(name, "failed", 0)
              yield* Effect.logError(`run failed: ${error}`).pipe(Effect.annotateLogs({ run: recorded.value }))
              return { outcome: "ran" as const, runId: recorded.value, status: "failed", runner: me }
            })
            // a replica handing the rule over may still be finishing its in-flight batches: wait for those
            const lockName = `cos-retention rule ${name}`
            const lockWait = Duration.sum(settings.gracePeriod, Duration.seconds(10))
            if (own === undefined) {
              const result = yield* holder.withPermitsIfAvailable(1)(
                StateStore.tryWithSessionLock(sql, lockName, lockWait, underLock)
              )
              return Option.isSome(result) && Option.isSome(result.value) ? result.value.value : yield* overlap
            }
            yield* Effect.logInfo(`this fire time's run ${own.id} was left unfinished by a replica; taking it up`)
            return yield* holder.withPermits(1)(
              StateStore.waitForSessionLock(
                sql,
                lockName,
                lockWait,
                "the rule is still held by another replica's run; waiting",
                underLock
              )
            )
          }).pipe(
            Effect.orDie,
            Effect.annotateLogs({
              rule: name,
              scheduledAt: new Date(payload.scheduledAt).toISOString(),
              runner: me
            })
          )
      }
    }),
    { concurrency: "unbounded", maxIdleTime: "1 hour" }
  )

/** An error's message with its causes' (a SqlError says "Failed to execute statement", its cause why). */
const describe = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const cause = (error as { readonly cause?: unknown }).cause
  return cause === undefined || cause === error ? error.message : `${error.message}: ${describe(cause)}`
}

/**
 * How many times a fire time's run is tried when an attempt fails before recording a run, and the wait before the
 * second try (doubled each time after: 1, 2, 4, 8 s).
 */
export const maxFireAttempts = 5
const fireRetryBase = Duration.seconds(1)

/** How long answered messages are kept in the engine's tables (nothing there prunes them by itself). */
export const messageRetention = Duration.days(7)

/**
 * Deletes the engine's rows for our answered messages older than `olderThanMs`, in one transaction: their replies,
 * then the messages. Fire times go once due that long ago; a fire time sent again after that is deduplicated by the
 * runs table instead (catch-up compares with the rule's last run). Chunks of split runs (which carry no delivery
 * time) go once sent that long ago, by the time in their id (a snowflake); a chunk sent again after that answers from
 * its row in `cos_retention_split_chunks`. Unanswered messages are never deleted. Returns how many messages went.
 */
export const pruneMessages = (olderThanMs: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const cutoff = (yield* Clock.currentTimeMillis) - olderThanMs
    const sentBefore = String(BigInt(Math.max(0, cutoff - Snowflake.constEpochMillis)) << BigInt(22))
    const answered = sql`SELECT id FROM cluster_messages WHERE processed AND (
      (entity_type = ${RuleEntity.type} AND deliver_at < ${cutoff})
      OR (entity_type = ${ClusterSplit.ChunkEntity.type} AND id < ${sentBefore}::bigint))`
    return yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`DELETE FROM cluster_replies WHERE request_id IN (${answered})`
      const rows = yield* sql`DELETE FROM cluster_messages WHERE id IN (${answered}) RETURNING id`
      return rows.length
    }))
  }).pipe(Effect.orDie)

/** Sends a fire message until it is stored (or found stored already). */
const send = (client: ReturnType<Effect.Effect.Success<typeof RuleEntity.client>>, fire: Fire) =>
  client.fire(fire, { discard: true }).pipe(
    Effect.tapError((e) => Effect.logWarning(`could not store a fire time yet, retrying: ${e._tag}`)),
    Effect.retry(Schedule.spaced("1 second"))
  )

/** How long the scheduler waits for a rule's catch-up to start before it sends the rule's later fire times. */
const catchUpHeadStart = Duration.seconds(60)

/** Whether a fire time has started a run of its own, or was answered (the engine stored its reply). */
const fireDecided = (rule: string, scheduledAt: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ n: number | string }>`SELECT
      (SELECT count(*) FROM runs WHERE rule = ${rule} AND scheduled_at = ${scheduledAt})
      + (SELECT count(*) FROM cluster_messages WHERE entity_type = ${RuleEntity.type} AND entity_id = ${rule}
          AND tag = 'fire' AND deliver_at = ${scheduledAt} AND processed) AS n`
    return Number(rows[0]?.n ?? 0) > 0
  }).pipe(Effect.catchAllCause(() => Effect.succeed(false)))

/** This replica's runner address, for what the engine runs in fibers of its own (the log annotation is lost there). */
class Self extends Context.Tag("@effect-cos/daemon/Cluster/Self")<Self, RunnerAddress>() {}

/** The most fire times of one rule sent late by a scheduler that took over, and how far back (see `lateFires`). */
const maxLateFires = 100
const lateFireWindowMs = 10 * 60_000

/**
 * The fire times of a rule that came due while the scheduler moved to this replica, to be sent late. The engine
 * moves the scheduler (a singleton) only once its dead holder's shard lock has expired, so with the default lock
 * expiry fire times of the last 35 s or so may never have been sent. Every fire time since the cluster's current up
 * period began (`upSince`, ClusterUptime: some replica was up from then on, whichever holds the scheduler now) was
 * due while the cluster was up, so it runs, as one daemon that never went down would have run it; fire times from
 * before it follow `catchUp`, as for one daemon after downtime. Those the rule has already run are not sent again
 * (a fire time sent twice is stored once anyway: its primary key).
 */
export const lateFires = (
  rule: Pick<Rule, "schedule" | "timezone">,
  options: { readonly upSince: number; readonly lastScheduledAt: number | undefined; readonly now: number }
): ReadonlyArray<number> => {
  const out: Array<number> = []
  // (bounded: a handover takes the lock expiry and a little more, well under the window; much older fire times are
  // not the handover's)
  const from = Math.max(options.upSince, options.lastScheduledAt ?? options.upSince, options.now - lateFireWindowMs)
  let t = nextFire(rule, new Date(from))
  while (t !== undefined && t.getTime() <= options.now && out.length < maxLateFires) {
    out.push(t.getTime())
    t = nextFire(rule, t)
  }
  return out
}

/**
 * The fire time a rule misses at the cluster's restart after every replica was down (before `upSince`, the start of
 * the cluster's current up period, ClusterUptime): the last one due before it (those due after it are the late ones,
 * {@link lateFires}), if it is later than the start of the rule's last run, as one daemon decides at start
 * (Scheduler's `startupTrigger`). A rule that never ran waits for its first fire time. With `catchUp: true` it runs
 * once; every replica that holds the scheduler during this up period finds the same one (sent again, it is stored
 * once: its key is the rule and the scheduled time).
 */
export const catchUpFire = (
  rule: Pick<Rule, "schedule" | "timezone">,
  options: { readonly upSince: number; readonly lastStartedAt: number | undefined }
): number | undefined => {
  if (options.lastStartedAt === undefined) return undefined
  const missed = previousFire(rule, new Date(options.upSince))
  return missed !== undefined && missed.getTime() > options.lastStartedAt ? missed.getTime() : undefined
}

/**
 * What becomes of a fire time delivered after a downtime of the whole cluster: one that came due before the
 * cluster's current up period (`upSince`), and whose run, if it has one, started before it too (the downtime cut it,
 * or it never started). It is decided as one daemon decides at start, for the cluster as a whole:
 *
 * - `resume`: the rule's last run was left unfinished by the downtime with something to resume from (a checkpoint;
 *   for a split rule, its plan), and it is this fire time's run: it goes on. Another fire time is `skip`ped meanwhile
 *   (one daemon resumes and does not catch up).
 * - `catch-up`: it is the rule's catch-up fire time ({@link catchUpFire}) and the rule has `catchUp: true`: it runs
 *   once, as the catch-up.
 * - `skip`: anything else (with `catchUp: false`, every fire time the downtime cut); logged, answered "skipped".
 */
export const afterDowntime = (
  rule: Pick<Rule, "schedule" | "timezone" | "catchUp" | "dryRun">,
  options: {
    readonly scheduledAt: number
    readonly upSince: number
    /** The rule's last run (the latest started), if it has one. */
    readonly lastRun:
      | { readonly scheduledAt: number | null; readonly startedAt: number; readonly status: string }
      | undefined
    /** Whether the last run left something to resume from: the rule's checkpoint, or a split run's plan. */
    readonly resumable: boolean
  }
): "resume" | "catch-up" | "skip" => {
  const last = options.lastRun
  const unfinished = last !== undefined && (last.status === "interrupted" || last.status === "running") &&
    last.startedAt < options.upSince
  if (unfinished && options.resumable && !rule.dryRun) {
    return last.scheduledAt === options.scheduledAt ? "resume" : "skip"
  }
  if (
    rule.catchUp &&
    catchUpFire(rule, { upSince: options.upSince, lastStartedAt: last?.startedAt }) === options.scheduledAt
  ) {
    return "catch-up"
  }
  return "skip"
}

/** The cluster's one scheduler (an engine singleton): stores each rule's fire times in Postgres when they are due. */
const SchedulerSingleton = Singleton.make(
  "cos-retention/scheduler",
  Effect.gen(function*() {
    const uptime = yield* ClusterUptime.ClusterUptime
    const settings = yield* Settings
    const state = yield* State
    const status = yield* Status
    const runner = yield* Runner
    const makeClient = yield* RuleEntity.client
    const prune = Effect.zipRight(
      runner.pruneAudit,
      Effect.flatMap(
        pruneMessages(Duration.toMillis(messageRetention)),
        (n) =>
          n > 0
            ? Effect.logInfo(`pruned ${n} answered messages (fire times, chunks) from the cluster's message table`)
            : Effect.void
      )
    ).pipe(Effect.zipRight(ClusterUptime.prune(Duration.toMillis(ClusterUptime.retention))))
    // at its start and every 6 hours, in the background: housekeeping that fails (Postgres not answering) is
    // logged and tried again 6 hours later; the schedule does not wait for it, nor stop because of it
    yield* Effect.forkScoped(
      prune.pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning("could not prune the audit and the cluster's message table; next attempt in 6 hours", cause)
        ),
        Effect.zipRight(Effect.sleep("6 hours")),
        Effect.forever
      )
    )
    // the cluster's current up period (the same on every replica that holds the scheduler during it): fire times
    // since its start came due while the cluster was up; those before it, while every replica was down
    const up = yield* uptime.current.pipe(
      Effect.tapError((e) => Effect.logWarning(`could not read the cluster's uptime yet, retrying: ${e.message}`)),
      Effect.retry(Schedule.spaced("1 second"))
    )
    yield* Effect.logInfo(`cluster scheduler started with ${settings.rules.filter((r) => r.enabled).length} rule(s)`)
      .pipe(Effect.annotateLogs({
        clusterUpSince: new Date(up.since).toISOString(),
        ...(up.downSince === undefined ? {} : { clusterDownSince: new Date(up.downSince).toISOString() })
      }))
    yield* Effect.forEach(
      settings.rules.filter((r) => r.enabled),
      (rule) =>
        Effect.gen(function*() {
          const client = makeClient(rule.name)
          // retried every second while Postgres cannot answer (as the uptime above): the scheduler of a cluster
          // must not end because Postgres was down when it started
          const previous = yield* state.lastRun(rule.name).pipe(
            Effect.catchSomeDefect((defect) =>
              defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none()
            ),
            Effect.tapError((e) =>
              Effect.logWarning(`could not read the rule's last run yet, retrying: ${describe(e)}`)
            ),
            Effect.retry(Schedule.spaced("1 second"))
          )
          // as one daemon at start: the last fire time missed while every replica was down runs once, if the rule
          // asks and it is later than the start of the last run; first, as one daemon runs it before the fire times
          // that follow. (The rule entity decides it, as every fire time from before the up period: a run the
          // downtime left to resume goes first, see afterDowntime.)
          const missed = catchUpFire(rule, { upSince: up.since, lastStartedAt: previous?.startedAt })
          if (missed !== undefined && rule.catchUp) {
            yield* send(client, new Fire({ scheduledAt: missed, trigger: "catch-up" }))
            // and goes first: the fire times due since the cluster came back are sent once it has started or been
            // decided (they would otherwise race it for the rule, and one of them could win as the overlap guard's
            // first; one daemon runs the catch-up first and skips the fire times due while it runs)
            yield* fireDecided(rule.name, missed).pipe(
              Effect.repeat({ until: (decided) => decided, schedule: Schedule.spaced("250 millis") }),
              Effect.timeout(catchUpHeadStart),
              Effect.catchTag("TimeoutException", () =>
                Effect.logWarning(
                  `the catch-up had not started after ${Duration.format(catchUpHeadStart)}; sending the fire times ` +
                    "due since the cluster came back"
                ))
            )
          } else if (missed !== undefined) {
            yield* Effect.logWarning(
              "skipped the fire times that came due while every replica was down: the rule does not catch up " +
                "(catchUp: false)"
            ).pipe(Effect.annotateLogs({
              lastMissed: new Date(missed).toISOString(),
              ...(up.downSince === undefined ? {} : { clusterDownSince: new Date(up.downSince).toISOString() }),
              clusterUpSince: new Date(up.since).toISOString()
            }))
          }
          // the late ones are those due by `coveredThrough`; the loop below goes on from there (not from the time
          // it starts: a fire time due in between, while the late ones were sent, would be lost)
          const coveredThrough = yield* Clock.currentTimeMillis
          for (
            const scheduledAt of lateFires(rule, {
              upSince: up.since,
              lastScheduledAt: previous?.scheduledAt ?? undefined,
              now: coveredThrough
            })
          ) {
            yield* Effect.logWarning("sending a fire time that came due while the scheduler moved to this replica")
              .pipe(Effect.annotateLogs({ scheduledAt: new Date(scheduledAt).toISOString() }))
            yield* send(client, new Fire({ scheduledAt, trigger: "schedule" }))
          }
          // each fire time is stored when it is due, not ahead of it: a fire time that comes due while no replica
          // is up is then never stored, and follows catchUp as for one daemon that was down. Every fire time after
          // the last one sent is sent, at once when it is due already (a send that took long, a busy process;
          // within the late fires' window)
          let sentThrough = coveredThrough
          while (true) {
            const now = yield* Clock.currentTimeMillis
            const next = nextFire(rule, new Date(Math.max(sentThrough, now - lateFireWindowMs)))
            yield* status.update(rule.name, (live) => ({ ...live, nextFire: next }))
            yield* Metrics.setNextRun(rule.name, next)
            if (next === undefined) {
              return yield* Effect.logWarning("the schedule has no future fire time; the rule will not run again")
            }
            yield* Effect.sleep(Math.max(0, next.getTime() - now))
            yield* send(client, new Fire({ scheduledAt: next.getTime(), trigger: "schedule" }))
            sentThrough = next.getTime()
          }
        }).pipe(Effect.annotateLogs({ rule: rule.name })),
      { concurrency: "unbounded", discard: true }
    )
  }).pipe(
    Effect.catchAllCause((cause) => Effect.logError("the cluster scheduler stopped", cause)),
    // the engine runs a singleton in a fiber of its own: name the runner here too
    (effect) => Effect.flatMap(Self, (address) => Effect.annotateLogs(effect, { runner: runnerLabel(address) }))
  )
)

/**
 * Each replica's series for every enabled rule, as one daemon creates them at start: at zero, the schedule period,
 * the last success from the state (the next fire time is set by the replica holding the scheduler).
 */
const RuleMetricsLive = Layer.effectDiscard(
  Effect.gen(function*() {
    const settings = yield* Settings
    const state = yield* State
    for (const rule of settings.rules.filter((r) => r.enabled)) {
      yield* Metrics.initRule(rule.name)
      const lastSuccess = yield* state.lastSuccess(rule.name)
      if (lastSuccess !== undefined && lastSuccess.endedAt !== null) {
        yield* Metrics.recordSuccessAt(rule.name, Math.floor(lastSuccess.endedAt / 1000))
      }
      const first = nextFire(rule, new Date(yield* Clock.currentTimeMillis))
      const second = first === undefined ? undefined : nextFire(rule, first)
      if (first !== undefined && second !== undefined) {
        yield* Metrics.setSchedulePeriod(rule.name, (second.getTime() - first.getTime()) / 1000)
      }
    }
  })
)

/**
 * What the status server shows of the cluster: the runners from the engine's `cluster_runners` table (its health flag,
 * and how long ago its last heartbeat was, computed by Postgres so that clocks need not agree), and whether this
 * replica holds a rule now (owns the shard of the rule's entity).
 */
const ClusterViewLive = (address: RunnerAddress) =>
  Layer.effect(
    HttpStatus.ClusterView,
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const sharding = yield* Sharding.Sharding
      const self = runnerLabel(address)
      const runners = Effect.gen(function*() {
        const rows = yield* sql<{ address: string; healthy: boolean; age_ms: number | string | null }>`
          SELECT address, healthy, EXTRACT(EPOCH FROM (LOCALTIMESTAMP - last_heartbeat)) * 1000 AS age_ms
          FROM cluster_runners ORDER BY address`
        const now = yield* Clock.currentTimeMillis
        return rows.map((r) => ({
          address: r.address,
          healthy: r.healthy,
          lastSeenAt: now - Math.max(0, Math.round(Number(r.age_ms ?? 0))),
          self: r.address === self
        }))
      }).pipe(
        // the page still answers when the engine's table cannot be read (it says so in the log)
        Effect.catchAllCause((cause) => Effect.as(Effect.logWarning("could not read the cluster's runners", cause), []))
      )
      const chunks = Effect.gen(function*() {
        const rows = yield* sql<{
          rule: string
          run_id: number | string
          chunk: number
          chunks: number
          status: "planned" | "running" | "interrupted"
          runner: string | null
          attempts: number
          checkpoint: string | null
        }>`
          SELECT rule, run_id, chunk, chunks, status, runner, attempts, checkpoint
          FROM cos_retention_split_chunks WHERE status IN ('planned', 'running', 'interrupted')
          ORDER BY rule, run_id, chunk LIMIT 500`
        return rows.map((r) => ({
          rule: r.rule,
          runId: Number(r.run_id),
          chunk: r.chunk,
          chunks: r.chunks,
          status: r.status,
          runner: r.runner,
          attempts: r.attempts,
          checkpoint: r.checkpoint
        }))
      }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.as(Effect.logWarning("could not read the split runs' chunks", cause), [])
        )
      )
      return {
        self,
        runners,
        chunks,
        holds: (rule: string) =>
          Effect.sync(() => {
            const id = EntityId.make(rule)
            return sharding.hasShardId(sharding.getShardId(id, RuleEntity.getShardGroup(id)))
          })
      }
    })
  )

export interface ClusterOptions {
  readonly runnerAddress: RunnerAddress
  /** The engine's settings to override (tests: short lock, poll and health-check intervals). */
  readonly sharding?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/**
 * Our defaults for the engine: it polls stored messages every second (a fire time starts within about a second, not
 * the engine's 10 s), and otherwise keeps its settings (lock refresh 10 s, expiry 35 s: a dead runner's rules moved
 * 26-38 s after a SIGKILL in bench/cluster.ts, and its run went on once the batches it had in flight were
 * reconciled). The engine reads its settings from the environment too (`SHARD_LOCK_EXPIRATION="20 seconds"`,
 * `SHARD_LOCK_REFRESH_INTERVAL`, `ENTITY_MESSAGE_POLL_INTERVAL`, `RUNNER_HEALTH_CHECK_INTERVAL`, ...); the runner
 * address always comes from us.
 */
export const shardingDefaults = (): Partial<ShardingConfig.ShardingConfig["Type"]> =>
  process.env["ENTITY_MESSAGE_POLL_INTERVAL"] === undefined ? { entityMessagePollInterval: Duration.seconds(1) } : {}

/**
 * The daemon as one replica of a cluster, over the Purger given; the state must be on Postgres. Provides the engine's
 * Sharding.
 */
export const layerWith = <E, R>(
  config: RetentionConfig,
  purger: Layer.Layer<Purger, E, R>,
  options: ClusterOptions
) => {
  if (config.store._tag !== "postgres") {
    return Layer.die(new Error("cluster mode needs a Postgres state (state: postgres://...)"))
  }
  // each rule running here holds a connection for its lock (besides the writer lock's and the engine's lock
  // connection): a pool of 8 alone would starve with six rules running at once
  const enabled = config.rules.filter((r) => r.enabled).length
  const sql = Layer.provideMerge(
    Layer.scoped(StateStore.WriterLock, StateStore.writerLock("shared", config.store.display)),
    // a chunk of a split run holds a connection for its advisory lock while it runs: room for every chunk of every
    // split rule on this replica, besides the engine's, the locks of the rules' runs and the audit's writes
    StateStore.layerPostgres(config.store, {
      maxConnections: 8 + enabled + ClusterSplit.connectionsNeeded(config.rules)
    }).pipe(Layer.orDie)
  )
  const services = Runner.DefaultWithoutDependencies.pipe(
    Layer.provideMerge(Layer.mergeAll(State.DefaultWithoutDependencies, Status.Default, purger))
  )
  const address = options.runnerAddress
  const shardingConfig = {
    ...shardingDefaults(),
    ...options.sharding,
    // a stopping replica interrupts its runs at once (the engine would wait for them to end): each run then
    // stops listing and lets its in-flight batches finish within the grace period, as one daemon does
    entityTerminationTimeout: Duration.zero,
    runnerAddress: Option.some(EngineRunnerAddress.RunnerAddress.make({ host: address.host, port: address.port })),
    runnerListenAddress: Option.none()
  }
  // the engine's storage, its tables created by one replica at a time (replicas started together on a new database)
  const sharding = NodeClusterSocket.layer({ storage: "byo", shardingConfig }).pipe(
    Layer.provideMerge(ClusterStorage.layer.pipe(Layer.provide(ShardingConfig.layerFromEnv(shardingConfig))))
  )
  // this replica's uptime row: written before it joins, marked stopped after the engine has stopped its runs
  const uptime = Layer.unwrapEffect(Effect.map(ShardingConfig.ShardingConfig, (engine) =>
    ClusterUptime.layer({
      runner: runnerLabel(address),
      interval: engine.shardLockRefreshInterval,
      slack: engine.shardLockExpiration
    }))).pipe(Layer.provide(ShardingConfig.layerFromEnv(shardingConfig)))
  const ready = Layer.effectDiscard(
    Effect.flatMap(Status, (s) => s.setReady(true)).pipe(
      Effect.zipRight(Effect.logInfo(`joined the cluster as runner ${runnerLabel(address)}`))
    )
  )
  const app = Layer.mergeAll(
    RuleEntityLive(address),
    ClusterSplit.ChunkEntityLive(runnerLabel(address)),
    SchedulerSingleton.pipe(Layer.provide(Layer.succeed(Self, address))),
    RuleMetricsLive,
    HttpStatus.layer.pipe(Layer.provide(ClusterViewLive(address))),
    ready
  ).pipe(Layer.provide(Layer.effectDiscard(ClusterSplit.migrate)))
  const base = Layer.merge(services, Preflight.pipe(Layer.provide(services)))
  // the engine's Sharding stays visible (a client of the rules' entities can be made from it), and the writer lock
  // (`run` stops when it is lost for good: StateStore.watchWriterLock)
  return app.pipe(
    Layer.provideMerge(sharding),
    Layer.provide(uptime),
    Layer.provide(base),
    Layer.provideMerge(sql),
    Layer.provide(Settings.layer(config)),
    Layer.annotateLogs({ runner: runnerLabel(address) })
  )
}

/** One replica talking to COS over the network. */
export const layer = (config: RetentionConfig, options: ClusterOptions) => layerWith(config, Purger.Default, options)

/** Fails when this replica lost the state's writer lock for good (StateStore.writerLock); never succeeds. */
export const watchWriterLock = StateStore.watchWriterLock
