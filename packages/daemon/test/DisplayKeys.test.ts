/**
 * Keys in human-readable output (purge's summary, plan's table, the demo) are written so that a terminal shows them and
 * does not act on them: a key holding a carriage return, a line break, an escape sequence, a C1 control or a
 * right-to-left override could otherwise overwrite the line, clear the screen or show a different key than the one
 * deleted. Machine-readable output (`--json`) keeps keys exactly.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { displayKey } from "../src/Display.js"
import { writeLocalConfig } from "./support/config.js"
import { cosRetention } from "./support/inProcess.js"

const bucket = CosFake.testBucket
const DAY = 86_400_000

/** Characters that must never reach a terminal raw from a key. */
const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/

const keys = [
  "k/cr\roverwritten",
  "k/line\nbreak",
  "k/\u001b[2Jclear",
  "k/c1\u0085next-line",
  "k/rtl\u202etxt.exe",
  "k/ lead and trail ",
  "k/\u{1F600}astral e\u0301 <&>\"'"
]

describe("keys in human-readable output", () => {
  it("displayKey: plain keys as they are; others quoted, every invisible character escaped", () => {
    assert.strictEqual(displayKey("logs/a b.txt"), "logs/a b.txt")
    assert.strictEqual(displayKey("k/\u{1F600}e\u0301<&>"), "k/\u{1F600}e\u0301<&>")
    assert.strictEqual(displayKey("a\rb"), "\"a\\rb\"")
    assert.strictEqual(displayKey("a\nb"), "\"a\\nb\"")
    assert.strictEqual(displayKey("\u001b[2J"), "\"\\u001b[2J\"")
    assert.strictEqual(displayKey("c1\u0085"), "\"c1\\u0085\"")
    assert.strictEqual(displayKey("rtl\u202etxt"), "\"rtl\\u202etxt\"")
    assert.strictEqual(displayKey("sep\u2028x"), "\"sep\\u2028x\"")
    assert.strictEqual(displayKey(" lead"), "\" lead\"")
    assert.strictEqual(displayKey("trail\t"), "\"trail\\t\"")
    assert.strictEqual(displayKey(""), "\"\"")
    for (const k of keys) assert.notMatch(displayKey(k), raw, JSON.stringify(k))
  })

  it.scopedLive("purge's summary, plan's table and the JSON summary", () =>
    Effect.gen(function*() {
      const server = yield* CosFakeServer.start({})
      yield* Store.seed(server.fake.store, { bucket, count: keys.length, keyFn: (i) => keys[i]!, ageMs: 40 * DAY })
      const target = ["--bucket", bucket, "--region", CosFake.testRegion, "--endpoint", server.url]

      const text = yield* cosRetention(["purge", ...target, "--prefix", "k/", "--dry-run"])
      assert.strictEqual(text.code, 0, text.stderr)
      assert.notMatch(text.stdout, raw)
      assert.include(text.stdout, "\"k/cr\\roverwritten\"")
      assert.include(text.stdout, "\"k/\\u001b[2Jclear\"")
      assert.include(text.stdout, "\"k/rtl\\u202etxt.exe\"")
      assert.include(text.stdout, "\"k/ lead and trail \"")
      assert.include(text.stdout, "k/\u{1F600}astral e\u0301 <&>\"'")

      const json = yield* cosRetention(["purge", ...target, "--prefix", "k/", "--dry-run", "--json"])
      const summary = JSON.parse(json.stdout.trim().split("\n").pop()!) as { sample: Array<string> }
      assert.deepStrictEqual([...summary.sample].sort(), [...keys].sort())

      const config = yield* writeLocalConfig(
        "display",
        server.url,
        `  - name: odd-keys
    bucket: ${bucket}
    prefix: "k/cr\\r"
    olderThan: 30d
    schedule: "0 3 * * *"
`
      )
      const plan = yield* cosRetention(["plan", "--config", config.path])
      assert.strictEqual(plan.code, 0, plan.stderr)
      assert.notMatch(plan.stdout, raw)
      assert.include(plan.stdout, `${bucket}/"k/cr\\r"`)
      assert.include(plan.stdout, "\"k/cr\\roverwritten\"")
      // Nothing was deleted by any of this.
      assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "k/")).length, keys.length)
    }), 30_000)
})
