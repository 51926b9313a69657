/**
 * The daemon's one door to COS: a `CosClient` per rule (its region, endpoint and credentials) and the deletion engine
 * run with a rule's filters. Everything else in the daemon talks to this service, so tests and the demo swap the
 * HttpClient underneath (the testkit fake) or the whole service.
 */
import { CosClient, CosError, CosHttpClient, Credentials, Deletion, KeyRange } from "@effect-cos/core"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SynchronizedRef from "effect/SynchronizedRef"
import type { Rule } from "./Config.js"

/** The rule cannot be run: its client could not be built or the engine failed. `message` never holds a secret. */
export class PurgeError extends Schema.TaggedError<PurgeError>()("PurgeError", {
  rule: Schema.String,
  message: Schema.String,
  throttle: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  cause: Schema.optional(Schema.Unknown)
}) {}

export interface PurgeHooks {
  readonly onBatchStart?: Deletion.PurgeOptions["onBatchStart"]
  readonly onSend?: Deletion.PurgeOptions["onSend"]
  readonly onDeleted?: Deletion.PurgeOptions["onDeleted"]
  readonly onCheckpoint?: Deletion.PurgeOptions["onCheckpoint"]
  readonly onProgress?: Deletion.PurgeOptions["onProgress"]
  /** Receives the summary even when the run is interrupted (after the grace period). */
  readonly onSummary?: Deletion.PurgeOptions["onSummary"]
}

export interface PurgeRequest {
  readonly rule: Rule
  readonly dryRun: boolean
  readonly startAfter?: string | undefined
  /** Lists no key past this one (inclusive bound): one chunk of a split rule (`KeyRange`). */
  readonly through?: string | undefined
  readonly gracePeriod?: Deletion.PurgeOptions["gracePeriod"]
  readonly sampleSize?: number | undefined
  readonly hooks?: PurgeHooks | undefined
}

/** The engine's options for a rule (filters, limits, hooks). */
export const purgeOptions = (request: PurgeRequest): Deletion.PurgeOptions => {
  const { rule } = request
  return {
    bucket: rule.bucket,
    prefix: rule.prefix,
    include: rule.include.length > 0 ? rule.include : undefined,
    exclude: rule.exclude.length > 0 ? rule.exclude : undefined,
    olderThan: rule.olderThan,
    newerThan: rule.newerThan,
    minSize: rule.minSize,
    maxSize: rule.maxSize,
    versions: rule.versions,
    keepLatest: rule.keepLatest,
    target: rule.target,
    maxDeletes: rule.maxDeletes,
    maxDeleteSize: rule.maxDeleteSize,
    concurrency: rule.concurrency,
    listConcurrency: rule.listConcurrency,
    batchSize: rule.batchSize,
    writeBudget: rule.writeBudget,
    allowWholeBucket: rule.allowWholeBucket,
    dryRun: request.dryRun,
    startAfter: request.startAfter,
    gracePeriod: request.gracePeriod,
    sampleSize: request.sampleSize,
    ...request.hooks
  }
}

const env = (name: string) =>
  Config.string(name).pipe(
    Effect.mapError(() => `the environment variable ${name} is not set`),
    Effect.filterOrFail((v) => v !== "", () => `the environment variable ${name} is empty`)
  )

/** The rule's credentials: values written in the file, else the named environment variables. */
export const credentialsFor = (rule: Rule): Effect.Effect<Credentials.CredentialsProvider, PurgeError> =>
  Effect.gen(function*() {
    const spec = rule.credentials
    const secretId = spec.secretId ?? (yield* env(spec.secretIdEnv))
    const secretKey = spec.secretKey ?? Redacted.make(yield* env(spec.secretKeyEnv))
    const token = spec.securityToken ??
      Option.getOrUndefined(
        Option.map(Option.getRight(yield* Effect.either(env(spec.securityTokenEnv))), Redacted.make)
      )
    return Credentials.fromStatic({ secretId, secretKey, securityToken: token })
  }).pipe(
    Effect.mapError((reason) => new PurgeError({ rule: rule.name, message: `credentials: ${reason}` }))
  )

/**
 * Every credential problem of these rules, each variable on its own (a rule missing both variables gets two), as
 * `rules[i] (name): ...` lines; empty when every rule has what it needs. `index` is the rule's place in the file.
 */
