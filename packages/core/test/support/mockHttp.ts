/**
 * A scripted HttpClient for client tests: every request is recorded (with the Clock time it was sent at) and
 * answered by a handler returning a web `Response`, or failing like a broken connection.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"

export interface Sent {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly at: number
  /** Aborted when the client gives up on the request (interruption, timeout). */
  readonly signal: AbortSignal
}

export type Reply = Response | "transport-error" | "hang"

export interface Mock {
  readonly sent: Ref.Ref<ReadonlyArray<Sent>>
  readonly layer: Layer.Layer<HttpClient.HttpClient>
}

export const xml = (body: string, status = 200, headers: Record<string, string> = {}): Response =>
  new Response(body, {
    status,
    headers: { "content-type": "application/xml", "x-cos-request-id": "NWQ1ZjY0MTRfMjBiZTI4MDlfNTRkMl8x", ...headers }
  })

export const empty = (status: number, headers: Record<string, string> = {}): Response =>
  new Response(status === 204 || status === 304 ? null : "", { status, headers })

/** Answers the n-th request (0-based) with `handler(sent, n)`. */
export const makeMock = (
  handler: (sent: Sent, n: number) => Reply | Effect.Effect<Reply>
): Effect.Effect<Mock> =>
  Effect.gen(function*() {
    const sent = yield* Ref.make<ReadonlyArray<Sent>>([])
    const client = HttpClient.make((request, url, signal) =>
      Effect.gen(function*() {
        const at = yield* Clock.currentTimeMillis
        const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : ""
        const record: Sent = { method: request.method, url, headers: request.headers, body, at, signal }
        const n = (yield* Ref.getAndUpdate(sent, (all) => [...all, record])).length
        const out = handler(record, n)
        const reply = Effect.isEffect(out) ? yield* out : out
        if (reply === "transport-error") {
          return yield* new HttpClientError.RequestError({
            request,
            reason: "Transport",
            cause: new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:9") })
          })
        }
        if (reply === "hang") return yield* Effect.never
        return HttpClientResponse.fromWeb(request, reply)
      })
    )
    return { sent, layer: Layer.succeed(HttpClient.HttpClient, client) }
  })
