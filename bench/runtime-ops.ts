// Fiber-runtime operations and fibers started, counted (a Supervisor with op supervision on): per 1000 keys of
// `Deletion.purge` over an in-memory stub CosClient (pages and replies made in memory: no HTTP, no XML, so only the
// engine and its streams count), and per request of the real client (`CosClient.make`) over an in-memory HttpClient
// (signing, retry, timeout, the platform's HttpClient pipeline). Counts do not depend on the machine's load, unlike
// CPU time: use them to compare two versions of the engine or the client. The tracer is off, as in `cos-retention
// purge`.
//
//   node --conditions=source --import tsx bench/runtime-ops.ts [--keys 50000] [--concurrency 8]
//     [--list-concurrency 4] [--top 25]
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as RuntimeFlagsPatch from "effect/RuntimeFlagsPatch"
import * as Supervisor from "effect/Supervisor"
import type { CosClient as Client, DeleteObjectsInput, ListObjectsInput } from "../packages/core/src/CosClient.js"
import { CosClient, Credentials, Deletion } from "../packages/core/src/index.js"
import { flag } from "./purge-harness.js"

const keys = Number(flag("keys", "50000"))
const concurrency = Number(flag("concurrency", "8"))
const listConcurrency = Number(flag("list-concurrency", "4"))
const top = Number(flag("top", "25"))

/** Counts operations by kind and by the function they run (its first characters), and fibers started. */
class Counter extends Supervisor.AbstractSupervisor<void> {
  ops = 0
  fibers = 0
  readonly byKind = new Map<string, number>()
  get value() {
    return Effect.void
  }
  override onStart() {
    this.fibers++
  }
  override onEffect(_fiber: unknown, effect: unknown) {
    this.ops++
    const op = effect as Record<string, unknown> & { readonly _op: string }
    const f = op._op === "OnSuccess" || op._op === "OnFailure"
      ? op.effect_instruction_i1
      : op._op === "OnSuccessAndFailure"
      ? op.effect_instruction_i2
      : op._op === "Sync" || op._op === "WithRuntime"
      ? op.effect_instruction_i0
      : op._op === "Commit"
      ? op.commit
      : undefined
    const key = `${op._op.padEnd(19)} ${typeof f === "function" ? f.toString().replace(/\s+/g, " ").slice(0, 100) : ""}`
    this.byKind.set(key, (this.byKind.get(key) ?? 0) + 1)
  }
  report(title: string, per: number, unit: string) {
    console.log(
      `\n${title}: ${(this.ops / per).toFixed(0)} operations, ${(this.fibers / per).toFixed(1)} fibers ${unit}`
    )
    for (const [k, n] of [...this.byKind].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(n / per).toFixed(1).padStart(8)}  ${k}`)
    }
  }
}

const counted = <A, E>(effect: Effect.Effect<A, E>, counter: Counter) =>
  effect.pipe(
    Effect.withTracerEnabled(false),
    Effect.supervised(counter),
    Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
  )

// --- the engine over a stub client --------------------------------------------------------------------------------

const names = Array.from({ length: keys }, (_, i) => `bench/${String(i).padStart(8, "0")}`)
const lastModified = new Date("2024-01-01T00:00:00Z")
const stub = {
  region: "ap-guangzhou",
  defaultBucket: "examplebucket-1250000000",
  listObjects: (input: ListObjectsInput = {}) =>
    Effect.sync(() => {
      const marker = input.marker ?? ""
      let lo = 0
      let hi = names.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (names[mid]! <= marker) lo = mid + 1
        else hi = mid
      }
      const page = names.slice(lo, lo + (input.maxKeys ?? 1000))
      const truncated = lo + page.length < names.length
      return {
        name: "examplebucket-1250000000",
        prefix: input.prefix ?? "",
        marker,
        maxKeys: 1000,
        isTruncated: truncated,
        nextMarker: truncated ? page[page.length - 1] : undefined,
        contents: page.map((key) => ({ key, lastModified, etag: "\"e\"", size: 0, storageClass: "STANDARD" })),
        commonPrefixes: []
      }
    }),
  deleteObjects: (input: DeleteObjectsInput) =>
    Effect.sync(() => {
      const outcomes = input.objects.map((o) => ({ _tag: "Deleted" as const, key: o.key, deleteMarker: false }))
      return { deleted: input.quiet === true ? [] : outcomes, errors: [], missing: [], outcomes }
    })
} as unknown as Client

const engine = new Counter()
const summary = await Effect.runPromise(counted(
  Deletion.purge({ prefix: "bench/", concurrency, listConcurrency, writeBudget: 1e9, listBudget: 1e9 }).pipe(
    Effect.provideService(CosClient.CosClient, stub)
  ),
  engine
))
if (summary.deleted !== keys) throw new Error(`deleted ${summary.deleted} of ${keys}`)
engine.report(
  `Deletion.purge over a stub client, ${keys} keys, concurrency ${concurrency}, list concurrency ${listConcurrency}` +
    ` (${summary.requests} requests)`,
  keys / 1000,
  "per 1000 keys"
)

// --- one request of the real client over an in-memory HttpClient ------------------------------------------------

const http = HttpClient.make((request) =>
  Effect.succeed(
    {
      request,
      status: 200,
      headers: { "content-type": "application/xml" },
      text: Effect.succeed("")
    } as unknown as HttpClientResponse.HttpClientResponse
  )
)
const rounds = 200
const client = new Counter()
await Effect.runPromise(
  Effect.gen(function*() {
    const c = yield* CosClient.make({
      region: "ap-guangzhou",
      bucket: "examplebucket-1250000000",
      credentials: Credentials.fromStatic({ secretId: "AKIDexample", secretKey: Redacted.make("secret") })
    })
    const headBucket = c.headBucket()
    yield* counted(
      Effect.gen(function*() {
        for (let i = 0; i < rounds; i++) yield* headBucket
      }),
      client
    )
  }).pipe(Effect.provideService(HttpClient.HttpClient, http))
)
client.report("CosClient.headBucket over an in-memory HttpClient (the loop's own 2 included)", rounds, "per request")
