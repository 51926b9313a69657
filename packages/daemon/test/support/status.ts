/**
 * The daemon's HTTP surface as the status tests see it: settings with one rule on and one off (credentials inline, so
 * a test can check the secret never shows), and a GET on 127.0.0.1.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Config from "../../src/Config.js"
import { HttpStatus } from "../../src/HttpStatus.js"
import { State } from "../../src/State.js"
import { Status } from "../../src/Status.js"

/** `expire-logs` over `prefix` (Asia/Shanghai, 03:00) and the disabled `off`; the HTTP server on a free port. */
export const statusSettings = (secret: string, prefix: string): Config.RetentionConfig => {
  const result = Config.decode(
    {
      cos: { region: "ap-beijing", credentials: { secretId: "AKIDshown", secretKey: secret } },
      state: ":memory:",
      http: { port: 0 },
      rules: [
        {
          name: "expire-logs",
          bucket: "examplebucket-1250000000",
          prefix,
          olderThan: "30d",
          schedule: "0 3 * * *",
          timezone: "Asia/Shanghai"
        },
        {
          name: "off",
          bucket: "examplebucket-1250000000",
          prefix: "tmp/",
          olderThan: "1d",
          schedule: "0 * * * *",
          enabled: false
        }
      ]
    },
    { source: "test", baseDir: "/" }
  )
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

export interface HttpReply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

/** `GET http://127.0.0.1:<port><path>`: the status, the headers and the body. */
export const httpGet = (port: number, path: string): Effect.Effect<HttpReply> =>
  Effect.promise(async () => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`)
    return { status: res.status, headers: res.headers, body: await res.text() }
  })

/** The HTTP server with `settings`, on an in-memory state, open for the scope: its address, the status and the state. */
export const startHttpStatus = (settings: Config.RetentionConfig) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      HttpStatus.DefaultWithoutDependencies.pipe(
        Layer.provideMerge(Layer.mergeAll(State.Test, Status.Default)),
        Layer.provideMerge(Config.Settings.layer(settings))
      )
    )
    const { address } = yield* Effect.provide(HttpStatus, context)
    const status = yield* Effect.provide(Status, context)
    const state = yield* Effect.provide(State, context)
    return { address, status, state }
  })
