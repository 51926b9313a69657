// Raw signed requests against the fake, in process (through CosFake.httpClient) or over a socket (node:http).
import { Signer } from "@effect-cos/core"
import { CosFake, CosFakeServer } from "@effect-cos/testkit"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createHash } from "node:crypto"
import * as Http from "node:http"

export const defaultHost = `${CosFake.testBucket}.cos.${CosFake.testRegion}.myqcloud.com`

export interface RawRequest {
  readonly method: string
  /** Object key; undefined for bucket-level calls (path `/`). */
  readonly key?: string | undefined
  readonly query?: ReadonlyArray<readonly [string, string]> | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly body?: Uint8Array | string | undefined
  readonly host?: string | undefined
  /** Default CosFake.testCredentials; "none" sends no Authorization. */
  readonly credentials?: CosFake.Credential | "none" | undefined
  /** Default now-1 … now+900 s. */
  readonly keyTime?: Signer.KeyTime | undefined
  /** Send the signature in the query (pre-signed URL) instead of the Authorization header. */
  readonly presign?: boolean | undefined
  /** Add Content-MD5 of the body (default: true for POST). */
  readonly contentMd5?: boolean | undefined
}

export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export interface Transport {
  readonly name: string
  readonly fake: CosFake.CosFake
  readonly send: (r: RawRequest) => Effect.Effect<RawResponse, unknown>
}

export const md5b64 = (b: Uint8Array | string) => createHash("md5").update(b).digest("base64")

interface Built {
  readonly method: string
  readonly host: string
  readonly url: string
  readonly headers: Record<string, string>
  readonly body: Uint8Array
}

const build = (r: RawRequest, nowMs: number): Built => {
  const host = r.host ?? defaultHost
  const body = typeof r.body === "string" ? new TextEncoder().encode(r.body) : r.body ?? new Uint8Array(0)
  const path = r.key === undefined ? "/" : "/" + r.key
  const rawPath = r.key === undefined ? "/" : Signer.encodeKeyPath(r.key)
  const headers: Record<string, string> = { host, ...r.headers }
  if (r.method === "PUT" || r.method === "POST" || body.length > 0) headers["content-length"] ??= String(body.length)
  if (r.contentMd5 ?? r.method === "POST") headers["content-md5"] ??= md5b64(body)
  const query = [...(r.query ?? [])]
  const creds = r.credentials ?? CosFake.testCredentials
  let qs = query.map(([k, v]) => (v === "" ? Signer.encode(k) : `${Signer.encode(k)}=${Signer.encode(v)}`)).join("&")
  if (creds !== "none") {
    const now = Math.floor(nowMs / 1000)
    const input = {
      method: r.method,
      path,
      query,
      headers: Object.entries(headers),
      keyTime: r.keyTime ?? { start: now - 1, end: now + 900 },
      secretId: creds.secretId,
      secretKey: creds.secretKey
    }
    if (r.presign) {
      const pq = Signer.presignQuery(
        creds.securityToken === undefined ? input : { ...input, securityToken: creds.securityToken }
      )
      qs = qs === "" ? pq : `${qs}&${pq}`
    } else {
      headers["authorization"] = Signer.authorization(input)
    }
  }
  return { method: r.method, host, url: qs === "" ? rawPath : `${rawPath}?${qs}`, headers, body }
}

export const inProcess = (options: CosFake.Options = {}): Effect.Effect<Transport> =>
  Effect.map(CosFake.make(options), (fake) => {
    const client = CosFake.httpClient(fake)
    return {
      name: "in-process",
      fake,
      send: (r) =>
        Effect.gen(function*() {
          const b = build(r, yield* Clock.currentTimeMillis)
          let req = HttpClientRequest.make(b.method as "GET")(`http://${b.host}${b.url}`).pipe(
            HttpClientRequest.setHeaders(b.headers)
          )
          if (b.body.length > 0) req = HttpClientRequest.bodyUint8Array(req, b.body, b.headers["content-type"])
          const res = yield* client.execute(req)
          const body = yield* res.text
          return { status: res.status, headers: res.headers, body }
        })
    }
  })

export const sendHttp = (port: number, b: Built): Effect.Effect<RawResponse, Error> =>
  Effect.async<RawResponse, Error>((resume) => {
    const req = Http.request(
      { host: "127.0.0.1", port, method: b.method, path: b.url, headers: b.headers, agent: false },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const headers: Record<string, string> = {}
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers[k] = v
          resume(Effect.succeed({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString("utf8") }))
        })
      }
    )
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end(b.body)
  })

export const socket = (options: CosFake.Options = {}): Effect.Effect<Transport, unknown, Scope.Scope> =>
  Effect.map(CosFakeServer.start(options), (server) => ({
    name: "socket",
    fake: server.fake,
    send: (r) => Effect.flatMap(Clock.currentTimeMillis, (now) => sendHttp(server.port, build(r, now)))
  }))

/** The text of the first `<name>` element (no unescaping). */
export const tag = (xml: string, name: string): string | undefined => {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)
  return m?.[1]
}

export const tags = (xml: string, name: string): Array<string> =>
  [...xml.matchAll(new RegExp(`<${name}>([^<]*)</${name}>`, "g"))].map((m) => m[1]!)

export const deleteBody = (
  objects: ReadonlyArray<{ readonly key: string; readonly versionId?: string }>,
  quiet = false
): string =>
  `<Delete><Quiet>${quiet}</Quiet>` +
  objects.map((o) =>
    `<Object><Key>${xmlEscape(o.key)}</Key>${
      o.versionId !== undefined ? `<VersionId>${o.versionId}</VersionId>` : ""
    }</Object>`
  ).join("") + "</Delete>"

export const xmlEscape = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;")

export const unescapeXml = (s: string) =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, "\"").replace(/&apos;/g, "'").replace(/&amp;/g, "&")
