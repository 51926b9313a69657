/**
 * The daemon's metrics (Effect `Metric`s, tagged by rule) and their Prometheus text rendering for `/metrics`. In cluster
 * mode every series also carries `runner` (the replica's `HOST:PORT`), added when rendering.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"

const prefix = "cos_retention_"

export const runs = Metric.counter(`${prefix}runs_total`, {
  description: "Runs finished, by rule and status (succeeded, failed, interrupted).",
  incremental: true
})
export const deletedKeys = Metric.counter(`${prefix}deleted_keys_total`, {
  description: "Keys or versions confirmed deleted.",
  incremental: true
})
export const deletedBytes = Metric.counter(`${prefix}deleted_bytes_total`, {
  description: "Bytes of the keys confirmed deleted.",
  incremental: true
})
export const failedKeys = Metric.counter(`${prefix}failed_keys_total`, {
  description: "Keys COS refused to delete.",
  incremental: true
})
export const throttled = Metric.counter(`${prefix}throttled_total`, {
  description: "Requests COS throttled (503 SlowDown).",
  incremental: true
})
export const skippedOverlaps = Metric.counter(`${prefix}skipped_overlaps_total`, {
  description: "Scheduled fires skipped because the rule's previous run was still going.",
  incremental: true
})
export const runDuration = Metric.histogram(
  `${prefix}run_duration_seconds`,
  MetricBoundaries.fromIterable([0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400]),
  "Duration of finished runs."
)
export const lastSuccess = Metric.gauge(`${prefix}last_success_timestamp_seconds`, {
  description: "Unix time at which the rule's last successful run ended."
})
export const running = Metric.gauge(`${prefix}running`, { description: "1 while a run of the rule is going." })
export const nextRun = Metric.gauge(`${prefix}next_run_timestamp_seconds`, {
  description: "Unix time of the rule's next scheduled fire (0 when it has none)."
})
export const schedulePeriod = Metric.gauge(`${prefix}schedule_period_seconds`, {
  description: "Seconds between the rule's next two scheduled fires (for 'not succeeded within N periods' alerts)."
})
export const auditPending = Metric.gauge(`${prefix}audit_pending_rows`, {
  description:
    "Audit rows whose outcome is not known yet: batches in flight, or a killed run's intents that the rule's next run reconciles."
})

const forRule = <T, I, O>(metric: Metric.Metric<T, I, O>, rule: string) => Metric.tagged(metric, "rule", rule)

export const recordRun = (rule: string, status: string, seconds: number) =>
  Effect.all([
    Metric.increment(Metric.tagged(forRule(runs, rule), "status", status)),
    Metric.update(forRule(runDuration, rule), seconds)
  ], { discard: true })

export const recordDeleted = (rule: string, keys: number, bytes: number) =>
  Effect.all([
    Metric.incrementBy(forRule(deletedKeys, rule), keys),
    Metric.incrementBy(forRule(deletedBytes, rule), bytes)
  ], { discard: true })

export const recordFailed = (rule: string, keys: number) => Metric.incrementBy(forRule(failedKeys, rule), keys)
export const recordThrottled = (rule: string, n: number) => Metric.incrementBy(forRule(throttled, rule), n)
export const recordOverlap = (rule: string) => Metric.increment(forRule(skippedOverlaps, rule))
export const recordSuccessAt = (rule: string, epochSeconds: number) =>
  Metric.set(forRule(lastSuccess, rule), epochSeconds)
export const setRunning = (rule: string, on: boolean) => Metric.set(forRule(running, rule), on ? 1 : 0)
export const setNextRun = (rule: string, at: Date | undefined) =>
  Metric.set(forRule(nextRun, rule), at === undefined ? 0 : Math.floor(at.getTime() / 1000))
export const setSchedulePeriod = (rule: string, seconds: number) => Metric.set(forRule(schedulePeriod, rule), seconds)
export const setAuditPending = (rule: string, rows: number) => Metric.set(forRule(auditPending, rule), rows)

/** Creates a rule's series at zero, so dashboards and `increase()` see them before the first event. */
export const initRule = (rule: string) =>
  Effect.all([
    ...["succeeded", "failed", "interrupted"].map((status) =>
      Metric.incrementBy(Metric.tagged(forRule(runs, rule), "status", status), 0)
    ),
    Metric.incrementBy(forRule(deletedKeys, rule), 0),
    Metric.incrementBy(forRule(deletedBytes, rule), 0),
    Metric.incrementBy(forRule(failedKeys, rule), 0),
    Metric.incrementBy(forRule(throttled, rule), 0),
    Metric.incrementBy(forRule(skippedOverlaps, rule), 0),
    setRunning(rule, false)
  ], { discard: true })

