/**
 * OpenTelemetry traces, off by default. On when the configuration's `tracing` section names an endpoint (or says
 * `enabled: true`), or when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
 * variables are set; spans go as OTLP/HTTP JSON through `@effect/opentelemetry`'s OtlpTracer (no OpenTelemetry SDK
 * is loaded, and nothing is imported while tracing is off).
 *
 * The spans of one run (docs/daemon.md, "Traces"): `Runner.run` > `Deletion.purge` > one `Deletion.listRange` per
 * listing range and one `Deletion.deleteBatch` per batch, each over its `CosClient.*` request spans and their
 * `http.client` spans. Attributes hold rule, bucket, prefix, key counts and outcomes; the HTTP spans' Authorization
 * and `x-cos-security-token` headers are redacted, and no span holds a secret or a signature.
 *
 * With tracing off, a run builds no spans at all (`Exporting`, read by Runner and ClusterSplit): they would be made
 * for nobody, at a cost per request and per batch.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { RetentionConfig } from "./Config.js"

/** Where spans go. */
export interface TracingSettings {
  /** The OTLP/HTTP traces URL (`.../v1/traces`). */
  readonly url: string
  readonly serviceName: string
  /** Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`), often an API key: never logged. */
  readonly headers: Redacted.Redacted<Record<string, string>>
}

/** The tracing settings are unusable (a bad URL or header list): names the variable or field. */
export class TracingConfigError extends Schema.TaggedError<TracingConfigError>()("TracingConfigError", {
  message: Schema.String
}) {}

/**
 * Whether spans leave the process. `false` only from {@link layer} with tracing off: the daemon's runs then go with the
 * tracer disabled (as `purge` does). Without this service (tests, or a tracer set up by other means) spans are built.
 */
export class Exporting extends Context.Reference<Exporting>()("@effect-cos/daemon/Tracing/Exporting", {
  defaultValue: () => true
}) {}

/** The OTLP/HTTP default, as the OpenTelemetry specification gives it. */
export const defaultEndpoint = "http://localhost:4318"

const tracesUrl = (base: string) => base.replace(/\/+$/, "") + "/v1/traces"

const optionalEnv = (name: string) =>
  Effect.map(Config.option(Config.string(name)), (o) => Option.filter(o, (v) => v.trim() !== ""))

const checkUrl = (url: string, where: string) =>
  Effect.try({
    try: () => {
      const parsed = new URL(url)
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("not http")
      return url
    },
    catch: () => new TracingConfigError({ message: `${where}: expected an http:// or https:// URL` })
  })

/** `k1=v1,k2=v2` with URL-encoded values (the OTLP exporter convention). */
const parseHeaders = (text: string, where: string) =>
  Effect.try({
    try: () => {
      const out: Record<string, string> = {}
      for (const part of text.split(",")) {
        if (part.trim() === "") continue
        const i = part.indexOf("=")
        if (i <= 0) throw new Error("no =")
        out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim())
      }
      return out
    },
    catch: () => new TracingConfigError({ message: `${where}: expected name=value pairs separated by commas` })
  })

/**
 * The settings from the configuration's `tracing` section and the environment, or none (tracing off). The file
 * wins over the environment; `tracing.enabled: false` turns tracing off whatever the environment says, and so do
 * `OTEL_SDK_DISABLED=true` and `OTEL_TRACES_EXPORTER=none` unless the file enables it.
 */
export const settings = (
  section: RetentionConfig["tracing"]
): Effect.Effect<TracingSettings | undefined, TracingConfigError> =>
  Effect.gen(function*() {
    if (section.enabled === false) return undefined
    const tracesEndpoint = yield* optionalEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    const endpoint = yield* optionalEnv("OTEL_EXPORTER_OTLP_ENDPOINT")
    const disabled = Option.getOrUndefined(yield* optionalEnv("OTEL_SDK_DISABLED"))?.toLowerCase() === "true" ||
      Option.getOrUndefined(yield* optionalEnv("OTEL_TRACES_EXPORTER"))?.toLowerCase() === "none"
    const inFile = section.enabled === true || section.endpoint !== undefined
    if (!inFile && (disabled || (Option.isNone(tracesEndpoint) && Option.isNone(endpoint)))) return undefined
    const url = section.endpoint !== undefined
      ? yield* checkUrl(tracesUrl(section.endpoint), "tracing.endpoint")
      : Option.isSome(tracesEndpoint)
      ? yield* checkUrl(tracesEndpoint.value.trim(), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
      : Option.isSome(endpoint)
      ? yield* checkUrl(tracesUrl(endpoint.value.trim()), "OTEL_EXPORTER_OTLP_ENDPOINT")
      : tracesUrl(defaultEndpoint)
    const tracesHeaders = yield* optionalEnv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
    const generic = yield* optionalEnv("OTEL_EXPORTER_OTLP_HEADERS")
    const headers = Option.isSome(tracesHeaders)
      ? yield* parseHeaders(tracesHeaders.value, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
      : Option.isSome(generic)
      ? yield* parseHeaders(generic.value, "OTEL_EXPORTER_OTLP_HEADERS")
      : {}
    const serviceName = section.serviceName ??
      Option.getOrElse(yield* optionalEnv("OTEL_SERVICE_NAME"), () => "cos-retention").trim()
    return { url, serviceName, headers: Redacted.make(headers) }
  }).pipe(
    Effect.catchTag("ConfigError", (e) => Effect.fail(new TracingConfigError({ message: e.message })))
  )

/** Where spans go, for the start-up log line: no user info, query or headers. */
export const describe = (s: TracingSettings): string => {
  const u = new URL(s.url)
  return `${u.protocol}//${u.host}${u.pathname} as service ${JSON.stringify(s.serviceName)}`
}

/** The OTLP exporter over the given HttpClient (the test passes one that keeps the requests in memory). */
export const layerExporter = (
  s: TracingSettings,
  options: { readonly exportInterval?: Duration.DurationInput | undefined } = {}
): Layer.Layer<never, never, HttpClient.HttpClient> =>
  Layer.unwrapEffect(
    Effect.promise(async () => {
      const [OtlpTracer, OtlpSerialization] = await Promise.all([
        import("@effect/opentelemetry/OtlpTracer"),
        import("@effect/opentelemetry/OtlpSerialization")
      ])
      return OtlpTracer.layer({
        url: s.url,
        resource: { serviceName: s.serviceName },
        headers: Redacted.value(s.headers),
        exportInterval: options.exportInterval
      }).pipe(Layer.provide(OtlpSerialization.layerJson))
    })
  )

/** Tracing as the configuration and the environment say: when off, nothing is loaded and runs build no spans. */
export const layer = (section: RetentionConfig["tracing"]): Layer.Layer<Exporting, TracingConfigError> =>
  Layer.unwrapEffect(
    Effect.map(settings(section), (s) =>
      s === undefined
        ? Layer.succeed(Exporting, false)
        : Layer.mergeAll(
          Layer.succeed(Exporting, true),
          layerExporter(s).pipe(Layer.provide(NodeHttpClient.layerUndici)),
          Layer.effectDiscard(Effect.logInfo(`tracing: exporting spans to ${describe(s)}`))
        ))
  )