export const credentialProblems = (
  rules: ReadonlyArray<{ readonly rule: Rule; readonly index: number }>
): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(
    Effect.forEach(rules, ({ index, rule }) =>
      Effect.gen(function*() {
        const spec = rule.credentials
        const problems: Array<string> = []
        if (spec.secretId === undefined) {
          const r = yield* Effect.either(env(spec.secretIdEnv))
          if (r._tag === "Left") problems.push(r.left)
        }
        if (spec.secretKey === undefined) {
          const r = yield* Effect.either(env(spec.secretKeyEnv))
          if (r._tag === "Left") problems.push(r.left)
        }
        return problems.map((p) => `rules[${index}] (${rule.name}): credentials: ${p}`)
      })),
    (lists) => lists.flat()
  )

const describe = (rule: Rule, error: CosError.CosError | { readonly message: string }): PurgeError =>
  new PurgeError({
    rule: rule.name,
    message: error.message,
    throttle: CosError.isThrottle(error),
    cause: error
  })

const make = Effect.gen(function*() {
  const http = yield* Effect.context<HttpClient.HttpClient>()
  // One client per rule, built on first use (so a rule with missing credentials fails alone, when it runs).
  const clients = yield* SynchronizedRef.make(new Map<string, CosClient.CosClient>())
  const clientFor = (rule: Rule) =>
    SynchronizedRef.modifyEffect(clients, (map) => {
      const existing = map.get(rule.name)
      if (existing !== undefined) return Effect.succeed([existing, map] as const)
      return Effect.gen(function*() {
        const credentials = yield* credentialsFor(rule)
        const client = yield* CosClient.make({
          region: rule.region,
          bucket: rule.bucket,
          credentials,
          endpoint: rule.endpoint,
          scheme: rule.endpoint?.startsWith("http://") ? "http" : undefined,
          timeout: rule.timeout
        }).pipe(Effect.provide(http), Effect.mapError((e) => describe(rule, e)))
        return [client, new Map(map).set(rule.name, client)] as const
      })
    })

  const purge = (request: PurgeRequest): Effect.Effect<Deletion.Summary, PurgeError> =>
    Effect.flatMap(
      clientFor(request.rule),
      (client) =>
        // Interrupting this (SIGTERM) is the engine's graceful stop: no more listing, the batches in flight finish
        // within the grace period, the exact summary reaches onSummary, then the interruption goes on.
        Deletion.purge(purgeOptions(request)).pipe(
          Effect.provideService(CosClient.CosClient, KeyRange.bounded(client, request.through)),
          Effect.mapError((e) => describe(request.rule, e))
        )
    )

  /** Whether a key (or a version) still exists; a 404 means it does not. */
  const exists = (
    rule: Rule,
    object: { readonly bucket: string; readonly key: string; readonly versionId?: string | undefined }
  ): Effect.Effect<boolean, PurgeError> =>
    Effect.flatMap(
      clientFor(rule),
      (client) =>
        client.headObject({ bucket: object.bucket, key: object.key, versionId: object.versionId }).pipe(
          Effect.as(true),
          Effect.catchIf(
            (e) => e._tag === "CosServiceError" && e.status === 404,
            () => Effect.succeed(false)
          ),
          Effect.mapError((e) => describe(rule, e))
        )
    )

  /** The rule's key range cut into `pieces` ranges of about equal key counts (one listing of the prefix). */
  const split = (rule: Rule, pieces: number): Effect.Effect<ReadonlyArray<KeyRange.Range>, PurgeError> =>
    Effect.flatMap(
      clientFor(rule),
      (client) =>
        KeyRange.split({ bucket: rule.bucket, prefix: rule.prefix, pieces }).pipe(
          Effect.provideService(CosClient.CosClient, client),
          Effect.mapError((e) => describe(rule, e))
        )
    )

  /** Fails when the rule's client cannot be built (bad region or endpoint, missing credentials). */
  const check = (rule: Rule): Effect.Effect<void, PurgeError> => Effect.asVoid(clientFor(rule))

  return { purge, exists, split, check } as const
})

export class Purger extends Effect.Service<Purger>()("@effect-cos/daemon/Purger", {
  effect: make,
  dependencies: [CosHttpClient.layer()]
}) {
  /** Over another HttpClient (the testkit fake). */
  static readonly layerHttp = <E, R>(http: Layer.Layer<HttpClient.HttpClient, E, R>): Layer.Layer<Purger, E, R> =>
    Purger.DefaultWithoutDependencies.pipe(Layer.provide(http))
}
