/**
 * Fires each enabled rule on its cron schedule. croner computes the next fire time in the rule's time zone; the
 * waiting is an Effect sleep on the Clock (so TestClock drives it). A rule whose run is still going is not started
 * again (logged and counted). At start, a rule left with a checkpoint by an interrupted run resumes at once, and a
 * rule with `catchUp: true` whose last scheduled time passed while the daemon was down runs once.
 */
import { Cron } from "croner"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { type Rule, Settings } from "./Config.js"
import { formatDuration } from "./Logging.js"
import * as Metrics from "./Metrics.js"
import { Runner } from "./Runner.js"
import { State, type Trigger } from "./State.js"
import { Status } from "./Status.js"

/** The first fire time strictly after `from`, in the rule's time zone. */
export const nextFire = (rule: Pick<Rule, "schedule" | "timezone">, from: Date): Date | undefined =>
  new Cron(rule.schedule, { timezone: rule.timezone, paused: true }).nextRun(from) ?? undefined

/** The last fire time at or before `at`. */
export const previousFire = (rule: Pick<Rule, "schedule" | "timezone">, at: Date): Date | undefined =>
  new Cron(rule.schedule, { timezone: rule.timezone, paused: true }).previousRuns(1, at)[0]

/** Why a rule runs at start, if it does. */
export const startupTrigger = (
  rule: Rule,
  now: Date,
  history: {
    readonly lastRun?: { readonly startedAt: number; readonly status: string } | undefined
    readonly checkpoint?: { readonly runId: number } | undefined
  }
): Trigger | undefined => {
  if (!rule.enabled) return undefined
  if (history.checkpoint !== undefined && history.lastRun?.status === "interrupted" && !rule.dryRun) return "resume"
  if (rule.catchUp && history.lastRun !== undefined) {
    const missed = previousFire(rule, now)
    if (missed !== undefined && missed.getTime() > history.lastRun.startedAt) return "catch-up"
  }
  return undefined
}

