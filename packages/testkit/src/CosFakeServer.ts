/**
 * The fake COS on a real HTTP server bound to loopback, for integration tests and for clients that need a socket
 * (Tencent's SDKs, the daemon). It serves the same handler as the in-process `CosFake.layer`.
 *
 * The server answers with the live clock (signature windows, latency and quotas follow real time), whatever clock
 * the starting fiber runs with.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as CosFake from "./CosFake.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends CosFake.Options {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  readonly port?: number | undefined
}

/**
 * A running server.
 *
 * @since 0.1.0
 * @category models
 */
export interface CosFakeServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** `127.0.0.1:<port>`: what the SDK's `Domain` option wants. */
  readonly hostPort: string
  readonly fake: CosFake.CosFake
}

/**
 * @since 0.1.0
 * @category tags
 */
export const CosFakeServer: Context.Tag<CosFakeServer, CosFakeServer> = Context.GenericTag<CosFakeServer>(
  "@effect-cos/testkit/CosFakeServer"
)

/**
 * The server could not listen (port in use, ...).
 *
 * @since 0.1.0
 * @category errors
 */
export class CosFakeServerError extends Schema.TaggedError<CosFakeServerError>()("CosFakeServerError", {
  message: Schema.String
}) {}

/**
 * Serves an existing fake on 127.0.0.1 until the scope closes (open connections are then destroyed).
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = (
  fake: CosFake.CosFake,
  options: { readonly port?: number | undefined } = {}
): Effect.Effect<CosFakeServer, CosFakeServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const runFork = Runtime.runFork(Runtime.defaultRuntime)
    const fibers = new Set<Fiber.RuntimeFiber<CosFake.FakeResponse>>()
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("error", () => res.destroy())
      req.on("end", () => {
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(req.headers)) {
          if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v
        }
        const fiber = runFork(
          fake.handle({
            method: req.method ?? "GET",
            url: req.url ?? "/",
            headers,
            body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
          })
        )
        fibers.add(fiber)
        fiber.addObserver((exit) => {
          fibers.delete(fiber)
          if (Exit.isFailure(exit)) {
            if (!res.headersSent) res.writeHead(500)
            res.end()
            return
          }
          const r = exit.value
          switch (r._tag) {
            case "Reset":
              req.socket.destroy()
              return
            case "Timeout":
              return // never answer; the socket is destroyed when the server closes
            case "Response":
              res.writeHead(r.status, r.headers)
              res.end(r.body)
          }
        })
      })
    })
    server.keepAliveTimeout = 60_000
    const port = yield* Effect.async<number, CosFakeServerError>((resume) => {
      server.once("error", (e) => resume(Effect.fail(new CosFakeServerError({ message: e.message }))))
      server.listen(
        options.port ?? 0,
        "127.0.0.1",
        () => resume(Effect.succeed((server.address() as AddressInfo).port))
      )
    })
    // Once listening, a server error (e.g. out of file descriptors) must not crash the test process.
    server.on("error", () => {})
    yield* Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        for (const f of fibers) f.unsafeInterruptAsFork(f.id())
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
    )
    return { url: `http://127.0.0.1:${port}`, port, hostPort: `127.0.0.1:${port}`, fake }
  })

/**
 * Builds a fake and serves it on 127.0.0.1 until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (options: Options = {}): Effect.Effect<CosFakeServer, CosFakeServerError, Scope.Scope> =>
  Effect.flatMap(CosFake.make(options), (fake) => serve(fake, { port: options.port }))

/**
 * Provides a running server and its fake.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<CosFakeServer | CosFake.CosFake, CosFakeServerError> =>
  Layer.scopedContext(
    Effect.map(start(options), (s) => Context.make(CosFakeServer, s).pipe(Context.add(CosFake.CosFake, s.fake)))
  )
