// Two fakes in one process keep to themselves: request ids and rendered list entries depend on a fake's own
// traffic only.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { createHash } from "node:crypto"
import type { RawRequest, Transport } from "./utils/transport.js"
import { inProcess, tag, tags, unescapeXml } from "./utils/transport.js"

const etagOf = (body: string) => `"${createHash("md5").update(body).digest("hex")}"`

/** A user's session: a put, a read, a miss (an error answer), a listing. */
const session: ReadonlyArray<RawRequest> = [
  { method: "PUT", key: "a&b <1>.txt", body: "one" },
  { method: "GET", key: "a&b <1>.txt" },
  { method: "GET", key: "missing" },
  { method: "GET" }
]

const requestIds = (t: Transport, requests: ReadonlyArray<RawRequest>) =>
  Effect.forEach(requests, (r) =>
    Effect.map(t.send(r), (res) => {
      // An error names the same id in its body as in its header.
      if (res.status >= 400 && r.method !== "HEAD") {
        assert.strictEqual(tag(res.body, "RequestId"), res.headers["x-cos-request-id"])
      }
      return res.headers["x-cos-request-id"]!
    }))

describe("two fakes in one process", () => {
  it.effect("a fresh fake's request ids start the same way whatever another fake has served", () =>
    Effect.gen(function*() {
      const alone = yield* requestIds(yield* inProcess(), session)
      assert.strictEqual(new Set(alone).size, session.length)

      const busy = yield* inProcess()
      yield* requestIds(busy, Array.from({ length: 7 }, () => ({ method: "HEAD", key: "x" })))
      const fresh = yield* inProcess()
      const interleaved: Array<string> = []
      for (const r of session) {
        interleaved.push(...(yield* requestIds(fresh, [r])))
        yield* requestIds(busy, [{ method: "GET", key: "y" }])
      }
      assert.deepStrictEqual(interleaved, alone)
    }))

  it.effect("list pages of two fakes served in turn carry each fake's own dates and ETags", () =>
    Effect.gen(function*() {
      const a = yield* inProcess()
      const b = yield* inProcess()
      // Each fake's keys, in listing order, with the time (ms after 2024-01-01) and body each is written with.
      const writes = [
        { t: a, entries: [["k/1 & 'x'", 0, "a1"], ["k/2 <y>", 0, "a2"], ["k/3", 2000, "a2"]] },
        { t: b, entries: [["k/1 & 'x'", 1500, "b1"], ["k/2 <y>", 1501, "b1"], ["k/\u{1F600}", 1501, "b2"]] }
      ] as const
      const epoch = Date.UTC(2024, 0, 1)
      for (const at of [0, 1500, 1501, 2000]) {
        yield* TestClock.setTime(epoch + at)
        for (const { entries, t } of writes) {
          for (const [key, when, body] of entries) if (when === at) yield* t.send({ method: "PUT", key, body })
        }
      }
      for (let round = 0; round < 2; round++) {
        for (const { entries, t } of writes) {
          for (const query of [[], [["versions", ""]]] as const) {
            const page = yield* t.send({ method: "GET", query })
            assert.strictEqual(page.status, 200)
            assert.deepStrictEqual(tags(page.body, "Key").map(unescapeXml), entries.map(([key]) => key))
            assert.deepStrictEqual(
              tags(page.body, "LastModified"),
              entries.map(([, when]) => new Date(epoch + when).toISOString())
            )
            assert.deepStrictEqual(tags(page.body, "ETag").map(unescapeXml), entries.map(([, , body]) => etagOf(body)))
          }
        }
      }
    }))
})
