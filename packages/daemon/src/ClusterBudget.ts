/**
 * One write budget per bucket for the whole cluster. COS counts every key of a batch delete against the bucket's
 * write quota (docs/protocol.md §5), whoever sends it: N runners each spending the full budget would send N times
 * the quota and be answered 503 SlowDown. So in cluster mode the deletion engine's Governor is replaced, for writes,
 * by a token bucket kept in Postgres: one row per bucket (`cos_retention_write_budget`) holding the rate, the tokens
 * and when they were last counted. Before a batch is sent, its keys are taken from that row in one `UPDATE` (the
 * refill since the last update is computed by Postgres with its own clock, so the replicas' clocks need not agree);
 * a balance that goes negative is a debt the caller sleeps off at the current rate, so concurrent senders queue up
 * in arrival order, as in the engine's own Governor. Whatever the number of runners and of chunks in flight, the
 * keys sent per second across the cluster stay within the budget (plus one second's burst at most).
 *
 * A throttling answer (503 SlowDown) halves the shared rate, at most once a second (the floor is 1/32 of the
 * budget), and the rate grows back to the budget within 10 s: additive increase, multiplicative decrease, for every
 * runner at once. The list budget stays each run's own (list requests have their own, separate quota and the engine's
 * default of 1,000/s per run is conservative next to what a run needs).
 *
 * One SQL statement per batch (1,000 keys): at 30,000 keys/s, 30 statements a second on one row.
 */
import { Governor } from "@effect-cos/core"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { Rule } from "./Config.js"

/** Seconds to grow back from zero to the full budget, and the shortest time between two cuts. */
const recoverySeconds = 10
const cooldownSeconds = 1
const floorFraction = 1 / 32

/** The budget a rule's runs share: the rule's `writeBudget`, else the region's default. */
export const budgetOf = (rule: Rule): number => rule.writeBudget ?? Governor.defaultWriteBudget(rule.region)

export const migrate = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS cos_retention_write_budget (
    bucket TEXT PRIMARY KEY,
    budget DOUBLE PRECISION NOT NULL,
    rate DOUBLE PRECISION NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    last_decrease DOUBLE PRECISION NOT NULL
  )`
})

// A statement that fails (Postgres restarting) is retried for about six seconds; then the run fails with it (a
// defect: the engine's Governor cannot fail; a split run's chunk then fails, and so the run).
const retrying = <A>(effect: Effect.Effect<A, SqlError>) =>
  effect.pipe(
    Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(6)))),
    Effect.orDie
  )

/**
 * A Governor whose writes come out of the bucket's shared budget (see the header); its list budget is the run's own.
 * Provide it to a run (`Effect.provideService(Governor.Governor, ...)`): the engine then uses it instead of its own.
 */
export const make = (rule: Rule) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const budget = budgetOf(rule)
    const floor = Math.max(1, budget * floorFraction)
    const increase = budget / recoverySeconds
    const local = Governor.unsafeMake({ region: rule.region, writeBudget: budget })
    const now = sql`extract(epoch from clock_timestamp())`
    yield* retrying(sql`INSERT INTO cos_retention_write_budget (bucket, budget, rate, tokens, updated_at, last_decrease)
      VALUES (${rule.bucket}, ${budget}, ${budget}, ${budget}, ${now}, 0) ON CONFLICT (bucket) DO NOTHING`)
    // Every expression reads only the row itself, so a statement that waited for another's lock computes from that
    // one's result (Postgres re-evaluates it on the newest row version): no refill is counted twice.
    const elapsed = sql`greatest(0, ${now} - w.updated_at)`
    const rate = sql`least(${budget}, w.rate + ${increase} * ${elapsed})`
    const take = (keys: number) =>
      retrying(sql<{ tokens: number; rate: number }>`UPDATE cos_retention_write_budget AS w SET
          budget = ${budget},
          rate = ${rate},
          tokens = least(${rate}, w.tokens + ${rate} * ${elapsed}) - ${keys},
          updated_at = greatest(w.updated_at, ${now})
        WHERE w.bucket = ${rule.bucket} RETURNING w.tokens, w.rate`).pipe(
        Effect.map((rows) => {
          const row = rows[0]
          if (row === undefined) return 0
          const tokens = Number(row.tokens)
          return tokens >= 0 ? 0 : Math.ceil(-tokens / Math.max(Number(row.rate), floor) * 1000)
        })
      )
    const throttled = retrying(sql`UPDATE cos_retention_write_budget AS w SET
        rate = greatest(${floor}, w.rate * 0.5), tokens = least(w.tokens, 0), last_decrease = ${now}
      WHERE w.bucket = ${rule.bucket} AND ${now} - w.last_decrease >= ${cooldownSeconds}`)
    let throttles = 0
    const governor: Governor.Governor = {
      writeBudget: budget,
      listBudget: local.listBudget,
      acquireWrite: (keys) =>
        Effect.flatMap(take(keys), (wait) => wait === 0 ? Effect.void : Effect.sleep(Duration.millis(wait))),
      acquireList: local.acquireList,
      throttledWrite: Effect.zipRight(Effect.sync(() => throttles++), Effect.asVoid(throttled)),
      throttledList: local.throttledList,
      state: Effect.gen(function*() {
        const rows = yield* retrying(
          sql<{ rate: number }>`SELECT rate FROM cos_retention_write_budget WHERE bucket = ${rule.bucket}`
        )
        const own = yield* local.state
        return { ...own, writeRate: Number(rows[0]?.rate ?? budget), writeThrottles: throttles }
      })
    }
    return governor
  })
