/**
 * COS request signing (q-sign-algorithm=sha1), exactly as Tencent's SDKs compute it.
 *
 * The algorithm and its test vectors are in `docs/protocol.md` §2. This module is pure: it never reads a clock
 * or the environment; callers pass the key time.
 *
 * @since 0.1.0
 */
import * as Redacted from "effect/Redacted"
import { createHash, createHmac } from "node:crypto"

/**
 * The strict RFC 3986 encoder COS uses everywhere (docs/protocol.md §2 "Encoder"): UTF-8, only `A-Z a-z 0-9 - _ . ~`
 * left as they are, everything else `%XX` with upper-case hex. `encodeURIComponent` leaves `! ' ( ) *` alone, so
 * they are replaced afterwards, as the Node SDK's `camSafeUrlEncode` does.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (value: string): string =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())

/**
 * Encodes an object key for the request path: `'/' + encode(key)` with every `%2F` turned back into `/`
 * (docs/protocol.md §1 "Key in the request path"). A `./` or `../` segment is sent as `.%2F` so that no proxy or HTTP
 * library normalises the dot-segment away (the Python SDK does the same).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeKeyPath = (key: string): string => {
  const segments = encode(key).split("%2F")
  let out = ""
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!
    if (i > 0) {
      // Glue a dot-segment to its neighbour with an encoded slash so that it is no longer a segment of its own.
      const previous = segments[i - 1]!
      out += previous === "." || previous === ".." || segment === "." || segment === ".." ? "%2F" : "/"
    }
    out += segment
  }
  return "/" + out
}

/**
 * The headers the official SDKs sign besides `host`, `x-cos-*` and `x-ci-*` (docs/protocol.md §2 step 4).
 *
 * @since 0.1.0
 * @category headers
 */
export const defaultSignedHeaders: ReadonlySet<string> = new Set([
  "cache-control",
  "content-disposition",
  "content-encoding",
  "content-length",
  "content-md5",
  "content-type",
  "expect",
  "expires",
  "host",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-unmodified-since",
  "origin",
  "range",
  "transfer-encoding",
  "pic-operations"
])

/**
 * Whether a header is signed: the SDKs' whitelist, any `x-cos-*` / `x-ci-*`, plus `extra` (e.g. `["date"]`).
 * `x-cos-security-token` is left out, as the Node and Go SDKs add it after signing (docs/protocol.md §2).
 *
 * @since 0.1.0
 * @category headers
 */
export const isSignedHeader = (name: string, extra: ReadonlyArray<string> = []): boolean => {
  const lower = name.toLowerCase()
  if (lower === "x-cos-security-token") return false
  return defaultSignedHeaders.has(lower) || lower.startsWith("x-cos-") || lower.startsWith("x-ci-") ||
    extra.some((e) => e.toLowerCase() === lower)
}

/**
 * A signing key time: `[start, end]` in Unix seconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyTime {
  readonly start: number
  readonly end: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SignInput {
  /** HTTP method, any case. */
  readonly method: string
  /** The percent-decoded path: `/exampleobject(腾讯云)`, `/` for bucket calls (docs/protocol.md §2 step 5). */
  readonly path: string
  /** Decoded query parameter values; a value-less parameter (`?delete`) is `""`. */
  readonly query?: Iterable<readonly [string, string]> | Readonly<Record<string, string>>
  /** Request headers; only those chosen by {@link isSignedHeader} are signed. */
  readonly headers?: Iterable<readonly [string, string]> | Readonly<Record<string, string>>
  /** Extra header names to sign besides the SDKs' set (the doc vectors V1/V2 sign `date`). */
  readonly extraSignedHeaders?: ReadonlyArray<string>
  /**
   * Sign exactly these header names (lower-case), ignoring the default filter. Used by servers that verify the
   * list a client sent.
   */
  readonly exactHeaders?: ReadonlyArray<string>
  readonly keyTime: KeyTime
  readonly secretId: string
  readonly secretKey: Redacted.Redacted<string> | string
}

/**
 * Every intermediate value of the computation, named as in Tencent's documentation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Signature {
  readonly keyTime: string
  readonly signKey: string
  readonly urlParamList: string
  readonly httpParameters: string
  readonly headerList: string
  readonly httpHeaders: string
  readonly httpString: string
  readonly httpStringSha1: string
  readonly stringToSign: string
  readonly signature: string
  /** The `Authorization` header value. */
  readonly authorization: string
}

const entriesOf = (
  input: Iterable<readonly [string, string]> | Readonly<Record<string, string>> | undefined
): ReadonlyArray<readonly [string, string]> => {
  if (input === undefined) return []
  if (Symbol.iterator in input) return Array.from(input as Iterable<readonly [string, string]>)
  return Object.entries(input as Record<string, string>)
}

/** Step 3/4: `k'=lower(encode(k))`, `v'=encode(v)`, sorted by `k'` (the encoded-key order, docs/protocol.md §2). */
const canonical = (entries: ReadonlyArray<readonly [string, string]>): { list: string; pairs: string } => {
  const encoded = entries.map(([k, v]) => [encode(k).toLowerCase(), encode(v)] as const)
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  return {
    list: encoded.map(([k]) => k).join(";"),
    pairs: encoded.map(([k, v]) => `${k}=${v}`).join("&")
  }
}

