/**
 * A lean `HttpClient` of `@effect/platform` over Node's own `node:http` / `node:https`, for COS's short XML
 * exchanges: one keep-alive agent per layer, the request body sent as one buffer with its `Content-Length`, the
 * response body read once into a buffer before the response is handed over, the request aborted (socket destroyed)
 * on interruption. Built with `HttpClient.make`, so spans, trace propagation, `withTracerDisabledWhen` and the
 * rest of the platform's client pipeline behave as with any other client.
 *
 * It costs less CPU per request than `NodeHttpClient.layerUndici` (no web streams, no promise chain per body) and
 * loads no undici at start-up. `CosClient.layer` works over any `HttpClient`; this one is what the `cos-retention`
 * binary uses.
 *
 * @since 0.1.0
 */
import * as Cookies from "@effect/platform/Cookies"
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as IncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Http from "node:http"
import * as Https from "node:https"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Idle keep-alive sockets kept per host (default 64). */
  readonly maxFreeSockets?: number | undefined
  /** Sockets per host at most (default: no limit, as Node's). */
  readonly maxSockets?: number | undefined
}

const responseTypeId: HttpClientResponse.TypeId = Symbol.for(
  "@effect/platform/HttpClientResponse"
) as HttpClientResponse.TypeId

/** A response whose body has been read in full. */
class BufferedResponse implements HttpClientResponse.HttpClientResponse {
  readonly [responseTypeId]: HttpClientResponse.TypeId = responseTypeId
  readonly [IncomingMessage.TypeId]: IncomingMessage.TypeId = IncomingMessage.TypeId
  private cachedHeaders: Headers.Headers | undefined
  private cachedCookies: Cookies.Cookies | undefined
  constructor(
    readonly request: HttpClientRequest.HttpClientRequest,
    readonly status: number,
    private readonly rawHeaders: Http.IncomingHttpHeaders,
    private readonly address: string | undefined,
    private readonly body: Buffer
  ) {}

  get headers(): Headers.Headers {
    return this.cachedHeaders ??= Headers.fromInput(this.rawHeaders as Record<string, string | Array<string>>)
  }

  get cookies(): Cookies.Cookies {
    if (this.cachedCookies !== undefined) return this.cachedCookies
    const header = this.rawHeaders["set-cookie"]
    return this.cachedCookies = header === undefined ? Cookies.empty : Cookies.fromSetCookie(header)
  }

  get remoteAddress(): Option.Option<string> {
    return Option.fromNullable(this.address)
  }

  get text(): Effect.Effect<string, HttpClientError.ResponseError> {
    return Effect.sync(() => this.body.toString("utf8"))
  }

