// The fake's HTTP handler: parses a request, applies faults, auth and quotas, and routes it to the module that
// answers its operation. Everything one fake keeps between requests (request ids, render caches) lives in the
// closure `makeHandler` returns, so fakes in one process never share it.
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { FaultState, StatsState } from "../faults.js"
import type { StoreImpl } from "../store.js"
import { type FakeCredential, makeVerifier } from "./auth.js"
import { deleteObjects } from "./batch.js"
import { listObjects, listVersions } from "./listing.js"
import { abort, complete, initiate, listParts, listUploads, uploadPart } from "./multipart.js"
import { deleteObject, getOrHead, putObject } from "./objects.js"
import {
  Ctx,
  type FakeRequest,
  type FakeResponse,
  hostRe,
  operationOf,
  parseQuery,
  pctDecode,
  RequestIds
} from "./request.js"
import { getVersioning, putVersioning } from "./versioning.js"
import { Renderer } from "./xml.js"

export type { FakeCredential } from "./auth.js"
export type { FakeRequest, FakeResponse } from "./request.js"

export interface HandlerConfig {
  readonly store: StoreImpl
  readonly credentials: ReadonlyArray<FakeCredential>
  readonly auth: boolean
  readonly defaultBucket: string | undefined
  readonly faults: FaultState
  readonly stats: StatsState
  readonly statsEndpoint: boolean
}

export const makeHandler = (cfg: HandlerConfig) => {
  const verify = makeVerifier(cfg.credentials)
  const requestIds = new RequestIds()
  const render = new Renderer()
  const newCtx = (now: number, method: string, resource: string) =>
    new Ctx(now, method, resource, requestIds.next(now), render)

  return (req: FakeRequest): Effect.Effect<FakeResponse> =>
    Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      const method = req.method.toUpperCase()
      const qi = req.url.indexOf("?")
      const rawPath = qi < 0 ? req.url : req.url.slice(0, qi)
      const host = req.headers["host"] ?? ""
      let path: string
      let query: Array<readonly [string, string]>
      try {
        path = pctDecode(rawPath)
        query = parseQuery(qi < 0 ? "" : req.url.slice(qi + 1))
      } catch {
        return newCtx(start, method, host + rawPath).error(400, "InvalidURI", "Couldn't parse the specified URI.")
      }
      if (cfg.statsEndpoint && path === "/_fake/stats" && method === "GET") {
        const body = JSON.stringify(cfg.stats.snapshot())
        return {
          _tag: "Response",
          status: 200,
          headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
          body
        } as const
      }
      const q = new Map(query)
      const m = hostRe.exec(host.toLowerCase())
      const bucketName = m !== null ? m[1] : cfg.defaultBucket
      const isBucket = path === "/"
      const key = isBucket ? undefined : path.slice(1)
      const op = operationOf(method, isBucket, q)
      const ctx = newCtx(start, method, host + path)
      const decision = cfg.faults.decide(op)
      const seq = cfg.faults.requests
      const respond = (): FakeResponse => {
        if (decision.fault !== undefined) return ctx.fault(decision.fault)
        const bucket = bucketName === undefined ? undefined : cfg.store.buckets.get(bucketName)
        if (bucket === undefined) return ctx.error(404, "NoSuchBucket", "The specified bucket does not exist.")
        if (cfg.auth) {
          const denied = verify(ctx, req, path, query)
          if (denied !== undefined) return denied
        }
        // DeleteObjects is admitted by its key count, once its body is read (batch.ts).
        if (op !== "DeleteObjects" && !cfg.faults.admit(bucket.name, op, 1, ctx.now)) {
          return ctx.error(503, "SlowDown", "Please reduce your request rate.")
        }
        switch (op) {
          case "ListObjects":
            return listObjects(ctx, bucket, q, cfg.faults.config.listPageSize)
          case "ListObjectVersions":
            return listVersions(ctx, bucket, q, cfg.faults.config.listPageSize)
          case "HeadBucket":
            return ctx.ok(200, "", { "x-cos-bucket-region": bucket.region })
          case "GetBucketVersioning":
            return getVersioning(ctx, bucket)
          case "PutBucketVersioning":
            return putVersioning(ctx, bucket, req)
          case "PutObject":
            return putObject(ctx, bucket, key!, req)
          case "GetObject":
          case "HeadObject":
            return getOrHead(ctx, bucket, key!, q, req)
          case "DeleteObject":
            return deleteObject(ctx, bucket, key!, q, cfg.stats)
          case "DeleteObjects":
            return deleteObjects(ctx, bucket, req, cfg.faults, cfg.stats)
          case "CreateMultipartUpload":
            return initiate(ctx, bucket, key!, req, cfg.store)
          case "UploadPart":
            return uploadPart(ctx, bucket, key!, q, req)
          case "CompleteMultipartUpload":
            return complete(ctx, bucket, key!, q, req)
          case "AbortMultipartUpload":
            return abort(ctx, bucket, key!, q)
          case "ListMultipartUploads":
            return listUploads(ctx, bucket, q)
          case "ListParts":
            return listParts(ctx, bucket, key!, q)
          case "Unknown":
            return isBucket && method === "GET" ?
              ctx.error(501, "NotImplemented", "The fake does not implement this bucket operation.") :
              ctx.error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        }
      }
      if (decision.latencyMs > 0) yield* Effect.sleep(Duration.millis(decision.latencyMs))
      const res = respond()
      const end = yield* Clock.currentTimeMillis
      cfg.stats.record({
        seq,
        time: start,
        method,
        operation: op,
        bucket: bucketName,
        key,
        keys: ctx.keys,
        status: res._tag === "Response" ? res.status : res._tag === "Reset" ? "reset" : "timeout",
        code: ctx.code,
        durationMs: end - start
      })
      return res
    })
}
