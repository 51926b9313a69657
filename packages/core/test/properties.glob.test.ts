/**
 * Property: an include or exclude glob selects exactly the keys the reference model's own glob matcher
 * (ReferenceModel.globMatch, written independently) says it names, with astral characters and combining marks in the
 * keys and in the globs: a character is a code point, as COS keys are UTF-8.
 */
import { Deletion } from "@effect-cos/core"
import { ReferenceModel } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { globArb, globKeyArb } from "./support/engineProperties.js"

const RUNS = Number(process.env["PROPERTY_RUNS"] ?? 25) * 40

describe("globs match code points, as the reference model does", () => {
  it("include and exclude agree with ReferenceModel.globMatch on keys with astral characters", () => {
    fc.assert(
      fc.property(
        globArb.chain((glob) =>
          fc.tuple(fc.constant(glob), fc.array(globKeyArb(glob), { minLength: 1, maxLength: 8 }))
        ),
        ([glob, keys]) => {
          const include = Deletion.matcher({ prefix: "", include: [glob] }, 0)
          const exclude = Deletion.matcher({ prefix: "", exclude: [glob] }, 0)
          for (const key of keys) {
            const expected = ReferenceModel.globMatch(glob, key)
            const shown = `${JSON.stringify(glob)} ${JSON.stringify(key)}`
            assert.strictEqual(include.key(key), expected, `include ${shown}`)
            assert.strictEqual(exclude.key(key), !expected, `exclude ${shown}`)
          }
        }
      ),
      { numRuns: RUNS }
    )
  })

  it("an exclude protects the astral and combining-mark keys it names (regressions from issue 9)", () => {
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      ["t/keep?", "t/keep\u{1F600}", true],
      ["t/[\u{1F600}]x", "t/\u{1F600}x", true],
      ["t/[\u{1F600}-\u{1F64F}]", "t/\u{1F601}", true],
      ["t/[^\u{1F600}]", "t/\u{1F600}", false],
      ["t/??", "t/\u{1F600}", false],
      ["t/caf?", "t/cafe\u0301", false],
      ["t/caf??", "t/cafe\u0301", true],
      ["t/*", "t/\u{1F600}\u{10FFFF}", true]
    ]
    for (const [glob, key, named] of cases) {
      assert.strictEqual(Deletion.matcher({ prefix: "t/", exclude: [glob] }, 0).key(key), !named, `${glob} ${key}`)
      assert.strictEqual(ReferenceModel.globMatch(glob, key), named, `model: ${glob} ${key}`)
    }
  })

  it("a glob that cannot be compiled is refused, never read as matching nothing", () => {
    // picomatch answers these with an expression that matches nothing: as an exclude, that deletes what it names.
    for (const glob of ["[z-a]", "a{", "a\\"]) assert.throws(() => Deletion.globRegExp(glob), /does not compile/)
  })
})