const sha1Hex = (s: string) => createHash("sha1").update(s, "utf8").digest("hex")
const hmacHex = (key: string, s: string) => createHmac("sha1", key).update(s, "utf8").digest("hex")

/**
 * Computes the signature and every intermediate value (docs/protocol.md §2 steps 1–8).
 *
 * @since 0.1.0
 * @category signing
 */
export const sign = (input: SignInput): Signature => {
  const keyTime = `${input.keyTime.start};${input.keyTime.end}`
  const secretKey = typeof input.secretKey === "string" ? input.secretKey : Redacted.value(input.secretKey)
  const signKey = hmacHex(secretKey, keyTime)
  const params = canonical(entriesOf(input.query))
  const allHeaders = entriesOf(input.headers)
  const exact = input.exactHeaders
  const chosen = exact !== undefined
    ? allHeaders.filter(([k]) => exact.includes(k.toLowerCase()))
    : allHeaders.filter(([k]) => isSignedHeader(k, input.extraSignedHeaders))
  const headers = canonical(chosen)
  const httpString = `${input.method.toLowerCase()}\n${input.path}\n${params.pairs}\n${headers.pairs}\n`
  const httpStringSha1 = sha1Hex(httpString)
  const stringToSign = `sha1\n${keyTime}\n${httpStringSha1}\n`
  const signature = hmacHex(signKey, stringToSign)
  const authorization = `q-sign-algorithm=sha1&q-ak=${input.secretId}&q-sign-time=${keyTime}&q-key-time=${keyTime}` +
    `&q-header-list=${headers.list}&q-url-param-list=${params.list}&q-signature=${signature}`
  return {
    keyTime,
    signKey,
    urlParamList: params.list,
    httpParameters: params.pairs,
    headerList: headers.list,
    httpHeaders: headers.pairs,
    httpString,
    httpStringSha1,
    stringToSign,
    signature,
    authorization
  }
}

/**
 * The `Authorization` header value for a request.
 *
 * @since 0.1.0
 * @category signing
 */
export const authorization = (input: SignInput): string => sign(input).authorization

/**
 * The query string of a pre-signed URL (docs/protocol.md §2, "Alternatively the same key/values go in the query"):
 * the `q-*` fields with URL-encoded values, followed by `x-cos-security-token` when a token is given. Append it to
 * the object URL (after `?`, or `&` if the URL has a query already).
 *
 * @since 0.1.0
 * @category signing
 */
export const presignQuery = (input: SignInput & { readonly securityToken?: Redacted.Redacted<string> }): string => {
  const s = sign(input)
  const fields: Array<[string, string]> = [
    ["q-sign-algorithm", "sha1"],
    ["q-ak", input.secretId],
    ["q-sign-time", s.keyTime],
    ["q-key-time", s.keyTime],
    ["q-header-list", s.headerList],
    ["q-url-param-list", s.urlParamList],
    ["q-signature", s.signature]
  ]
  if (input.securityToken !== undefined) fields.push(["x-cos-security-token", Redacted.value(input.securityToken)])
  return fields.map(([k, v]) => `${k}=${encode(v)}`).join("&")
}

/**
 * The fields of an `Authorization` value (or of a pre-signed URL's `q-*` parameters).
 *
 * @since 0.1.0
 * @category models
 */
export interface ParsedAuthorization {
  readonly algorithm: string
  readonly secretId: string
  readonly signTime: KeyTime
  readonly keyTime: KeyTime
  readonly headerList: ReadonlyArray<string>
  readonly urlParamList: ReadonlyArray<string>
  readonly signature: string
}

const parseKeyTime = (s: string | undefined): KeyTime | undefined => {
  if (s === undefined) return undefined
  const m = /^(\d+);(\d+)$/.exec(s)
  return m ? { start: Number(m[1]), end: Number(m[2]) } : undefined
}

/**
 * Parses an `Authorization` value: `&`-separated `k=v` pairs split at the first `=` (docs/protocol.md §2 "Fake-server
 * verification"). Returns `undefined` when a required field is missing or malformed.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseAuthorization = (value: string): ParsedAuthorization | undefined => {
  const fields = new Map<string, string>()
  for (const part of value.split("&")) {
    const i = part.indexOf("=")
    if (i < 0) continue
    fields.set(part.slice(0, i), part.slice(i + 1))
  }
  return fromFields(fields)
}

/**
 * Builds a {@link ParsedAuthorization} from already-decoded `q-*` fields (a pre-signed URL's query).
 *
 * @since 0.1.0
 * @category parsing
 */
export const fromFields = (fields: ReadonlyMap<string, string>): ParsedAuthorization | undefined => {
  const algorithm = fields.get("q-sign-algorithm")
  const secretId = fields.get("q-ak")
  const signTime = parseKeyTime(fields.get("q-sign-time"))
  const keyTime = parseKeyTime(fields.get("q-key-time"))
  const signature = fields.get("q-signature")
  const headerList = fields.get("q-header-list")
  const urlParamList = fields.get("q-url-param-list")
  if (
    algorithm === undefined || secretId === undefined || signTime === undefined || keyTime === undefined ||
    signature === undefined || headerList === undefined || urlParamList === undefined
  ) return undefined
  const split = (s: string) => (s === "" ? [] : s.split(";"))
  return {
    algorithm,
    secretId,
    signTime,
    keyTime,
    signature,
    headerList: split(headerList),
    urlParamList: split(urlParamList)
  }
}
