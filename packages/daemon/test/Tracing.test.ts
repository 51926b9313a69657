/**
 * Traces of one run as an OTLP collector receives them: the daemon's exporter (Tracing.layerExporter, the one `run`
 * and `once` use) over an HttpClient that keeps the OTLP/JSON requests in memory, a run over the in-memory fake COS,
 * then the tree of spans is checked against what docs/daemon.md ("Traces") says.
 */
import { CosFake, Store } from "@effect-cos/testkit"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Tracer from "effect/Tracer"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Config from "../src/Config.js"
import * as Daemon from "../src/Daemon.js"
import { Runner } from "../src/Runner.js"
import { State } from "../src/State.js"
import * as Tracing from "../src/Tracing.js"
import { testPurger } from "./support/purger.js"

const DAY = 86_400_000
const bucket = CosFake.testBucket
const secretKey = Redacted.value(CosFake.testCredentials.secretKey)

const settings = (() => {
  const result = Config.decode(
    {
      cos: {
        region: CosFake.testRegion,
        credentials: { secretId: CosFake.testCredentials.secretId, secretKey }
      },
      state: ":memory:",
      rules: [{
        name: "expire-logs",
        bucket,
        prefix: "logs/",
        olderThan: "1d",
        schedule: "0 3 * * *",
        listConcurrency: 4,
        batchSize: 1000
      }]
    },
    { source: "test", baseDir: "/" }
  )
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
})()
const rule = settings.rules[0]!

interface Span {
  readonly name: string
  readonly spanId: string
  readonly parentSpanId?: string | undefined
  readonly attributes: Record<string, unknown>
}

/** An HttpClient standing in for the collector: keeps every OTLP/JSON body, answers 200. */
const collector = () => {
  const bodies: Array<string> = []
  const layer = Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request) =>
      Effect.sync(() => {
        if (request.body._tag === "Uint8Array") bodies.push(new TextDecoder().decode(request.body.body))
        return HttpClientResponse.fromWeb(request, new Response("{}", { status: 200 }))
      })
    )
  )
  return { bodies, layer, spans: () => spansOf(bodies) }
}

/** The spans of OTLP/JSON request bodies. */
const spansOf = (bodies: ReadonlyArray<string>): Array<Span> =>
  bodies.flatMap((b) =>
    JSON.parse(b).resourceSpans.flatMap((rs: any) =>
      rs.scopeSpans.flatMap((ss: any) =>
        ss.spans.map((s: any): Span => ({
          name: s.name,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId,
          attributes: Object.fromEntries(
            s.attributes.map((a: any) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.boolValue])
          )
        }))
      )
    )
  )

