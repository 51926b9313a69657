// Signature verification (docs/protocol.md §2): the Authorization header or a pre-signed URL's q-* parameters,
// checked against the fake's credentials, times and the headers and parameters the signature claims to cover.
import { Signer } from "@effect-cos/core"
import * as Redacted from "effect/Redacted"
import type { Ctx, FakeRequest, FakeResponse } from "./request.js"

export interface FakeCredential {
  readonly secretId: string
  readonly secretKey: Redacted.Redacted<string> | string
  /** Temporary credentials: requests must carry this `x-cos-security-token`. */
  readonly securityToken?: Redacted.Redacted<string> | string | undefined
}

const authorizationFields = (value: string): Map<string, string> => {
  const fields = new Map<string, string>()
  for (const part of value.split("&")) {
    const i = part.indexOf("=")
    if (i >= 0) fields.set(part.slice(0, i), part.slice(i + 1))
  }
  return fields
}

const keyTimeRe = /^(-?[0-9]+);(-?[0-9]+)$/
const parseKeyTime = (s: string | undefined): Signer.KeyTime | undefined => {
  const m = keyTimeRe.exec(s ?? "")
  return m === null ? undefined : { start: Number(m[1]), end: Number(m[2]) }
}

/**
 * `Signer.fromFields`, but also reading a negative start time: a client signing `now - 1` under a `TestClock` at
 * the epoch sends `-1;899`. Real COS would refuse that; the fake serves tests, so it accepts it.
 */
const parseFields = (fields: ReadonlyMap<string, string>): Signer.ParsedAuthorization | undefined => {
  const signTime = parseKeyTime(fields.get("q-sign-time"))
  const keyTime = parseKeyTime(fields.get("q-key-time"))
  if (signTime === undefined || keyTime === undefined) return undefined
  const base = Signer.fromFields(new Map([...fields, ["q-sign-time", "0;0"], ["q-key-time", "0;0"]]))
  return base === undefined ? undefined : { ...base, signTime, keyTime }
}

/**
 * A verifier for these credentials: `undefined` when the request is signed by one of them, otherwise the COS
 * error answer (AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch).
 */
export const makeVerifier = (credentials: ReadonlyArray<FakeCredential>) => {
  const credentialsById = new Map(credentials.map((c) => [c.secretId, c] as const))
  return (
    ctx: Ctx,
    req: FakeRequest,
    path: string,
    query: ReadonlyArray<readonly [string, string]>
  ): FakeResponse | undefined => {
    const header = req.headers["authorization"]
    let parsed: Signer.ParsedAuthorization | undefined
    let presigned = false
    if (header !== undefined && header !== "") {
      parsed = parseFields(authorizationFields(header))
    } else if (query.some(([k]) => k === "q-sign-algorithm" || k === "q-ak" || k === "q-signature")) {
      presigned = true
      parsed = parseFields(new Map(query.filter(([k]) => k.startsWith("q-"))))
    } else {
      return ctx.error(403, "AccessDenied", "Access Denied.")
    }
    if (parsed === undefined || parsed.algorithm !== "sha1") {
      return ctx.error(403, "AccessDenied", "Authorization format is invalid.")
    }
    const cred = credentialsById.get(parsed.secretId)
    if (cred === undefined) {
      return ctx.error(403, "InvalidAccessKeyId", "The Access Key Id you provided does not exist in our records.")
    }
    const nowSec = Math.floor(ctx.now / 1000)
    if (
      nowSec < parsed.signTime.start || nowSec > parsed.signTime.end || nowSec < parsed.keyTime.start ||
      nowSec > parsed.keyTime.end
    ) return ctx.error(403, "AccessDenied", "Request has expired")
    if (cred.securityToken !== undefined) {
      const sent = req.headers["x-cos-security-token"] ?? query.find(([k]) => k === "x-cos-security-token")?.[1]
      if (sent === undefined || sent === "") {
        return ctx.error(403, "InvalidAccessKeyId", "Temporary credentials need x-cos-security-token.")
      }
      const expected = typeof cred.securityToken === "string" ?
        cred.securityToken :
        Redacted.value(cred.securityToken)
      if (sent !== expected) return ctx.error(403, "AccessDenied", "The security token is invalid.")
    }
    const mismatch = () =>
      ctx.error(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
      )
    const headers: Array<readonly [string, string]> = []
    for (const name of parsed.headerList) {
      const v = req.headers[name]
      if (v === undefined) return mismatch()
      headers.push([name, v])
    }
    const params: Array<readonly [string, string]> = []
    if (parsed.urlParamList.length > 0) {
      const byName = new Map<string, readonly [string, string]>()
      for (const kv of query) {
        if (presigned && kv[0].startsWith("q-")) continue
        byName.set(Signer.encode(kv[0]).toLowerCase(), kv)
      }
      for (const name of parsed.urlParamList) {
        const kv = byName.get(name)
        if (kv === undefined) return mismatch()
        params.push(kv)
      }
    }
    const expected = Signer.sign({
      method: req.method,
      path,
      query: params,
      headers,
      exactHeaders: parsed.headerList,
      keyTime: parsed.keyTime,
      secretId: cred.secretId,
      secretKey: cred.secretKey
    }).signature
    return expected === parsed.signature ? undefined : mismatch()
  }
}