// ---------------------------------------------------------------------------------------------------------------
// Prometheus text format 0.0.4
// ---------------------------------------------------------------------------------------------------------------

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const labels = (pairs: ReadonlyArray<readonly [string, string]>) =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
const num = (n: number | bigint) =>
  typeof n === "bigint"
    ? n.toString()
    : n === Infinity
    ? "+Inf"
    : n === -Infinity
    ? "-Inf"
    : Number.isNaN(n)
    ? "NaN"
    : String(n)

/**
 * Renders the daemon's metrics (those named `cos_retention_*`), each series with `common` labels added (cluster mode:
 * `runner`, the replica's address: one process is one runner, so every series of this process is that runner's).
 */
export const renderPrometheus = (
  pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>,
  common: ReadonlyArray<readonly [string, string]> = []
): string => {
  const byName = new Map<string, Array<MetricPair.MetricPair.Untyped>>()
  for (const pair of pairs) {
    const name = pair.metricKey.name
    if (!name.startsWith(prefix)) continue
    const list = byName.get(name) ?? []
    list.push(pair)
    byName.set(name, list)
  }
  const out: Array<string> = []
  for (const name of Array.from(byName.keys()).sort()) {
    const list = byName.get(name)!
    const first = list[0]!
    const description = first.metricKey.description._tag === "Some" ? first.metricKey.description.value : name
    const state = first.metricState
    const type = MetricState.isCounterState(state)
      ? "counter"
      : MetricState.isGaugeState(state)
      ? "gauge"
      : MetricState.isHistogramState(state)
      ? "histogram"
      : "untyped"
    out.push(`# HELP ${name} ${description.replace(/\n/g, " ")}`)
    out.push(`# TYPE ${name} ${type}`)
    const sorted = list.slice().sort((a, b) =>
      labels(a.metricKey.tags.map((t) => [t.key, t.value])).localeCompare(
        labels(b.metricKey.tags.map((t) => [t.key, t.value]))
      )
    )
    for (const pair of sorted) {
      const tags = [...pair.metricKey.tags.map((t) => [t.key, t.value] as const), ...common]
      const s = pair.metricState
      if (MetricState.isCounterState(s)) out.push(`${name}${labels(tags)} ${num(s.count)}`)
      else if (MetricState.isGaugeState(s)) out.push(`${name}${labels(tags)} ${num(s.value)}`)
      else if (MetricState.isHistogramState(s)) {
        let sawInf = false
        for (const [le, count] of s.buckets) {
          if (le === Infinity) sawInf = true
          out.push(`${name}_bucket${labels([...tags, ["le", num(le)]])} ${count}`)
        }
        if (!sawInf) out.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${s.count}`)
        out.push(`${name}_sum${labels(tags)} ${num(s.sum)}`)
        out.push(`${name}_count${labels(tags)} ${s.count}`)
      }
    }
  }
  return out.join("\n") + "\n"
}

export const prometheus: Effect.Effect<string> = Effect.map(Metric.snapshot, (pairs) => renderPrometheus(pairs))

/** {@link prometheus} with labels added to every series. */
export const prometheusWith = (common: ReadonlyArray<readonly [string, string]>): Effect.Effect<string> =>
  Effect.map(Metric.snapshot, (pairs) => renderPrometheus(pairs, common))
