/**
 * The fake COS as a service: a store, faults and counters behind one HTTP handler, and a `layer` that provides an
 * `HttpClient` answering from that handler in process (no sockets), so `CosClient` runs on it unmodified.
 *
 * @since 0.1.0
 */
import type { CosError } from "@effect-cos/core"
import { CosClient, Credentials } from "@effect-cos/core"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import type * as Faults from "./Faults.js"
import { FaultState, StatsState } from "./internal/faults.js"
import * as handler from "./internal/handler/index.js"
import type * as Stats from "./Stats.js"
import * as Store from "./Store.js"

/**
 * A credential the fake accepts. The shape of `@effect-cos/core`'s `Credentials`, so one value serves both sides.
 * With `securityToken` (temporary credentials) every request must carry a matching `x-cos-security-token`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Credential {
  readonly secretId: string
  readonly secretKey: Redacted.Redacted<string>
  readonly securityToken?: Redacted.Redacted<string> | undefined
}

/**
 * A fixed credential pair for tests (accepted by every fake unless `credentials` says otherwise).
 *
 * @since 0.1.0
 * @category fixtures
 */
export const testCredentials: Credential = {
  secretId: "AKIDfakeTestkit0000000000000000000000",
  secretKey: Redacted.make("fakeTestkitSecretKey0000000000000")
}

/**
 * The default bucket of the fixtures.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const testBucket = "examplebucket-1250000000"

/**
 * The default region of the fixtures.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const testRegion = "ap-guangzhou"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** An existing store to serve; otherwise a new one is made. */
  readonly store?: Store.Store | undefined
  /** Buckets to create (in the given or new store). Default: `[testBucket]` when no store is given. */
  readonly buckets?: ReadonlyArray<Store.BucketOptions | string> | undefined
  /** Objects to seed at construction time (reads `Clock`). */
  readonly seed?: ReadonlyArray<Store.SeedOptions> | undefined
  /**
   * The bucket for requests whose Host is not `<bucket>.cos.<region>.<domain>` (e.g. `127.0.0.1:9000`, a custom
   * domain). Default: the first of `buckets`.
   */
  readonly defaultBucket?: string | undefined
  /** Accepted credentials. Default `[testCredentials]`. */
  readonly credentials?: ReadonlyArray<Credential> | undefined
  /** Verify signatures (default true). `false` accepts anything, for quick experiments. */
  readonly auth?: boolean | undefined
  readonly faults?: Faults.Config | undefined
  /** Entries kept in the request log. Default 1000. */
  readonly logCapacity?: number | undefined
  /** Serve the counters as JSON at `GET /_fake/stats` (not a COS route). Default false. */
  readonly statsEndpoint?: boolean | undefined
}

/**
 * A request as the fake sees it: header names lower-case, `url` the raw path and query as sent.
 *
 * @since 0.1.0
 * @category models
 */
export type FakeRequest = handler.FakeRequest

/**
 * The fake's answer: a response, or an injected connection reset / timeout.
 *
 * @since 0.1.0
 * @category models
 */
export type FakeResponse = handler.FakeResponse

/**
 * @since 0.1.0
 * @category models
 */
