/**
 * Where a client's SecretId/SecretKey (and, for temporary credentials, the security token) come from.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as SynchronizedRef from "effect/SynchronizedRef"
import { CosCredentialsError } from "./CosError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly secretId: string
  readonly secretKey: Redacted.Redacted<string>
  /** Temporary credentials carry a token, sent as `x-cos-security-token` (docs/protocol.md §2). */
  readonly securityToken?: Redacted.Redacted<string> | undefined
  /** When temporary credentials stop working. */
  readonly expiresAt?: Date | undefined
}

/**
 * Something that yields valid credentials each time a request is signed.
 *
 * @since 0.1.0
 * @category models
 */
export interface CredentialsProvider {
  readonly get: Effect.Effect<Credentials, CosCredentialsError>
}

/**
 * Fixed credentials.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromStatic = (credentials: Credentials): CredentialsProvider => ({ get: Effect.succeed(credentials) })

/**
 * The names Tencent's samples use.
 *
 * @since 0.1.0
 * @category config
 */
export const envNames = {
  secretId: "COS_SECRET_ID",
  secretKey: "COS_SECRET_KEY",
  securityToken: "COS_SECURITY_TOKEN"
} as const

/**
 * Reads credentials from configuration (by default the environment variables `COS_SECRET_ID`, `COS_SECRET_KEY`
 * and optional `COS_SECURITY_TOKEN`; other names may be given). A missing variable fails with an error that names
 * it and never shows a value.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromConfig = (names: {
  readonly secretId?: string
  readonly secretKey?: string
  readonly securityToken?: string
} = {}): Effect.Effect<CredentialsProvider, CosCredentialsError> => {
  const idName = names.secretId ?? envNames.secretId
  const keyName = names.secretKey ?? envNames.secretKey
  const tokenName = names.securityToken ?? envNames.securityToken
  const required = <A>(name: string, config: Config.Config<A>) =>
    Effect.mapError(config, () => new CosCredentialsError({ reason: `the environment variable ${name} is not set` }))
  return Effect.gen(function*() {
    const secretId = yield* required(idName, Config.nonEmptyString(idName))
    const secretKey = yield* required(keyName, Config.redacted(keyName))
    if (Redacted.value(secretKey) === "") {
      return yield* new CosCredentialsError({ reason: `the environment variable ${keyName} is empty` })
    }
    const token = yield* Config.option(Config.redacted(tokenName)).pipe(Effect.orElseSucceed(() => Option.none()))
    const securityToken = Option.getOrUndefined(Option.filter(token, (t) => Redacted.value(t) !== ""))
    return fromStatic({ secretId, secretKey, securityToken })
  })
}

/**
 * Fixed credentials as a `Config` (for `CosClient.layerConfig` with a `Config` per option): `COS_SECRET_ID`,
 * `COS_SECRET_KEY` and optional `COS_SECURITY_TOKEN` by default, other names may be given. A missing or empty
 * SecretId or SecretKey is a `ConfigError` naming the variable; the key and token are read as `Redacted`.
 *
 * @since 0.2.0
 * @category config
 */
export const config = (names: {
  readonly secretId?: string
  readonly secretKey?: string
  readonly securityToken?: string
} = {}): Config.Config<CredentialsProvider> => {
  const keyName = names.secretKey ?? envNames.secretKey
  return Config.all({
    secretId: Config.nonEmptyString(names.secretId ?? envNames.secretId),
    secretKey: Config.redacted(keyName).pipe(
      Config.validate({ message: `${keyName} is empty`, validation: (k) => Redacted.value(k) !== "" })
    ),
    securityToken: Config.option(Config.redacted(names.securityToken ?? envNames.securityToken))
  }).pipe(Config.map(({ secretId, secretKey, securityToken }) =>
    fromStatic({
      secretId,
      secretKey,
      securityToken: Option.getOrUndefined(Option.filter(securityToken, (t) => Redacted.value(t) !== ""))
    })
  ))
}

/**
 * Temporary credentials from a user-supplied effect (an STS call, a metadata endpoint). The result is cached and
 * fetched again `refreshBefore` ahead of its `expiresAt`; concurrent callers share one refresh. Credentials without
 * `expiresAt` are kept until the process ends.
 *
 * @since 0.1.0
 * @category constructors
 */
export const refreshing = <E, R>(
  fetch: Effect.Effect<Credentials, E, R>,
  options: { readonly refreshBefore?: Duration.DurationInput } = {}
): Effect.Effect<CredentialsProvider, never, R> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const margin = Duration.toMillis(options.refreshBefore ?? Duration.minutes(5))
    const cache = yield* SynchronizedRef.make<Option.Option<Credentials>>(Option.none())
    const load = fetch.pipe(
      Effect.mapError((cause) => new CosCredentialsError({ reason: "refreshing temporary credentials failed", cause })),
      Effect.provide(context)
    )
    const get = SynchronizedRef.modifyEffect(cache, (current) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (Option.isSome(current)) {
          const expiresAt = current.value.expiresAt
          if (expiresAt === undefined || expiresAt.getTime() - margin > now) {
            return [current.value, current] as const
          }
        }
        const fresh = yield* load
        return [fresh, Option.some(fresh)] as const
      }))
    return { get }
  })
