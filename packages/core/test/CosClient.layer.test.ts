import { assert, describe, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Tracer from "effect/Tracer"
import * as CosClient from "../src/CosClient.js"
import * as Credentials from "../src/Credentials.js"
import { secretKey, token } from "./support/client.js"
import { makeMock, xml } from "./support/mockHttp.js"

const listOk =
  `<ListBucketResult><Name>b</Name><Prefix/><Marker/><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("CosClient.layer", () => {
  it.effect("provides the CosClient service", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      const layer = CosClient.layer({
        region: "ap-guangzhou",
        bucket: "examplebucket-1250000000",
        credentials: Credentials.fromStatic({ secretId: "AKID", secretKey: Redacted.make(secretKey) })
      }).pipe(Layer.provide(mock.layer))
      const client = yield* Effect.provide(CosClient.CosClient, layer)
      assert.strictEqual(client.region, "ap-guangzhou")
      assert.strictEqual(client.defaultBucket, "examplebucket-1250000000")
      yield* client.listObjects()
      const [request] = yield* Ref.get(mock.sent)
      assert.strictEqual(request!.url.host, "examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com")
    }))

  it.effect("fails to build with CosInvalidRequest on a bad region or bucket", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      const credentials = Credentials.fromStatic({ secretId: "AKID", secretKey: Redacted.make(secretKey) })
      const badRegion = yield* Effect.flip(
        Effect.provide(
          CosClient.CosClient,
          CosClient.layer({ region: "Beijing", credentials }).pipe(Layer.provide(mock.layer))
        )
      )
      assert.strictEqual(badRegion._tag, "CosInvalidRequest")
      assert.include(badRegion.message, "invalid region")
      const badBucket = yield* Effect.flip(
        Effect.provide(
          CosClient.CosClient,
          CosClient.layer({ region: "ap-beijing", bucket: "bucket", credentials }).pipe(Layer.provide(mock.layer))
        )
      )
      assert.include(badBucket.message, "<BucketName>-<APPID>")
    }))

  it.effect("refuses plain credentials (not a provider) when built, naming neither value", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      const plain = { secretId: "AKIDplain", secretKey }
      const error = yield* Effect.flip(
        Effect.provide(
          CosClient.CosClient,
          // As an untyped JavaScript caller would write it.
          CosClient.layer({ region: "ap-beijing", credentials: plain as never }).pipe(Layer.provide(mock.layer))
        )
      )
      assert.strictEqual(error._tag, "CosInvalidRequest")
      assert.include(error.message, "Credentials.fromStatic")
      assert.notInclude(error.message, "AKIDplain")
      assert.notInclude(error.message, secretKey)
      assert.lengthOf(yield* Ref.get(mock.sent), 0)
    }))
})

describe("CosClient.layerConfig", () => {
  it.effect("reads region, bucket, endpoint and credentials from the environment", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      const client = yield* Effect.provide(CosClient.CosClient, CosClient.layerConfig().pipe(Layer.provide(mock.layer)))
        .pipe(
          withEnv({
            COS_REGION: "ap-shanghai",
            COS_BUCKET: "logs-1250000000",
            COS_ENDPOINT: "http://127.0.0.1:9000",
            COS_SECRET_ID: "AKIDenv",
            COS_SECRET_KEY: secretKey,
            COS_SECURITY_TOKEN: token
          })
        )
      assert.strictEqual(client.region, "ap-shanghai")
      assert.strictEqual(client.defaultBucket, "logs-1250000000")
      yield* client.listObjects()
      const [request] = yield* Ref.get(mock.sent)
      assert.strictEqual(request!.url.origin, "http://127.0.0.1:9000")
      assert.include(request!.headers["authorization"]!, "q-ak=AKIDenv&")
      assert.strictEqual(request!.headers["x-cos-security-token"], token)
    }))

  it.effect("names a missing region or secret, without showing values", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      const build = (env: Record<string, string>, options?: CosClient.ConfigOptions) =>
        Effect.flip(
          Effect.provide(CosClient.CosClient, CosClient.layerConfig(options).pipe(Layer.provide(mock.layer))).pipe(
            withEnv(env)
          )
        )
      const noRegion = yield* build({ COS_SECRET_ID: "AKID", COS_SECRET_KEY: secretKey })
      assert.strictEqual(noRegion._tag, "CosInvalidRequest")
      assert.include(noRegion.message, "COS_REGION")
      const noKey = yield* build({ COS_REGION: "ap-beijing", COS_SECRET_ID: "AKID" })
      assert.strictEqual(noKey._tag, "CosCredentialsError")
      assert.include(noKey.message, "COS_SECRET_KEY")
      const badScheme = yield* build({ COS_REGION: "ap-beijing", COS_SCHEME: "ftp" })
      assert.include(badScheme.message, "COS_SCHEME")
      const named = yield* build({ REGION: "ap-beijing", MY_ID: "AKID" }, {
        names: { region: "REGION", secretId: "MY_ID", secretKey: "MY_KEY" }
      })
      assert.include(named.message, "MY_KEY")
      for (const error of [noRegion, noKey, badScheme, named]) {
        assert.notInclude(JSON.stringify(error) + error.message, secretKey)
      }
    }))

  it.effect("uses options given explicitly instead of the environment", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      const client = yield* Effect.provide(
        CosClient.CosClient,
        CosClient.layerConfig({
          region: "ap-chengdu",
          credentials: Credentials.fromStatic({ secretId: "AKID", secretKey: Redacted.make(secretKey) })
        }).pipe(Layer.provide(mock.layer))
      ).pipe(withEnv({ COS_REGION: "ap-beijing" }))
      assert.strictEqual(client.region, "ap-chengdu")
    }))
})

describe("CosClient.layerConfig with a Config per option", () => {
  const configured = CosClient.layerConfig({
    region: Config.string("COS_REGION"),
    bucket: Config.option(Config.string("COS_BUCKET")).pipe(Config.map(Option.getOrUndefined)),
    credentials: Credentials.config()
  })

  it.effect("unwraps the configuration and builds the client", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      const client = yield* Effect.provide(CosClient.CosClient, configured.pipe(Layer.provide(mock.layer))).pipe(
        withEnv({
          COS_REGION: "ap-shanghai",
          COS_BUCKET: "logs-1250000000",
          COS_SECRET_ID: "AKIDcfg",
          COS_SECRET_KEY: secretKey,
          COS_SECURITY_TOKEN: token
        })
      )
      assert.strictEqual(client.region, "ap-shanghai")
      assert.strictEqual(client.defaultBucket, "logs-1250000000")
      yield* client.listObjects()
      const [request] = yield* Ref.get(mock.sent)
      assert.include(request!.headers["authorization"]!, "q-ak=AKIDcfg&")
      assert.strictEqual(request!.headers["x-cos-security-token"], token)
    }))

  it.effect("a missing setting is a ConfigError naming it, a bad value a CosInvalidRequest; no secret shown", () =>
    Effect.gen(function*() {
      const mock = yield* makeMock(() => xml(listOk))
      const build = (env: Record<string, string>) =>
        Effect.flip(Effect.provide(CosClient.CosClient, configured.pipe(Layer.provide(mock.layer))).pipe(withEnv(env)))
      const noRegion = yield* build({ COS_SECRET_ID: "AKID", COS_SECRET_KEY: secretKey })
      assert.isTrue(ConfigError.isConfigError(noRegion))
      assert.include(String(noRegion), "COS_REGION")
      const noKey = yield* build({ COS_REGION: "ap-beijing", COS_SECRET_ID: "AKID" })
      assert.isTrue(ConfigError.isConfigError(noKey))
      assert.include(String(noKey), "COS_SECRET_KEY")
      const emptyKey = yield* build({ COS_REGION: "ap-beijing", COS_SECRET_ID: "AKID", COS_SECRET_KEY: "" })
      assert.include(String(emptyKey), "COS_SECRET_KEY")
      const badRegion = yield* build({ COS_REGION: "Beijing", COS_SECRET_ID: "AKID", COS_SECRET_KEY: secretKey })
      assert.strictEqual((badRegion as { _tag: string })._tag, "CosInvalidRequest")
      for (const error of [noRegion, noKey, emptyKey, badRegion]) assert.notInclude(String(error), secretKey)
    }))
})

describe("CosClient observability", () => {
  it.effect("records a span per operation and keeps secrets out of span attributes", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const native = yield* Effect.tracer
      const recording = Tracer.make({
        span: (...args) => {
          const span = native.span(...args)
          spans.push(span)
          return span
        },
        context: (f, fiber) => native.context(f, fiber)
      })
      const mock = yield* makeMock(() => xml(listOk))
      const client = yield* CosClient.make({
        region: "ap-beijing",
        bucket: "examplebucket-1250000000",
        credentials: Credentials.fromStatic({
          secretId: "AKIDtemp",
          secretKey: Redacted.make(secretKey),
          securityToken: Redacted.make(token)
        })
      }).pipe(Effect.provide(mock.layer))
      yield* client.listObjects().pipe(Effect.withTracer(recording))
      const names = spans.map((s) => s.name)
      assert.include(names, "CosClient.listObjects")
      const dump = JSON.stringify(spans.map((s) => [s.name, [...s.attributes.entries()]]))
      assert.include(dump, "http.request.header.x-cos-security-token")
      assert.notInclude(dump, token)
      assert.notInclude(dump, secretKey)
      assert.notInclude(dump, "q-signature")
    }))
})
