/**
 * The status server (127.0.0.1:9464 by default): `/` (an HTML status page, StatusPage.ts), `/healthz`, `/readyz`,
 * `/metrics` (Prometheus text) and `/status` (JSON: rules, next fire time, run in progress, last run; in cluster mode
 * the runners and the rules this replica holds). It shows rule settings and counts, never credentials.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import { type Rule, Settings } from "./Config.js"
import * as Metrics from "./Metrics.js"
import { type RunRecord, State } from "./State.js"
import { Status } from "./Status.js"
import * as StatusPage from "./StatusPage.js"

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString())

export const runJson = (r: RunRecord) => ({
  id: r.id,
  trigger: r.trigger,
  status: r.status,
  dryRun: r.dryRun,
  startedAt: iso(r.startedAt),
  endedAt: iso(r.endedAt),
  resumedFrom: r.resumedFrom,
  scheduledAt: iso(r.scheduledAt),
  listed: r.listed,
  matched: r.matched,
  deleted: r.deleted,
  bytes: r.bytes,
  failed: r.failed,
  skipped: r.skipped,
  throttled: r.throttled,
  error: r.error,
  // cluster mode only: the replica that ran it
  ...(r.runner === null ? {} : { runner: r.runner })
})

/** The public view of a rule: its settings, without credentials. */
export const ruleJson = (rule: Rule) => ({
  name: rule.name,
  enabled: rule.enabled,
  bucket: rule.bucket,
  region: rule.region,
  prefix: rule.prefix,
  schedule: rule.schedule,
  timezone: rule.timezone,
  olderThan: rule.olderThanText ?? null,
  keepLatest: rule.keepLatest ?? null,
  versions: rule.versions,
  dryRun: rule.dryRun,
  catchUp: rule.catchUp
})

/** One runner of the cluster, as the engine records it in its `cluster_runners` table. */
export interface ClusterRunner {
  /** `HOST:PORT`, its `--runner-address`. */
  readonly address: string
  /** The engine's health flag (its last health check of that runner). */
  readonly healthy: boolean
  /** Its last heartbeat (the engine refreshes it with its shard locks), epoch ms as this replica's clock sees it. */
  readonly lastSeenAt: number
  /** This replica. */
  readonly self: boolean
}

/** One chunk of a split run not finished yet (`parallelism: N`), as its plan in Postgres records it. */
export interface ClusterChunk {
  readonly rule: string
  readonly runId: number
  /** 0-based, of `chunks`. */
  readonly chunk: number
  readonly chunks: number
  readonly status: "planned" | "running" | "interrupted"
  /** The runner running it, or the last one that did (null before the first). */
  readonly runner: string | null
  readonly attempts: number
  /** The chunk's own checkpoint: every key up to it is settled. */
  readonly checkpoint: string | null
}

/**
 * What the status server shows of the cluster; provided in cluster mode only (Cluster.ts), so that outside it the
 * page and `/status` show nothing of the kind.
 */
export class ClusterView extends Context.Tag("@effect-cos/daemon/HttpStatus/ClusterView")<ClusterView, {
  /** This replica's runner address. */
  readonly self: string
  readonly runners: Effect.Effect<ReadonlyArray<ClusterRunner>>
  /** Whether this replica holds the rule now (owns the shard of the rule's entity). */
  readonly holds: (rule: string) => Effect.Effect<boolean>
  /** The chunks of split runs not finished yet, and who runs them. */
  readonly chunks: Effect.Effect<ReadonlyArray<ClusterChunk>>
}>() {}

const clusterRunnerJson = (r: ClusterRunner) => ({
  address: r.address,
  healthy: r.healthy,
  lastSeenAt: iso(r.lastSeenAt),
  self: r.self
})

/** The status server could not start (address in use, ...). */
export class HttpStatusError extends Schema.TaggedError<HttpStatusError>()("HttpStatusError", {
  message: Schema.String
}) {}

