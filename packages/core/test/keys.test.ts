import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as CosClient from "../src/CosClient.js"
import * as Keys from "../src/internal/keys.js"

const xmlUnsafe =
  /[\x00-\x08\x0A-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const anyString = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0, max: 0xFFFF }).map((c) => String.fromCharCode(c)),
    fc.constantFrom("\uD800", "\uDBFF", "\uDC00", "\uDFFF", "\uFFFE", "\uFFFF", "\t", "\n", "\r", "😀", "a")
  ),
  maxLength: 12
})

describe("key checks", () => {
  it("isXmlSafeKey and isWellFormed match their definitions", () => {
    fc.assert(
      fc.property(anyString, (s) => {
        assert.strictEqual(CosClient.isXmlSafeKey(s), !xmlUnsafe.test(s), JSON.stringify(s))
        assert.strictEqual(Keys.isWellFormed(s), !lone.test(s), JSON.stringify(s))
      }),
      { numRuns: 5000 }
    )
  })

  it("compareKeys is UTF-8 byte order", () => {
    fc.assert(
      fc.property(anyString.filter(Keys.isWellFormed), anyString.filter(Keys.isWellFormed), (a, b) => {
        const bytes = Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))
        assert.strictEqual(Math.sign(CosClient.compareKeys(a, b)), bytes)
      }),
      { numRuns: 5000 }
    )
  })

  it("keyProblem explains what is wrong", () => {
    assert.isUndefined(CosClient.keyProblem("a/b c.txt"))
    assert.include(CosClient.keyProblem("/a")!, "begins with '/'")
    assert.include(CosClient.keyProblem("")!, "empty")
    assert.include(CosClient.keyProblem("..")!, "dot-segment")
    assert.include(CosClient.keyProblem("é".repeat(426))!, "852 bytes")
    assert.isUndefined(CosClient.keyProblem("é".repeat(425)))
  })

  it("bucket and region checks follow docs/protocol.md §1", () => {
    assert.isUndefined(Keys.bucketProblem("examplebucket-1250000000", "ap-beijing"))
    assert.isDefined(Keys.bucketProblem("example_bucket-1250000000", "ap-beijing"))
    assert.isDefined(Keys.bucketProblem("examplebucket-", "ap-beijing"))
    assert.include(Keys.bucketProblem("a".repeat(20) + "-1250000000", "ap-shenzhen-fsi")!, "longer than 60")
    assert.isUndefined(Keys.regionProblem("ap-shenzhen-fsi"))
    assert.isDefined(Keys.regionProblem("AP-Beijing"))
    assert.isDefined(Keys.regionProblem("ap.beijing"))
  })
})