/** A collector on 127.0.0.1 (an ephemeral port): keeps every request body, answers 200. */
const collectorServer = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly bodies: Array<string>; readonly server: Http.Server }>((resume) => {
    const bodies: Array<string> = []
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        bodies.push(Buffer.concat(chunks).toString("utf8"))
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, bodies, server }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

/** A tracer that records the name of every span it is asked for (and otherwise is Effect's own). */
const recordingTracer = (native: Tracer.Tracer) => {
  const names: Array<string> = []
  const tracer = Tracer.make({
    span: (name, ...rest) => {
      names.push(name)
      return native.span(name, ...rest)
    },
    context: (f, fiber) => native.context(f, fiber)
  })
  return { names, tracer }
}

describe("Tracing", () => {
  it.live("one run: Runner.run > Deletion.purge > listRange and deleteBatch spans, with counts, never a secret", () =>
    Effect.gen(function*() {
      const otlp = collector()
      const tracing = Tracing.layerExporter(
        { url: "http://127.0.0.1:4318/v1/traces", serviceName: "cos-retention-test", headers: Redacted.make({}) },
        { exportInterval: "1 hour" }
      ).pipe(Layer.provide(otlp.layer))

      yield* Effect.gen(function*() {
        const fake = yield* CosFake.CosFake
        yield* Store.seed(fake.store, { bucket, count: 2500, prefix: "logs/", ageMs: () => 2 * DAY })
        yield* Store.seed(fake.store, { bucket, count: 20, prefix: "logs/new-", ageMs: () => 0 })
        const runner = yield* Runner
        const outcome = yield* runner.run(rule, { trigger: "once" })
        assert.strictEqual(outcome.run.deleted, 2500)
      }).pipe(
        Effect.provide(Daemon.servicesWith(testPurger()).pipe(Layer.provide(Config.Settings.layer(settings)))),
        // the exporter flushes when this layer's scope closes
        Effect.provide(tracing)
      )

      const spans = otlp.spans()
      const tree = spans.map((s) => `${s.name} ${JSON.stringify(s.attributes)}`).join("\n")
      const byId = new Map(spans.map((s) => [s.spanId, s]))
      const parentName = (s: Span) => s.parentSpanId === undefined ? undefined : byId.get(s.parentSpanId)?.name
      const named = (name: string) => spans.filter((s) => s.name === name)

      const [run, ...moreRuns] = named("Runner.run")
      assert.isDefined(run, tree)
      assert.strictEqual(moreRuns.length, 0)
      assert.isUndefined(run!.parentSpanId)
      assert.deepInclude(run!.attributes, {
        rule: "expire-logs",
        bucket,
        prefix: "logs/",
        trigger: "once",
        outcome: "succeeded"
      })

      const [purge, ...morePurges] = named("Deletion.purge")
      assert.strictEqual(morePurges.length, 0)
      assert.strictEqual(purge!.parentSpanId, run!.spanId)
      assert.deepInclude(purge!.attributes, {
        rule: "expire-logs",
        bucket,
        prefix: "logs/",
        listed: 2520,
        matched: 2500,
        deleted: 2500,
        failed: 0,
        outcome: "completed"
      })

      const ranges = named("Deletion.listRange")
      assert.isAtLeast(ranges.length, 1)
      for (const r of ranges) {
        assert.strictEqual(r.parentSpanId, purge!.spanId, tree)
        assert.deepInclude(r.attributes, { rule: "expire-logs", prefix: "logs/", outcome: "done" })
      }
      // the ranges cover the listing exactly once
      assert.strictEqual(ranges.reduce((n, r) => n + Number(r.attributes.keys), 0), 2520)

      const batches = named("Deletion.deleteBatch")
      assert.deepStrictEqual(batches.map((b) => Number(b.attributes.keys)).sort(), [1000, 1000, 500].sort())
      for (const b of batches) {
        assert.strictEqual(b.parentSpanId, purge!.spanId)
        assert.strictEqual(b.attributes.outcome, "deleted")
        assert.strictEqual(b.attributes.deleted, b.attributes.keys)
        assert.strictEqual(b.attributes.failed, 0)
      }

      // each request under its range or batch, each HTTP exchange under its request
      const lists = named("CosClient.listObjects")
      assert.isAtLeast(lists.length, 3)
      for (const l of lists) assert.strictEqual(parentName(l), "Deletion.listRange")
      const deletes = named("CosClient.deleteObjects")
      assert.strictEqual(deletes.length, 3)
      for (const d of deletes) assert.strictEqual(parentName(d), "Deletion.deleteBatch")
      const http = spans.filter((s) => s.name.startsWith("http.client"))
      assert.strictEqual(http.length, lists.length + deletes.length)
      for (const h of http) assert.include(["CosClient.listObjects", "CosClient.deleteObjects"], parentName(h))

      // every span of the run names its rule (the others are the state database's start-up statements)
      const inRun = (s: Span): boolean =>
        s === run || (s.parentSpanId !== undefined && byId.has(s.parentSpanId) && inRun(byId.get(s.parentSpanId)!))
      const ofRun = spans.filter(inRun)
      for (const s of ofRun) assert.strictEqual(s.attributes.rule, "expire-logs", `${s.name} has no rule attribute`)
      for (const s of spans.filter((s) => !inRun(s))) assert.match(s.name, /^sql\./, tree)
      // no span per key: spans grow with requests, not keys
      assert.isBelow(ofRun.length, 120, tree)

      const exported = otlp.bodies.join("\n")
      assert.notInclude(exported, secretKey)
      assert.notInclude(exported, "q-signature")
      assert.include(exported, "cos-retention-test")
    }))

  it.live("a batch whose keys COS refuses at first keeps one span: its retries add up on it", () =>
    Effect.gen(function*() {
      const otlp = collector()
      const tracing = Tracing.layerExporter(
        { url: "http://127.0.0.1:4318/v1/traces", serviceName: "t", headers: Redacted.make({}) },
        { exportInterval: "1 hour" }
      ).pipe(Layer.provide(otlp.layer))
      yield* Effect.gen(function*() {
        const fake = yield* CosFake.CosFake
        yield* Store.seed(fake.store, { bucket, count: 1500, prefix: "logs/", ageMs: () => 2 * DAY })
        const outcome = yield* (yield* Runner).run(rule, { trigger: "once" })
        assert.strictEqual(outcome.run.deleted, 1500)
      }).pipe(
        // per-key InternalError answers inside 200 replies: retried in smaller batches until deleted
        Effect.provide(
          Daemon.servicesWith(testPurger({ faults: { batchKeyErrorRate: 0.05 } })).pipe(
            Layer.provide(Config.Settings.layer(settings))
          )
        ),
        Effect.provide(tracing)
      )
      const spans = otlp.spans()
      const batches = spans.filter((s) => s.name === "Deletion.deleteBatch")
      assert.deepStrictEqual(batches.map((b) => Number(b.attributes.keys)).sort(), [1000, 500].sort())
      for (const b of batches) {
        assert.strictEqual(b.attributes.deleted, b.attributes.keys)
        assert.strictEqual(b.attributes.outcome, "deleted")
      }
      assert.isAbove(spans.filter((s) => s.name === "CosClient.deleteObjects").length, 2, "retries were sent")
    }))

  it.live("Tracing.layer (what run and once use) with an endpoint: the run's spans reach the collector", () =>
    Effect.gen(function*() {
      const server = yield* collectorServer
      yield* Effect.gen(function*() {
        const fake = yield* CosFake.CosFake
        yield* Store.seed(fake.store, { bucket, count: 1200, prefix: "logs/", ageMs: () => 2 * DAY })
        const outcome = yield* (yield* Runner).run(rule, { trigger: "once" })
        assert.strictEqual(outcome.run.deleted, 1200)
      }).pipe(
        Effect.provide(Daemon.servicesWith(testPurger()).pipe(Layer.provide(Config.Settings.layer(settings)))),
        // spans are flushed when this layer's scope closes
        Effect.provide(Tracing.layer({ endpoint: server.url, serviceName: "cos-retention-layer-test" }))
      )
      const spans = spansOf(server.bodies)
      const names = spans.map((s) => s.name)
      assert.include(names, "Runner.run")
      assert.include(names, "Deletion.purge")
      assert.deepStrictEqual(
        spans.filter((s) => s.name === "Deletion.deleteBatch").map((b) => Number(b.attributes.deleted)).sort(),
        [1000, 200].sort()
      )
      assert.include(server.bodies.join("\n"), "cos-retention-layer-test")
    }).pipe(Effect.scoped))

  it.live("tracing off: a run builds no span at all (nothing would receive them), and deletes as before", () =>
    Effect.gen(function*() {
      const runOnce = (tracing: Layer.Layer<never> | Layer.Layer<Tracing.Exporting, Tracing.TracingConfigError>) =>
        Effect.gen(function*() {
          const recording = recordingTracer(yield* Effect.tracer)
          const deleted = yield* Effect.gen(function*() {
            const fake = yield* CosFake.CosFake
            yield* Store.seed(fake.store, { bucket, count: 1200, prefix: "logs/", ageMs: () => 2 * DAY })
            const runner = yield* Runner
            // only the run's own spans: the state's start-up statements are behind us
            recording.names.length = 0
            return (yield* runner.run(rule, { trigger: "once" })).run.deleted
          }).pipe(
            Effect.provide(Daemon.servicesWith(testPurger()).pipe(Layer.provide(Config.Settings.layer(settings)))),
            Effect.provide(tracing),
            Effect.withTracer(recording.tracer)
          )
          return { deleted, names: recording.names }
        })
      const off = yield* runOnce(Tracing.layer({ enabled: false }))
      assert.strictEqual(off.deleted, 1200)
      assert.deepStrictEqual(off.names, [])
      // the same run where spans are wanted (no Tracing.layer saying they are not): the tracer is asked for them
      const on = yield* runOnce(Layer.empty)
      assert.strictEqual(on.deleted, 1200)
      assert.include(on.names, "Runner.run")
      assert.include(on.names, "Deletion.deleteBatch")
    }))

  it.live("tracing off: the reconcile of a killed run's in-flight keys (one HEAD each) builds no span either", () =>
    Effect.gen(function*() {
      const reconcileOnce = (
        tracing: Layer.Layer<never> | Layer.Layer<Tracing.Exporting, Tracing.TracingConfigError>
      ) =>
        Effect.gen(function*() {
          const recording = recordingTracer(yield* Effect.tracer)
          const result = yield* Effect.gen(function*() {
            const fake = yield* CosFake.CosFake
            yield* Store.seed(fake.store, { bucket, count: 1, keyFn: () => "logs/kept", ageMs: () => 2 * DAY })
            const state = yield* State
            // a run killed with a batch in flight: two of its keys are gone, one is still there
            const killed = yield* state.startRun({ rule: rule.name, trigger: "schedule", dryRun: false })
            yield* state.recordIntent({ id: killed.id, rule: rule.name, bucket }, [
              { key: "logs/gone-1" },
              { key: "logs/gone-2" },
              { key: "logs/kept" }
            ])
            yield* state.markAbandoned
            recording.names.length = 0
            const confirmed = yield* (yield* Runner).reconcile(rule)
            const rows = yield* state.audit({ runId: killed.id })
            return { confirmed, rows: rows.map((r) => [r.key, r.state]) }
          }).pipe(
            Effect.provide(Daemon.servicesWith(testPurger()).pipe(Layer.provide(Config.Settings.layer(settings)))),
            Effect.provide(tracing),
            Effect.withTracer(recording.tracer)
          )
          return { ...result, names: recording.names }
        })
      const off = yield* reconcileOnce(Tracing.layer({ enabled: false }))
      assert.strictEqual(off.confirmed, 2)
      // the key still there is not deleted: its pending row goes
      assert.deepStrictEqual(off.rows, [["logs/gone-1", "deleted"], ["logs/gone-2", "deleted"]])
      assert.deepStrictEqual(off.names.filter((n) => !n.startsWith("sql.")), [])
      const on = yield* reconcileOnce(Layer.empty)
      assert.strictEqual(on.confirmed, 2)
      assert.include(on.names, "CosClient.headObject")
    }))

  it.effect("is off by default, on with the standard variables or the tracing section; bad values are named", () =>
    Effect.gen(function*() {
      const resolve = (env: Record<string, string>, section: Config.RetentionConfig["tracing"] = {}) =>
        Tracing.settings(section).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
          Effect.map((s) => s === undefined ? undefined : { url: s.url, serviceName: s.serviceName })
        )
      assert.isUndefined(yield* resolve({}))
      assert.deepStrictEqual(yield* resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/" }), {
        url: "http://127.0.0.1:4318/v1/traces",
        serviceName: "cos-retention"
      })
      assert.deepStrictEqual(
        yield* resolve({
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://otel.example/custom/traces",
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
          OTEL_SERVICE_NAME: "retention-prod"
        }),
        { url: "https://otel.example/custom/traces", serviceName: "retention-prod" }
      )
      assert.isUndefined(
        yield* resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "true" })
      )
      assert.isUndefined(yield* resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }, { enabled: false }))
      assert.deepStrictEqual(
        yield* resolve({ OTEL_SERVICE_NAME: "from-env" }, { endpoint: "http://127.0.0.1:9999", serviceName: "ours" }),
        { url: "http://127.0.0.1:9999/v1/traces", serviceName: "ours" }
      )
      assert.deepStrictEqual(yield* resolve({}, { enabled: true }), {
        url: "http://localhost:4318/v1/traces",
        serviceName: "cos-retention"
      })
      const headers = yield* Tracing.settings({}).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(
          new Map([["OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"], [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-api-key=s%3Dcret, team = ops"
          ]])
        ))
      )
      assert.deepStrictEqual(Redacted.value(headers!.headers), { "x-api-key": "s=cret", team: "ops" })
      assert.notInclude(String(headers!.headers), "cret")

      const bad = yield* Effect.flip(resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" }))
      assert.strictEqual(bad.message, "OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL")
      const badHeaders = yield* Effect.flip(
        resolve({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_EXPORTER_OTLP_HEADERS: "novalue" })
      )
      assert.strictEqual(
        badHeaders.message,
        "OTEL_EXPORTER_OTLP_HEADERS: expected name=value pairs separated by commas"
      )
    }))

  it.effect("a tracing section in the file is checked like the rest", () =>
    Effect.sync(() => {
      const result = Config.decode(
        {
          cos: { region: CosFake.testRegion },
          tracing: { endpoint: "localhost:4318" },
          rules: [{ name: "r", bucket, prefix: "p/", olderThan: "1d", schedule: "0 3 * * *" }]
        },
        { source: "test", baseDir: "/" }
      )
      assert.isTrue(Either.isLeft(result))
      if (Either.isLeft(result)) assert.include(result.left.message, "tracing.endpoint")
    }))
})