const make = Effect.gen(function*() {
  const settings = yield* Settings
  const state = yield* State
  const status = yield* Status
  const cluster = yield* Effect.serviceOption(ClusterView)

  /** In cluster mode: the runners, and the rules this replica holds. */
  const clusterNow = Option.match(cluster, {
    onNone: () => Effect.succeed(undefined),
    onSome: (view) =>
      Effect.all({
        runners: view.runners,
        held: Effect.filter(settings.rules.map((r) => r.name), view.holds),
        chunks: view.chunks
      }).pipe(Effect.map(({ chunks, held, runners }) => ({ self: view.self, runners, held, chunks })))
  })

  const statusJson = Effect.gen(function*() {
    const live = yield* status.rules
    const view = yield* clusterNow
    const rules = yield* Effect.forEach(settings.rules, (rule) =>
      Effect.gen(function*() {
        const l = live.get(rule.name)
        const last = yield* state.lastRun(rule.name)
        const lastSuccess = yield* state.lastSuccess(rule.name)
        return {
          ...ruleJson(rule),
          nextFire: l?.nextFire?.toISOString() ?? null,
          running: l?.current === undefined ? null : {
            runId: l.current.runId,
            startedAt: iso(l.current.startedAt),
            progress: l.current.progress ?? null
          },
          skippedOverlaps: l?.skippedOverlaps ?? 0,
          lastRun: last === undefined ? null : runJson(last),
          lastSuccessAt: iso(lastSuccess?.endedAt),
          ...(view === undefined ? {} : { heldHere: view.held.includes(rule.name) })
        }
      }))
    return {
      ready: yield* status.ready,
      rules,
      ...(view === undefined ? {} : {
        cluster: {
          self: view.self,
          runners: view.runners.map(clusterRunnerJson),
          held: view.held,
          chunks: view.chunks
        }
      })
    }
  })

  const page = Effect.gen(function*() {
    const live = yield* status.rules
    const rules = yield* Effect.forEach(settings.rules, (rule) =>
      Effect.gen(function*() {
        const l = live.get(rule.name)
        const lastSuccess = yield* state.lastSuccess(rule.name)
        return {
          ...ruleJson(rule),
          nextFire: l?.nextFire,
          running: l?.current === undefined ? null : {
            runId: l.current.runId,
            startedAt: l.current.startedAt,
            progress: l.current.progress ?? null
          },
          lastSuccessAt: lastSuccess?.endedAt ?? null,
          runs: yield* state.recentRuns({ limit: 8, rule: rule.name })
        }
      }))
    return StatusPage.render({
      now: yield* Clock.currentTimeMillis,
      ready: yield* status.ready,
      rules,
      cluster: yield* clusterNow
    })
  })

  /** Gauges read from the state database when Prometheus scrapes. */
  const refreshGauges = Effect.flatMap(state.pendingCounts, (pending) =>
    Effect.forEach(
      settings.rules,
      (rule) => Metrics.setAuditPending(rule.name, pending.get(rule.name) ?? 0),
      { discard: true }
    ))

  const router = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/",
      Effect.map(page, (body) =>
        HttpServerResponse.html(body).pipe(
          HttpServerResponse.setHeaders({
            "cache-control": "no-store",
            // the page loads nothing from anywhere: its style and script are inline
            "content-security-policy":
              "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'"
          })
        ))
    ),
    HttpRouter.get("/healthz", HttpServerResponse.text("ok\n")),
    HttpRouter.get(
      "/readyz",
      Effect.map(
        status.ready,
        (ready) => ready ? HttpServerResponse.text("ready\n") : HttpServerResponse.text("starting\n", { status: 503 })
      )
    ),
    HttpRouter.get(
      "/metrics",
      Effect.map(
        Effect.zipRight(
          refreshGauges,
          Option.match(cluster, {
            onNone: () => Metrics.prometheus,
            onSome: (view) => Metrics.prometheusWith([["runner", view.self]])
          })
        ),
        (body) => HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
      )
    ),
    HttpRouter.get("/status", Effect.map(statusJson, (body) => HttpServerResponse.unsafeJson(body)))
  )

  const server = yield* NodeHttpServer.make(() => createServer(), {
    host: settings.http.host,
    port: settings.http.port
  }).pipe(
    Effect.mapError((e) =>
      new HttpStatusError({
        message: `the status server cannot listen on ${settings.http.host}:${settings.http.port}: ${
          e.cause instanceof Error ? e.cause.message : String(e.cause)
        }`
      })
    )
  )
  yield* server.serve(router)
  const address = server.address as HttpServer.TcpAddress
  yield* Effect.logInfo(`status server listening on http://${address.hostname}:${address.port}`)
  return { address } as const
})

export class HttpStatus extends Effect.Service<HttpStatus>()("@effect-cos/daemon/HttpStatus", {
  scoped: make,
  dependencies: [State.Default, Status.Default]
}) {}

/** The status server when the configuration enables it (`http.enabled`, default true). */
export const layer: Layer.Layer<never, HttpStatusError, Settings | State | Status> = Layer.unwrapEffect(
  Effect.map(
    Settings,
    (settings) => settings.http.enabled ? Layer.discard(HttpStatus.DefaultWithoutDependencies) : Layer.empty
  )
)
