/**
 * Shared fixtures for client tests: doc credentials (docs/protocol.md §2), a client over a scripted HttpClient, a
 * server-side signature check.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as CosClient from "../../src/CosClient.js"
import * as Credentials from "../../src/Credentials.js"
import * as Signer from "../../src/Signer.js"
import { makeMock, type Reply, type Sent } from "./mockHttp.js"

export const secretId = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q"
export const secretKey = "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"
export const token = "TOKEN-c2VjcmV0LXRva2VuLXZhbHVl"

export const credentials = Credentials.fromStatic({ secretId, secretKey: Redacted.make(secretKey) })

/** 2019-05-16T06:45:51Z, the time of the doc's V1 vector. */
export const start = 1557989151000

export const options: CosClient.Options = {
  region: "ap-beijing",
  bucket: "examplebucket-1250000000",
  credentials,
  retry: { attempts: 3, baseDelay: "2 seconds" },
  timeout: "10 seconds"
}

export interface Harness {
  readonly client: CosClient.CosClient
  readonly sent: Effect.Effect<ReadonlyArray<Sent>>
}

/** Sets the TestClock to {@link start}, builds a client over a scripted HttpClient, runs `f`. */
export const withClient = <A, E>(
  handler: (sent: Sent, n: number) => Reply | Effect.Effect<Reply>,
  f: (h: Harness) => Effect.Effect<A, E>,
  opts: Partial<CosClient.Options> = {}
): Effect.Effect<A, E | CosClient.ListError> =>
  Effect.gen(function*() {
    yield* TestClock.setTime(start)
    const mock = yield* makeMock(handler)
    const client = yield* CosClient.make({ ...options, ...opts }).pipe(Effect.provide(mock.layer))
    return yield* f({ client, sent: Ref.get(mock.sent) })
  })

/** Verifies a request's Authorization as a server would (docs/protocol.md §2 "Fake-server verification"). */
export const verifySignature = (request: Sent, key: string = secretKey) => {
  const parsed = Signer.parseAuthorization(request.headers["authorization"] ?? "")
  if (parsed === undefined) return { ok: false, parsed }
  const headers: Record<string, string> = { ...request.headers, host: request.url.host }
  const query: Array<[string, string]> = []
  for (const part of request.url.search.slice(1).split("&")) {
    if (part === "") continue
    const eq = part.indexOf("=")
    query.push(
      eq < 0 ? [decodeURIComponent(part), ""] : [
        decodeURIComponent(part.slice(0, eq)),
        decodeURIComponent(part.slice(eq + 1))
      ]
    )
  }
  const expected = Signer.sign({
    method: request.method,
    path: decodeURIComponent(request.url.pathname),
    query,
    headers,
    exactHeaders: parsed.headerList,
    keyTime: parsed.keyTime,
    secretId: parsed.secretId,
    secretKey: key
  })
  return {
    ok: expected.signature === parsed.signature && expected.urlParamList === parsed.urlParamList.join(";"),
    parsed
  }
}