  get json(): Effect.Effect<unknown, HttpClientError.ResponseError> {
    return Effect.try({
      try: () => {
        const text = this.body.toString("utf8")
        return text === "" ? null : JSON.parse(text) as unknown
      },
      catch: (cause) => this.decodeError(cause)
    })
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpClientError.ResponseError> {
    return Effect.try({
      try: () => UrlParams.fromInput(new URLSearchParams(this.body.toString("utf8"))),
      catch: (cause) => this.decodeError(cause)
    })
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpClientError.ResponseError> {
    return Effect.sync(() => {
      const b = this.body
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer
    })
  }

  get stream(): Stream.Stream<Uint8Array, HttpClientError.ResponseError> {
    return this.body.length === 0 ? Stream.empty : Stream.succeed(this.body)
  }

  get formData(): Effect.Effect<FormData, HttpClientError.ResponseError> {
    return Effect.tryPromise({
      try: () =>
        new Response(this.body, {
          status: this.status,
          headers: this.rawHeaders as Record<string, string>
        }).formData(),
      catch: (cause) => this.decodeError(cause)
    })
  }

  private decodeError(cause: unknown): HttpClientError.ResponseError {
    return new HttpClientError.ResponseError({ request: this.request, response: this, reason: "Decode", cause })
  }

  toJSON(): unknown {
    return IncomingMessage.inspect(this, {
      _id: "@effect/platform/HttpClientResponse",
      request: this.request.toJSON(),
      status: this.status
    })
  }
  toString(): string {
    return JSON.stringify(this.toJSON(), null, 2)
  }
  [NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}

const transport = (request: HttpClientRequest.HttpClientRequest, cause: unknown) =>
  new HttpClientError.RequestError({ request, reason: "Transport", cause })

/** The request body as one buffer (COS requests carry small XML documents or one part's bytes). */
const bodyBytes = (
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<Uint8Array | string | undefined, HttpClientError.RequestError> => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return Effect.succeed(undefined)
    case "Uint8Array":
      return Effect.succeed(body.body)
    case "Raw": {
      const raw = body.body
      if (typeof raw === "string" || raw instanceof Uint8Array) return Effect.succeed(raw)
      return Effect.fail(
        new HttpClientError.RequestError({
          request,
          reason: "Encode",
          cause: new TypeError("a raw request body must be a string or a Uint8Array")
        })
      )
    }
    case "Stream":
      return Stream.runCollect(body.stream).pipe(
        Effect.map((chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks))),
        Effect.mapError((cause) => new HttpClientError.RequestError({ request, reason: "Encode", cause }))
      )
    case "FormData":
      return Effect.fail(
        new HttpClientError.RequestError({
          request,
          reason: "Encode",
          cause: new TypeError("form-data request bodies are not supported by CosHttpClient")
        })
      )
  }
}

const send = (
  agents: { readonly http: Http.Agent; readonly https: Https.Agent },
  request: HttpClientRequest.HttpClientRequest,
  url: URL,
  body: Uint8Array | string | undefined,
  maxBytes: number | undefined
): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError> =>
  Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>((resume) => {
    const headers: Record<string, string> = { ...request.headers }
    if (body !== undefined && headers["content-length"] === undefined) {
      headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength)
    }
    const options = { method: request.method, headers }
    let done = false
    const finish = (effect: Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError>) => {
      if (done) return
      done = true
      resume(effect)
    }
    const onResponse = (res: Http.IncomingMessage) => {
      const parts: Array<Buffer> = []
      let bytes = 0
      res.on("data", (part: Buffer) => {
        bytes += part.length
        if (maxBytes !== undefined && bytes > maxBytes) {
          nodeRequest.destroy()
          finish(Effect.fail(
            new HttpClientError.ResponseError({
              request,
              response: new BufferedResponse(request, res.statusCode ?? 0, res.headers, undefined, Buffer.alloc(0)),
              reason: "Decode",
              cause: new Error("maxBytes exceeded")
            })
          ))
          return
        }
        parts.push(part)
      })
      res.on("end", () => {
        const buffer = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes)
        finish(Effect.succeed(
          new BufferedResponse(request, res.statusCode ?? 0, res.headers, res.socket?.remoteAddress, buffer)
        ))
      })
      res.on("error", (cause) => finish(Effect.fail(transport(request, cause))))
      res.on("close", () => {
        if (!res.complete) finish(Effect.fail(transport(request, new Error("the connection closed mid-response"))))
      })
    }
    const nodeRequest = url.protocol === "https:"
      ? Https.request(url, { ...options, agent: agents.https }, onResponse)
      : Http.request(url, { ...options, agent: agents.http }, onResponse)
    nodeRequest.on("error", (cause) => finish(Effect.fail(transport(request, cause))))
    nodeRequest.end(body)
    return Effect.sync(() => {
      done = true
      nodeRequest.destroy()
    })
  })

/**
 * An `HttpClient` over agents the caller owns.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromAgents = (
  agents: { readonly http: Http.Agent; readonly https: Https.Agent }
): HttpClient.HttpClient =>
  HttpClient.make((request, url, _signal, fiber) => {
    const limit = Context.get(fiber.currentContext, IncomingMessage.MaxBodySize)
    const maxBytes = Option.isSome(limit) ? Number(limit.value) : undefined
    const body = request.body._tag === "Uint8Array" ? Effect.succeed(request.body.body) : bodyBytes(request)
    return Effect.flatMap(body, (bytes) => send(agents, request, url, bytes, maxBytes))
  })

/**
 * The client over a keep-alive `http.Agent` and `https.Agent` of its own, destroyed when the layer's scope closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<HttpClient.HttpClient> =>
  Layer.scoped(
    HttpClient.HttpClient,
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const agentOptions = {
            keepAlive: true,
            maxFreeSockets: options.maxFreeSockets ?? 64,
            ...(options.maxSockets === undefined ? {} : { maxSockets: options.maxSockets })
          }
          return { http: new Http.Agent(agentOptions), https: new Https.Agent(agentOptions) }
        }),
        (agents) =>
          Effect.sync(() => {
            agents.http.destroy()
            agents.https.destroy()
          })
      ),
      fromAgents
    )
  )
