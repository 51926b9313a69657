import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as Credentials from "../src/Credentials.js"

const secret = "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"
const tokenValue = "TOKEN-c2VjcmV0LXRva2VuLXZhbHVl"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("Credentials.fromStatic", () => {
  it.effect("yields the given credentials", () =>
    Effect.gen(function*() {
      const provider = Credentials.fromStatic({ secretId: "AKID", secretKey: Redacted.make(secret) })
      const credentials = yield* provider.get
      assert.strictEqual(credentials.secretId, "AKID")
      assert.strictEqual(Redacted.value(credentials.secretKey), secret)
      assert.notInclude(String(credentials.secretKey), secret)
    }))
})

describe("Credentials.fromConfig", () => {
  it.effect("reads COS_SECRET_ID, COS_SECRET_KEY and the optional COS_SECURITY_TOKEN", () =>
    Effect.gen(function*() {
      const provider = yield* Credentials.fromConfig().pipe(
        withEnv({ COS_SECRET_ID: "AKID", COS_SECRET_KEY: secret, COS_SECURITY_TOKEN: tokenValue })
      )
      const credentials = yield* provider.get
      assert.strictEqual(credentials.secretId, "AKID")
      assert.strictEqual(Redacted.value(credentials.secretKey), secret)
      assert.strictEqual(Redacted.value(credentials.securityToken!), tokenValue)
      assert.notInclude(JSON.stringify(credentials), secret)
      assert.notInclude(JSON.stringify(credentials), tokenValue)

      const permanent = yield* Credentials.fromConfig().pipe(withEnv({ COS_SECRET_ID: "AKID", COS_SECRET_KEY: secret }))
      assert.isUndefined((yield* permanent.get).securityToken)
    }))

  it.effect("reads other variable names when asked", () =>
    Effect.gen(function*() {
      const provider = yield* Credentials.fromConfig({ secretId: "MY_ID", secretKey: "MY_KEY" }).pipe(
        withEnv({ MY_ID: "AKID2", MY_KEY: secret })
      )
      assert.strictEqual((yield* provider.get).secretId, "AKID2")
    }))

  it.effect("names the missing variable and never shows a value", () =>
    Effect.gen(function*() {
      const noKey = yield* Effect.flip(Credentials.fromConfig().pipe(withEnv({ COS_SECRET_ID: "AKID" })))
      assert.strictEqual(noKey._tag, "CosCredentialsError")
      assert.include(noKey.message, "COS_SECRET_KEY")
      const noId = yield* Effect.flip(Credentials.fromConfig().pipe(withEnv({ COS_SECRET_KEY: secret })))
      assert.include(noId.message, "COS_SECRET_ID")
      assert.notInclude(noId.message + JSON.stringify(noId), secret)
      const emptyKey = yield* Effect.flip(
        Credentials.fromConfig().pipe(withEnv({ COS_SECRET_ID: "AKID", COS_SECRET_KEY: "" }))
      )
      assert.include(emptyKey.message, "COS_SECRET_KEY")
    }))
})

describe("Credentials.refreshing", () => {
  const minute = 60_000

  it.effect("caches credentials and refreshes them refreshBefore ahead of expiry", () =>
    Effect.gen(function*() {
      const fetches = yield* Ref.make(0)
      const fetch = Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(fetches, (x) => x + 1)
        const now = yield* TestClock.currentTimeMillis
        return {
          secretId: `AKID-${n}`,
          secretKey: Redacted.make(secret),
          securityToken: Redacted.make(tokenValue),
          expiresAt: new Date(now + 30 * minute)
        }
      })
      const provider = yield* Credentials.refreshing(fetch, { refreshBefore: "5 minutes" })
      assert.strictEqual((yield* provider.get).secretId, "AKID-1")
      assert.strictEqual((yield* provider.get).secretId, "AKID-1")
      yield* TestClock.adjust(24 * minute)
      assert.strictEqual((yield* provider.get).secretId, "AKID-1")
      // 25 minutes in: within 5 minutes of expiry, so fetched again
      yield* TestClock.adjust(1 * minute + 1)
      assert.strictEqual((yield* provider.get).secretId, "AKID-2")
      assert.strictEqual((yield* provider.get).secretId, "AKID-2")
      assert.strictEqual(yield* Ref.get(fetches), 2)
    }))

  it.effect("shares one refresh between concurrent callers", () =>
    Effect.gen(function*() {
      const fetches = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const fetch = Effect.gen(function*() {
        yield* Ref.update(fetches, (x) => x + 1)
        yield* Deferred.await(gate)
        return { secretId: "AKID", secretKey: Redacted.make(secret), expiresAt: new Date(Date.UTC(2100, 0)) }
      })
      const provider = yield* Credentials.refreshing(fetch)
      const started = yield* Ref.make(0)
      const caller = Ref.update(started, (x) => x + 1).pipe(Effect.zipRight(provider.get))
      const callers = yield* Effect.fork(Effect.all(Array.from({ length: 20 }, () => caller), {
        concurrency: "unbounded"
      }))
      // every caller is waiting on the one fetch in flight before it completes
      while ((yield* Ref.get(started)) < 20) yield* Effect.yieldNow()
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
      assert.strictEqual(yield* Ref.get(fetches), 1)
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.join(callers)
      assert.strictEqual(results.length, 20)
      assert.isTrue(results.every((c) => c.secretId === "AKID"))
      assert.strictEqual(yield* Ref.get(fetches), 1)
    }))

  it.effect("reports a failed refresh as CosCredentialsError and tries again on the next call", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const fetch = Ref.updateAndGet(calls, (x) => x + 1).pipe(
        Effect.flatMap((n) =>
          n === 1
            ? Effect.fail(new Error("sts unavailable"))
            : Effect.succeed({ secretId: "AKID", secretKey: Redacted.make(secret) })
        )
      )
      const provider = yield* Credentials.refreshing(fetch)
      const error = yield* Effect.flip(provider.get)
      assert.strictEqual(error._tag, "CosCredentialsError")
      assert.include(error.message, "refreshing temporary credentials failed")
      assert.strictEqual((yield* provider.get).secretId, "AKID")
    }))
})
