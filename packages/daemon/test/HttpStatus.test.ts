import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metrics from "../src/Metrics.js"
import { emptyCounts } from "../src/State.js"
import { httpGet, startHttpStatus, statusSettings } from "./support/status.js"

const secret = "do-not-show-this-secret-key"

const settings = statusSettings(secret, "logs/")

const get = (port: number, path: string) =>
  Effect.map(httpGet(port, path), (res) => ({
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    body: res.body
  }))

describe("HttpStatus", () => {
  it.scoped("serves /healthz, /readyz, /metrics and /status on 127.0.0.1, never a secret", () =>
    Effect.gen(function*() {
      const { address, state, status } = yield* startHttpStatus(settings)
      assert.strictEqual(address.hostname, "127.0.0.1")
      assert.isAbove(address.port, 0)

      assert.deepStrictEqual(yield* get(address.port, "/healthz"), { status: 200, type: "text/plain", body: "ok\n" })
      assert.strictEqual((yield* get(address.port, "/readyz")).status, 503)
      yield* status.setReady(true)
      assert.strictEqual((yield* get(address.port, "/readyz")).status, 200)
      assert.strictEqual((yield* get(address.port, "/nope")).status, 404)

      // one finished run, as the runner records it
      const run = yield* state.startRun({ rule: "expire-logs", trigger: "schedule", dryRun: false })
      yield* state.finishRun(run.id, "succeeded", { ...emptyCounts, listed: 10, matched: 4, deleted: 4, bytes: 4096 })
      yield* Metrics.recordRun("expire-logs", "succeeded", 2.5)
      yield* Metrics.recordDeleted("expire-logs", 4, 4096)
      yield* Metrics.recordOverlap("expire-logs")
      yield* Metrics.recordSuccessAt("expire-logs", 1_700_000_000)
      yield* status.update("expire-logs", (l) => ({ ...l, nextFire: new Date("2026-03-01T19:00:00Z") }))

      const metrics = yield* get(address.port, "/metrics")
      assert.strictEqual(metrics.status, 200)
      assert.match(metrics.type, /^text\/plain; version=0\.0\.4/)
      for (
        const line of [
          "# TYPE cos_retention_runs_total counter",
          `cos_retention_runs_total{rule="expire-logs",status="succeeded"} 1`,
          `cos_retention_deleted_keys_total{rule="expire-logs"} 4`,
          `cos_retention_deleted_bytes_total{rule="expire-logs"} 4096`,
          `cos_retention_skipped_overlaps_total{rule="expire-logs"} 1`,
          `cos_retention_last_success_timestamp_seconds{rule="expire-logs"} 1700000000`,
          "# TYPE cos_retention_run_duration_seconds histogram",
          `cos_retention_run_duration_seconds_bucket{rule="expire-logs",le="5"} 1`,
          `cos_retention_run_duration_seconds_bucket{rule="expire-logs",le="+Inf"} 1`,
          `cos_retention_run_duration_seconds_sum{rule="expire-logs"} 2.5`,
          `cos_retention_run_duration_seconds_count{rule="expire-logs"} 1`
        ]
      ) assert.include(metrics.body.split("\n"), line)

      const json = yield* get(address.port, "/status")
      assert.strictEqual(json.type, "application/json")
      const body = JSON.parse(json.body)
      assert.isTrue(body.ready)
      assert.deepStrictEqual(body.rules.map((r: any) => [r.name, r.enabled, r.nextFire]), [
        ["expire-logs", true, "2026-03-01T19:00:00.000Z"],
        ["off", false, null]
      ])
      const last = body.rules[0].lastRun
      assert.deepStrictEqual([last.status, last.deleted, last.bytes, last.trigger], ["succeeded", 4, 4096, "schedule"])
      assert.strictEqual(body.rules[0].lastSuccessAt, last.endedAt)
      assert.strictEqual(body.rules[0].skippedOverlaps, 0)
      assert.strictEqual(body.rules[0].timezone, "Asia/Shanghai")
      // one daemon, not a cluster: nothing about runners
      assert.notProperty(body, "cluster")
      assert.notProperty(body.rules[0], "heldHere")
      for (const response of [json.body, metrics.body]) {
        assert.notInclude(response, secret)
        assert.notInclude(response, "AKIDshown")
      }
    }))
})
