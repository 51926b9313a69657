// Tencent's cos-nodejs-sdk-v5 deleting every key under a prefix the way its documentation does (getBucket a page of
// 1000, deleteMultipleObject it, up to 5 batch deletes in flight), as plain JavaScript: run with plain `node` (no tsx),
// so that the whole process's CPU time (start-up and the SDK's require included) is the SDK's own.
// The same pattern as the SDK side of bench/purge-vs-sdk.ts; bench/cpu-vs-sdk.ts runs it.
//
//   COS_SECRET_ID=... COS_SECRET_KEY=... node bench/sdk-purge.mjs ENDPOINT BUCKET REGION PREFIX
//
// Prints one JSON line: { deleted, ms } (ms: from the first list request to the last delete answer).
import { createRequire } from "node:module"

const [endpoint, bucket, region, prefix] = process.argv.slice(2)
const COS = createRequire(import.meta.url)("cos-nodejs-sdk-v5")
const cos = new COS({
  SecretId: process.env.COS_SECRET_ID,
  SecretKey: process.env.COS_SECRET_KEY,
  Domain: endpoint.slice("http://".length),
  Protocol: "http:"
})
const call = (method, params) =>
  new Promise((resolve, reject) =>
    cos[method]({ Bucket: bucket, Region: region, ...params }, (err, data) => err ? reject(err) : resolve(data))
  )

const t0 = performance.now()
let deleted = 0
const inFlight = new Set()
let marker = ""
for (;;) {
  const page = await call("getBucket", { Prefix: prefix, Marker: marker, MaxKeys: 1000 })
  const objects = page.Contents.map((c) => ({ Key: c.Key }))
  if (objects.length > 0) {
    while (inFlight.size >= 5) await Promise.race(inFlight)
    const p = call("deleteMultipleObject", { Objects: objects, Quiet: false }).then((r) => {
      deleted += (r.Deleted ?? []).length
      inFlight.delete(p)
    })
    inFlight.add(p)
  }
  if (page.IsTruncated !== "true") break
  marker = page.NextMarker
}
await Promise.all(inFlight)
console.log(JSON.stringify({ deleted, ms: performance.now() - t0 }))