export interface CosFake {
  readonly store: Store.Store
  readonly defaultBucket: string | undefined
  /** The HTTP handler shared by the in-process client and the socket server. */
  readonly handle: (request: FakeRequest) => Effect.Effect<FakeResponse>
  /** Replaces the fault configuration (and resets quota buckets, script and random generator). */
  readonly setFaults: (config: Faults.Config) => Effect.Effect<void>
  /** Adds a scripted fault to the current configuration. */
  readonly script: (scripted: Faults.Scripted) => Effect.Effect<void>
  /** Counters and the recent-request log. */
  readonly stats: Effect.Effect<Stats.Snapshot>
  readonly resetStats: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const CosFake: Context.Tag<CosFake, CosFake> = Context.GenericTag<CosFake>("@effect-cos/testkit/CosFake")

/**
 * Builds a fake.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<CosFake> =>
  Effect.gen(function*() {
    const store = options.store ?? Store.make()
    const buckets = options.buckets ?? (options.store === undefined ? [testBucket] : [])
    for (const b of buckets) {
      yield* Store.createBucket(store, typeof b === "string" ? { name: b, region: testRegion } : b)
    }
    for (const s of options.seed ?? []) yield* Store.seed(store, s)
    const first = buckets[0]
    const defaultBucket = options.defaultBucket ?? (typeof first === "string" ? first : first?.name) ??
      store.impl.buckets.keys().next().value
    const faults = new FaultState(options.faults ?? {})
    const stats = new StatsState(options.logCapacity ?? 1000)
    const handle = handler.makeHandler({
      store: store.impl,
      credentials: options.credentials ?? [testCredentials],
      auth: options.auth ?? true,
      defaultBucket,
      faults,
      stats,
      statsEndpoint: options.statsEndpoint ?? false
    })
    return {
      store,
      defaultBucket,
      handle,
      setFaults: (config) => Effect.sync(() => faults.set(config)),
      script: (s) => Effect.sync(() => faults.addScript(s)),
      stats: Effect.sync(() => stats.snapshot()),
      resetStats: Effect.sync(() => stats.reset())
    } satisfies CosFake
  })

const bodyBytes = (body: HttpClientRequest.HttpClientRequest["body"]): Effect.Effect<Uint8Array, unknown> => {
  switch (body._tag) {
    case "Empty":
      return Effect.succeed(new Uint8Array(0))
    case "Uint8Array":
      return Effect.succeed(body.body)
    case "Raw":
      return typeof body.body === "string" ?
        Effect.succeed(new TextEncoder().encode(body.body)) :
        body.body instanceof Uint8Array ?
        Effect.succeed(body.body) :
        Effect.fail(new Error("unsupported raw body"))
    case "Stream":
      return Effect.map(
        Stream.runCollect(body.stream),
        (chunks) => {
          const parts = Chunk.toReadonlyArray(chunks)
          const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
          let o = 0
          for (const p of parts) {
            out.set(p, o)
            o += p.length
          }
          return out
        }
      )
    case "FormData":
      return Effect.fail(new Error("FormData bodies are not supported by the fake"))
  }
}

/**
 * An `HttpClient` that answers every request from the fake's handler, in process. It adds `Host` (from the URL)
 * and `Content-Length` (for PUT/POST and non-empty bodies) like a real HTTP stack; an injected `Reset` fails with
 * a `RequestError` (reason `Transport`), an injected `Timeout` never answers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const httpClient = (fake: CosFake): HttpClient.HttpClient =>
  HttpClient.make((request, url) =>
    Effect.gen(function*() {
      const body = yield* Effect.mapError(
        bodyBytes(request.body),
        (cause) => new HttpClientError.RequestError({ request, reason: "Encode", cause })
      )
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(request.headers)) headers[k.toLowerCase()] = v
      headers["host"] ??= url.host
      if (
        headers["content-length"] === undefined &&
        (body.length > 0 || request.method === "PUT" || request.method === "POST")
      ) {
        headers["content-length"] = String(body.length)
      }
      const res = yield* fake.handle({ method: request.method, url: url.pathname + url.search, headers, body })
      switch (res._tag) {
        case "Reset":
          return yield* Effect.fail(
            new HttpClientError.RequestError({
              request,
              reason: "Transport",
              cause: new Error("socket hang up (ECONNRESET injected by the fake)"),
              description: "connection reset"
            })
          )
        case "Timeout":
          return yield* Effect.never
        case "Response": {
          const noBody = res.status === 204 || res.status === 304 || request.method === "HEAD"
          return HttpClientResponse.fromWeb(
            request,
            new Response(noBody ? null : res.body, { status: res.status, headers: res.headers })
          )
        }
      }
    })
  )

/**
 * Provides the fake (`CosFake`) and an in-process `HttpClient` routed to it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<CosFake | HttpClient.HttpClient> =>
  Layer.effectContext(
    Effect.map(make(options), (fake) =>
      Context.make(CosFake, fake).pipe(Context.add(HttpClient.HttpClient, httpClient(fake))))
  )

/**
 * A fake with `testBucket` (in `testRegion`, accepting `testCredentials`) holding `count` seeded objects.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSeeded = (
  seed: Omit<Store.SeedOptions, "bucket"> & { readonly bucket?: string | undefined },
  options: Omit<Options, "seed"> = {}
): Layer.Layer<CosFake | HttpClient.HttpClient> =>
  layer({ ...options, seed: [{ ...seed, bucket: seed.bucket ?? testBucket }] })

/**
 * `CosClient` options that reach a fake built with the fixtures: `testRegion`, `testBucket`, `testCredentials`,
 * plain http. With no `endpoint` the client sends `Host: <testBucket>.cos.<testRegion>.myqcloud.com`, which the
 * in-process fake routes by; for a socket server add `endpoint: server.url`.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const testClientOptions: CosClient.Options = {
  region: testRegion,
  bucket: testBucket,
  credentials: Credentials.fromStatic(testCredentials),
  scheme: "http"
}

/**
 * A fake plus a `CosClient` wired to it in process: everything a unit test of code that uses `CosClient` needs.
 * `client` overrides fields of {@link testClientOptions} (e.g. `retry`, `timeout`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithClient = (
  options: Options = {},
  client: Partial<CosClient.Options> = {}
): Layer.Layer<CosClient.CosClient | CosFake | HttpClient.HttpClient, CosError.CosInvalidRequest> =>
  Layer.provideMerge(CosClient.layer({ ...testClientOptions, ...client }), layer(options))
