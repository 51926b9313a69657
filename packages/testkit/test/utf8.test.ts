import { Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"))

describe("Store.compareUtf8", () => {
  it("orders astral characters after U+E000–U+FFFF, unlike JavaScript's <", () => {
    assert.ok("\u{1F600}" < "\uFFFD") // UTF-16 order
    assert.ok(Store.compareUtf8("\u{1F600}", "\uFFFD") > 0) // UTF-8: F0 9F.. > EF BF BD
    assert.ok(Store.compareUtf8("a", "ab") < 0)
    assert.strictEqual(Store.compareUtf8("x\u{10000}", "x\u{10000}"), 0)
  })

  it("agrees with comparing the UTF-8 bytes (random strings)", () => {
    const ch = fc.oneof(
      fc.constantFrom(
        "a",
        "/",
        "~",
        "\u007f",
        "\u0080",
        "\u07ff",
        "\u0800",
        "\ud7ff",
        "\ue000",
        "\uffff",
        "\u{10000}",
        "\u{10ffff}"
      ),
      fc.string({ unit: "grapheme", maxLength: 2 })
    )
    const str = fc.array(ch, { maxLength: 6 }).map((a) => a.join(""))
    fc.assert(
      fc.property(str, str, (a, b) => Math.sign(Store.compareUtf8(a, b)) === Math.sign(utf8Order(a, b))),
      { numRuns: 5000 }
    )
  })
})
