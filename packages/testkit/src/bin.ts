#!/usr/bin/env node
/**
 * `cos-fake`: the fake COS on 127.0.0.1 until stopped.
 *
 * pnpm cos-fake --port 9000 --bucket examplebucket-1250000000 --secret-id ID --secret-key KEY [--latency-ms N]
 *   [--fail-rate P] ...   (see --help)
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import * as CosFake from "./CosFake.js"
import * as CosFakeServer from "./CosFakeServer.js"
import * as Faults from "./Faults.js"

const usage = `Usage: cos-fake [options]

Serves an in-memory COS on http://127.0.0.1:PORT. Requests whose Host is <bucket>.cos.<region>.<domain> go to that
bucket, any other Host (e.g. 127.0.0.1:PORT) to the first --bucket.

  --port N                 port on 127.0.0.1 (default 9000; 0 = any free port)
  --bucket NAME            bucket <name>-<appid>, repeatable (default examplebucket-1250000000)
  --region R               region of the buckets (default ap-guangzhou)
  --versioning S           Enabled or Suspended for every bucket (default: never enabled)
  --secret-id ID           accepted SecretId (default: CosFake.testCredentials, or $COS_SECRET_ID)
  --secret-key KEY         its SecretKey (or $COS_SECRET_KEY)
  --security-token T       require this x-cos-security-token (temporary credentials)
  --no-auth                accept unsigned and wrongly signed requests
  --latency-ms N           delay every answer by N ms
  --jitter-ms N            plus a uniform random 0..N ms
  --fail-rate P            share of requests answered 500 InternalError
  --slowdown-rate P        share answered 503 SlowDown
  --reset-rate P           share whose connection is reset
  --timeout-rate P         share never answered
  --batch-key-error-rate P share of keys reported InternalError inside a 200 batch-delete reply
  --list-qps N             list requests per second per bucket (503 SlowDown above)
  --batch-delete-qps N     batch-delete requests per second per bucket
  --write-qps N            write keys per second per bucket (each key of a batch counts)
  --read-qps N             GET/HEAD Object requests per second per bucket
  --cos-quotas             COS's documented quotas (1000 list/s, 300 batch/s, 30000 writes/s, 30000 reads/s)
  --seed N                 create N objects in the first bucket at start
  --seed-prefix P          their key prefix (default "seed/")
  --seed-age-ms N          their age (default 0)
  --seed-size N            their size in bytes (default 0)
  --fail-request N[:F]     fail the N-th request (F: InternalError (default), SlowDown, ServiceUnavailable,
                           Reset, Timeout); repeatable
  --fail-next OP:K[:F]     fail the next K requests of OP (ListObjects, DeleteObjects, ..., or *); repeatable
  --stats                  serve counters and the request log as JSON at GET /_fake/stats
  --log-capacity N         requests kept in the log (default 1000)
  --fault-seed N           seed of the fault dice (default 42)
  --version                print the version of @effect-cos/testkit
`

const { values } = parseArgs({
  options: {
    "port": { type: "string", default: "9000" },
    "bucket": { type: "string", multiple: true },
    "region": { type: "string", default: CosFake.testRegion },
    "versioning": { type: "string" },
    "secret-id": { type: "string" },
    "secret-key": { type: "string" },
    "security-token": { type: "string" },
    "no-auth": { type: "boolean", default: false },
    "latency-ms": { type: "string" },
    "jitter-ms": { type: "string" },
    "fail-rate": { type: "string" },
    "slowdown-rate": { type: "string" },
    "reset-rate": { type: "string" },
    "timeout-rate": { type: "string" },
    "batch-key-error-rate": { type: "string" },
    "list-qps": { type: "string" },
    "batch-delete-qps": { type: "string" },
    "write-qps": { type: "string" },
    "read-qps": { type: "string" },
    "cos-quotas": { type: "boolean", default: false },
    "seed": { type: "string" },
    "seed-prefix": { type: "string", default: "seed/" },
    "seed-age-ms": { type: "string" },
    "seed-size": { type: "string" },
    "fail-request": { type: "string", multiple: true },
    "fail-next": { type: "string", multiple: true },
    "stats": { type: "boolean", default: false },
    "log-capacity": { type: "string" },
    "fault-seed": { type: "string" },
    "help": { type: "boolean", short: "h", default: false },
    "version": { type: "boolean", default: false }
  },
  strict: true
})

if (values.version) {
  // package.json is one directory above src/ and dist/ alike
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
  process.stdout.write(`${pkg.version}\n`)
  process.exit(0)
}
if (values.help) {
  process.stdout.write(usage)
  process.exit(0)
}

const num = (name: string, s: string | undefined): number | undefined => {
  if (s === undefined) return undefined
  const n = Number(s)
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`cos-fake: --${name} must be a non-negative number, got ${JSON.stringify(s)}\n`)
    process.exit(2)
  }
  return n
}

const buckets = values.bucket ?? [CosFake.testBucket]
for (const b of buckets) {
  if (!/^[a-z0-9-]+-[0-9]+$/.test(b)) {
    process.stderr.write(`cos-fake: --bucket must look like <name>-<appid> (e.g. examplebucket-1250000000), got ${b}\n`)
    process.exit(2)
  }
}
const versioning = values.versioning
if (versioning !== undefined && versioning !== "Enabled" && versioning !== "Suspended") {
  process.stderr.write("cos-fake: --versioning must be Enabled or Suspended\n")
  process.exit(2)
}
const secretId = values["secret-id"] ?? process.env["COS_SECRET_ID"]
const secretKey = values["secret-key"] ?? process.env["COS_SECRET_KEY"]
if ((secretId === undefined) !== (secretKey === undefined)) {
  process.stderr.write("cos-fake: give both --secret-id and --secret-key (or neither, for the test credentials)\n")
  process.exit(2)
}
const credential: CosFake.Credential = secretId !== undefined && secretKey !== undefined ?
  {
    secretId,
    secretKey: Redacted.make(secretKey),
    securityToken: values["security-token"] !== undefined ? Redacted.make(values["security-token"]) : undefined
  } :
  CosFake.testCredentials

const op: Faults.OperationFaults = {
  latencyMs: num("latency-ms", values["latency-ms"]),
  jitterMs: num("jitter-ms", values["jitter-ms"]),
  internalErrorRate: num("fail-rate", values["fail-rate"]),
  slowDownRate: num("slowdown-rate", values["slowdown-rate"]),
  resetRate: num("reset-rate", values["reset-rate"]),
  timeoutRate: num("timeout-rate", values["timeout-rate"])
}
const quotas: Faults.Quotas = {
  ...(values["cos-quotas"] ? Faults.cosQuotas : {}),
  ...(values["read-qps"] !== undefined ? { readPerSecond: num("read-qps", values["read-qps"]) } : {}),
  ...(values["list-qps"] !== undefined ? { listPerSecond: num("list-qps", values["list-qps"]) } : {}),
  ...(values["batch-delete-qps"] !== undefined ?
    { batchDeletePerSecond: num("batch-delete-qps", values["batch-delete-qps"]) } :
    {}),
  ...(values["write-qps"] !== undefined ? { writeKeysPerSecond: num("write-qps", values["write-qps"]) } : {})
}
const seedCount = num("seed", values.seed)

const faultNames: ReadonlyArray<Faults.Fault> = ["SlowDown", "ServiceUnavailable", "InternalError", "Reset", "Timeout"]
const operations: ReadonlyArray<Faults.Operation | "*"> = [
  "*",
  "ListObjects",
  "ListObjectVersions",
  "HeadBucket",
  "GetBucketVersioning",
  "PutBucketVersioning",
  "PutObject",
  "GetObject",
  "HeadObject",
  "DeleteObject",
  "DeleteObjects",
  "CreateMultipartUpload",
  "UploadPart",
  "CompleteMultipartUpload",
  "AbortMultipartUpload",
  "ListMultipartUploads",
  "ListParts"
]
const usageError = (message: string): never => {
  process.stderr.write(`cos-fake: ${message}\n`)
  return process.exit(2)
}
const fault = (s: string | undefined): Faults.Fault =>
  s === undefined ?
    "InternalError" :
    faultNames.find((f) => f === s) ?? usageError(`unknown fault ${s} (one of ${faultNames.join(", ")})`)
const script: Array<Faults.Scripted> = [
  ...(values["fail-request"] ?? []).map((spec) => {
    const [n, f] = spec.split(":")
    return Faults.failRequest(num("fail-request", n) ?? 0, fault(f))
  }),
  ...(values["fail-next"] ?? []).map((spec) => {
    const [op, k, f] = spec.split(":")
    const operation = operations.find((o) => o === op) ??
      usageError(`unknown operation ${op} (one of ${operations.join(", ")})`)
    return Faults.failNext(operation, num("fail-next", k ?? "1") ?? 1, fault(f))
  })
]

const program = Effect.gen(function*() {
  const server = yield* CosFakeServer.start({
    port: num("port", values.port),
    buckets: buckets.map((name) => ({ name, region: values.region, versioning })),
    credentials: [credential],
    auth: !values["no-auth"],
    faults: {
      all: op,
      batchKeyErrorRate: num("batch-key-error-rate", values["batch-key-error-rate"]),
      quotas: Object.keys(quotas).length > 0 ? quotas : undefined,
      script,
      seed: num("fault-seed", values["fault-seed"])
    },
    seed: seedCount !== undefined && seedCount > 0 ?
      [{
        bucket: buckets[0]!,
        count: seedCount,
        prefix: values["seed-prefix"],
        ageMs: num("seed-age-ms", values["seed-age-ms"]),
        size: num("seed-size", values["seed-size"])
      }] :
      undefined,
    statsEndpoint: values.stats,
    logCapacity: num("log-capacity", values["log-capacity"])
  })
  yield* Console.log(`cos-fake listening on ${server.url}`)
  yield* Console.log(
    `  buckets: ${buckets.join(", ")} (region ${values.region}; other hosts go to ${buckets[0]})` +
      `\n  SecretId: ${credential.secretId}${secretId === undefined ? " (CosFake.testCredentials)" : ""}` +
      (values["no-auth"] ? "\n  signatures are NOT checked" : "") +
      (values.stats ? `\n  stats: ${server.url}/_fake/stats` : "") +
      (seedCount ? `\n  seeded ${seedCount} objects under ${values["seed-prefix"]}` : "")
  )
  return yield* Effect.never
})

NodeRuntime.runMain(Effect.scoped(program), { disablePrettyLogger: true })
