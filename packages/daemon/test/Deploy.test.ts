/**
 * deploy/grafana/cos-retention.json and deploy/prometheus/alerts.yaml name only metrics a running daemon exports, with
 * labels it exports: a daemon on the in-memory fake runs a rule, its /metrics is scraped, and every metric and label
 * in every expression of both files is looked up there.
 */
import { CosFake, Store } from "@effect-cos/testkit"
import * as HttpClient from "@effect/platform/HttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Yaml from "yaml"
import * as Config from "../src/Config.js"
import * as Daemon from "../src/Daemon.js"
import { Purger } from "../src/Purger.js"

const repo = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "../../..")
const bucket = CosFake.testBucket

/** Labels Prometheus adds to every series of a target, and its own `up` series. */
const targetLabels = new Set(["job", "instance"])
const prometheusOwn = new Map([["up", new Set<string>()]])

const freePort = () =>
  Effect.async<number>((resume) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resume(Effect.succeed(port)))
    })
  })

/** Metric name -> label names, from Prometheus text. */
const exported = (text: string) => {
  const out = new Map<string, Set<string>>()
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? /.exec(line)
    if (m === null) continue
    const labels = out.get(m[1]!) ?? new Set<string>()
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]!)
    out.set(m[1]!, labels)
  }
  return out
}

/** Every PromQL expression in the dashboard (targets and template queries) and the alert rules. */
const expressions = () => {
  const found: Array<{ readonly where: string; readonly expr: string; readonly legend?: string }> = []
  const walk = (node: unknown, where: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}[${i}]`))
    if (node === null || typeof node !== "object") return
    const o = node as Record<string, unknown>
    if (typeof o.expr === "string") {
      found.push({
        where,
        expr: o.expr,
        ...(typeof o.legendFormat === "string" ? { legend: o.legendFormat } : {})
      })
    }
    if (typeof o.definition === "string") found.push({ where: `${where}.definition`, expr: o.definition })
    for (const [k, v] of Object.entries(o)) walk(v, `${where}.${k}`)
  }
  walk(JSON.parse(readFileSync(NodePath.join(repo, "deploy/grafana/cos-retention.json"), "utf8")), "dashboard")
  walk(Yaml.parse(readFileSync(NodePath.join(repo, "deploy/prometheus/alerts.yaml"), "utf8")), "alerts")
  return found
}

const promqlWords = new Set([
  "sum",
  "by",
  "on",
  "and",
  "or",
  "unless",
  "without",
  "ignoring",
  "group_left",
  "group_right",
  "increase",
  "rate",
  "time",
  "absent",
  "histogram_quantile",
  "label_values",
  "bool",
  "offset",
  "max",
  "min",
  "avg",
  "count"
])

describe("deploy files", () => {
  it.live(
    "every metric and label the dashboard and the alerts name is one a running daemon exports",
    () =>
      Effect.gen(function*() {
        const port = yield* freePort()
        const decoded = Config.decode(
          {
            cos: {
              region: CosFake.testRegion,
              credentials: {
                secretId: CosFake.testCredentials.secretId,
                secretKey: Redacted.value(CosFake.testCredentials.secretKey)
              }
            },
            state: ":memory:",
            http: { port },
            // every second, so one run is done (and every series exists) within a second or two
            rules: [{ name: "expire-logs", bucket, prefix: "logs/", olderThan: "1d", schedule: "* * * * * *" }]
          },
          { source: "test", baseDir: "/" }
        )
        if (Either.isLeft(decoded)) throw new Error(decoded.left.message)
        const fake = yield* CosFake.make()
        yield* Store.seed(fake.store, { bucket, count: 30, prefix: "logs/", ageMs: () => 2 * 86_400_000 })
        const purger = Purger.layerHttp(Layer.succeed(HttpClient.HttpClient, CosFake.httpClient(fake)))
        yield* Layer.build(Daemon.layerWith(decoded.right, purger))

        const get = (path: string) =>
          Effect.promise(() => fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.text()))
        yield* Effect.flatMap(get("/status"), (body) => {
          const rule = JSON.parse(body).rules[0]
          return rule.lastRun?.status === "succeeded" ? Effect.void : Effect.fail("no finished run yet")
        }).pipe(Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 50 }))

        const metrics = exported(yield* get("/metrics"))
        for (const [name, labels] of prometheusOwn) metrics.set(name, labels)
        const exprs = expressions()
        assert.isAtLeast(exprs.filter((e) => e.where.startsWith("dashboard")).length, 10)
        assert.isAtLeast(exprs.filter((e) => e.where.startsWith("alerts")).length, 6)

        const named = new Set<string>()
        for (const { expr, legend, where } of exprs) {
          const text = expr.replace(/"(?:[^"\\]|\\.)*"/g, "\"\"")
          const names = Array.from(text.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g), (m) => m[1]!)
            .filter((w) => w.startsWith("cos_retention_") || prometheusOwn.has(w))
          assert.isAbove(names.length, 0, `${where}: ${expr} names no metric`)
          const labelsHere = new Set<string>()
          for (const name of names) {
            named.add(name)
            const labels = metrics.get(name)
            assert.isDefined(labels, `${where}: ${name} is not exported by the daemon`)
            labels!.forEach((l) => labelsHere.add(l))
          }
          // label matchers inside {...}, checked against the metric they follow
          for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
            for (const l of m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) {
              assert.isTrue(
                metrics.get(m[1]!)?.has(l[1]!) === true || targetLabels.has(l[1]!),
                `${where}: ${m[1]} has no label ${l[1]}`
              )
            }
          }
          // grouping and matching labels: by (...), on (...), label_values(metric, label)
          for (const m of expr.matchAll(/\b(?:by|on|without|ignoring)\s*\(([^)]*)\)/g)) {
            for (const l of m[1]!.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
              assert.isTrue(labelsHere.has(l) || targetLabels.has(l), `${where}: no metric of "${expr}" has label ${l}`)
            }
          }
          for (const m of expr.matchAll(/label_values\(\s*([a-zA-Z0-9_:]+)\s*,\s*([a-zA-Z0-9_]+)\s*\)/g)) {
            assert.isTrue(metrics.get(m[1]!)?.has(m[2]!) === true, `${where}: ${m[1]} has no label ${m[2]}`)
          }
          for (const m of (legend ?? "").matchAll(/\{\{\s*([a-zA-Z0-9_]+)\s*\}\}/g)) {
            assert.isTrue(labelsHere.has(m[1]!), `${where}: the legend names label ${m[1]}, absent from "${expr}"`)
          }
          for (const w of text.matchAll(/\b([a-z_]+)\s*\(/g)) {
            assert.isTrue(promqlWords.has(w[1]!), `${where}: unexpected function ${w[1]} in "${expr}"`)
          }
        }
        // the views the issue asks for are there
        for (
          const name of [
            "cos_retention_deleted_keys_total",
            "cos_retention_failed_keys_total",
            "cos_retention_run_duration_seconds_bucket",
            "cos_retention_throttled_total",
            "cos_retention_last_success_timestamp_seconds",
            "cos_retention_next_run_timestamp_seconds",
            "cos_retention_audit_pending_rows",
            "cos_retention_schedule_period_seconds",
            "up"
          ]
        ) assert.isTrue(named.has(name), `${name} is used by neither file`)
        // the scraped values make sense for the rule that just ran
        assert.isTrue(metrics.get("cos_retention_next_run_timestamp_seconds")?.has("rule"))
      }).pipe(Effect.scoped),
    30_000
  )
})