const make = Effect.gen(function*() {
  const settings = yield* Settings
  const runner = yield* Runner
  const state = yield* State
  const status = yield* Status
  const scope = yield* Effect.scope
  const running = yield* Ref.make<ReadonlySet<string>>(new Set())

  /**
   * Starts a run unless one of the same rule is going; does not wait for it. `scheduledAt`: the fire time it runs for
   * (recorded with the run, as in cluster mode; `history --json` shows it).
   */
  const fire = (rule: Rule, trigger: Trigger, scheduledAt?: number) =>
    Effect.gen(function*() {
      const acquired = yield* Ref.modify(running, (set) =>
        set.has(rule.name) ? [false, set] as const : [true, new Set(set).add(rule.name)] as const)
      if (!acquired) {
        yield* Effect.logWarning("skipped a scheduled run: the previous run of this rule is still going").pipe(
          Effect.annotateLogs({
            rule: rule.name,
            trigger,
            ...(scheduledAt === undefined ? {} : { scheduledAt: new Date(scheduledAt).toISOString() })
          })
        )
        yield* Metrics.recordOverlap(rule.name)
        yield* status.update(rule.name, (live) => ({ ...live, skippedOverlaps: live.skippedOverlaps + 1 }))
        return false
      }
      yield* runner.run(rule, { trigger, scheduledAt }).pipe(
        // failures are recorded and logged by the runner; a defect (a bug) is logged here
        Effect.catchAll(() =>
          Effect.void
        ),
        Effect.catchAllDefect((defect) => Effect.logError("the run crashed; the rule stays scheduled", defect)),
        Effect.ensuring(Ref.update(running, (set) => {
          const next = new Set(set)
          next.delete(rule.name)
          return next
        })),
        Effect.forkIn(scope)
      )
      return true
    })

  const loop = (rule: Rule) =>
    Effect.gen(function*() {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const next = nextFire(rule, new Date(now))
        yield* status.update(rule.name, (live) => ({ ...live, nextFire: next }))
        yield* Metrics.setNextRun(rule.name, next)
        if (next === undefined) {
          yield* Effect.logWarning("the schedule has no future fire time; the rule will not run again")
          return
        }
        yield* Effect.sleep(Math.max(0, next.getTime() - now))
        yield* fire(rule, "schedule", next.getTime())
      }
    }).pipe(Effect.annotateLogs({ rule: rule.name, bucket: rule.bucket }))

  const abandoned = yield* state.markAbandoned
  if (abandoned.length > 0) {
    yield* Effect.logWarning(`${abandoned.length} run(s) were left unfinished by a stopped daemon`).pipe(
      Effect.annotateLogs({ runs: abandoned.join(",") })
    )
  }
  yield* runner.pruneAudit
  // and every 6 hours after, so a long-running daemon keeps the audit within its retention period
  yield* Effect.forkIn(
    Effect.sleep("6 hours").pipe(
      Effect.zipRight(runner.pruneAudit),
      Effect.forever,
      Effect.catchAllCause(Effect.logError)
    ),
    scope
  )
  const now = new Date(yield* Clock.currentTimeMillis)
  for (const rule of settings.rules) {
    yield* Metrics.initRule(rule.name)
    // the last success survives restarts (the gauge would otherwise be absent until the next success)
    const lastSuccess = yield* state.lastSuccess(rule.name)
    if (lastSuccess !== undefined && lastSuccess.endedAt !== null) {
      yield* Metrics.recordSuccessAt(rule.name, Math.floor(lastSuccess.endedAt / 1000))
    }
    if (!rule.enabled) {
      yield* Effect.logInfo("rule disabled").pipe(Effect.annotateLogs({ rule: rule.name }))
      continue
    }
    const first = nextFire(rule, now)
    const second = first === undefined ? undefined : nextFire(rule, first)
    if (first !== undefined && second !== undefined) {
      yield* Metrics.setSchedulePeriod(rule.name, (second.getTime() - first.getTime()) / 1000)
    }
    const lastRun = yield* state.lastRun(rule.name)
    const trigger = startupTrigger(rule, now, { lastRun, checkpoint: yield* state.getCheckpoint(rule.name) })
    const missed = previousFire(rule, now)
    if (!rule.catchUp && lastRun !== undefined && missed !== undefined && missed.getTime() > lastRun.startedAt) {
      yield* Effect.logWarning(
        "skipped the fire times that came due while the daemon was down: the rule does not catch up (catchUp: false)"
      ).pipe(Effect.annotateLogs({ rule: rule.name, lastMissed: missed.toISOString() }))
    }
    if (trigger !== undefined) {
      // a resumed run carries on the fire time of the run it resumes; a catch-up runs for the fire time missed
      const scheduledAt = trigger === "resume"
        ? lastRun?.scheduledAt ?? undefined
        : trigger === "catch-up"
        ? previousFire(rule, now)?.getTime()
        : undefined
      yield* fire(rule, trigger, scheduledAt)
    }
    yield* Effect.forkIn(loop(rule), scope)
  }
  yield* status.setReady(true)
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* status.setReady(false)
      const going = yield* Ref.get(running)
      if (going.size > 0) {
        yield* Effect.logInfo(
          `stopping: no new runs; waiting up to ${formatDuration(settings.gracePeriod)} for in-flight batches of ${
            Array.from(going).join(", ")
          }`
        )
      }
    })
  )
  yield* Effect.logInfo(`scheduler started with ${settings.rules.filter((r) => r.enabled).length} rule(s)`)

  return {
    /** Starts a run now (overlap-protected); false if one is already going. */
    fire,
    running: Ref.get(running)
  } as const
})

export class Scheduler extends Effect.Service<Scheduler>()("@effect-cos/daemon/Scheduler", {
  scoped: make,
  dependencies: [Runner.Default, State.Default, Status.Default]
}) {}
