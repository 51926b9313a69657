/**
 * The one pagination rule (internal/pagination.ts), shared by the client's streams, the parallel lister and the
 * engine's versions source: the end is a page that is not truncated; a truncated page names the next marker (or
 * its last entry does) and the marker advances; anything else is a CosDecodeError.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { nextMarker, nextVersionsCursor } from "../src/internal/pagination.js"

const keys = (...ks: Array<string>) => ks.map((key) => ({ key }))
const versions = (...vs: Array<[string, string]>) => vs.map(([key, versionId]) => ({ key, versionId }))

const detail = <A>(e: Either.Either<A, { readonly detail: string }>) => {
  if (Either.isRight(e)) throw new Error(`expected a failure, got ${JSON.stringify(e.right)}`)
  return e.left.detail
}

describe("pagination rule: objects", () => {
  it("ends on a page that is not truncated, whatever its NextMarker", () => {
    assert.deepStrictEqual(
      nextMarker("op", { isTruncated: false, contents: keys("a") }, undefined),
      Either.right(undefined)
    )
    assert.deepStrictEqual(
      nextMarker("op", { isTruncated: false, nextMarker: "a", contents: [] }, "z"),
      Either.right(undefined)
    )
  })
  it("follows NextMarker, else the last key, when truncated", () => {
    assert.deepStrictEqual(
      nextMarker("op", { isTruncated: true, nextMarker: "b", contents: keys("a") }, undefined),
      Either.right("b")
    )
    assert.deepStrictEqual(nextMarker("op", { isTruncated: true, contents: keys("a", "c") }, "0"), Either.right("c"))
  })
  it("fails on a truncated page with neither NextMarker nor keys", () => {
    assert.include(detail(nextMarker("op", { isTruncated: true, contents: [] }, "a")), "without NextMarker")
  })
  it("fails on a marker that does not advance (equal, or going back, in UTF-8 order)", () => {
    assert.include(
      detail(nextMarker("op", { isTruncated: true, nextMarker: "a", contents: [] }, "a")),
      "does not advance"
    )
    assert.include(
      detail(nextMarker("op", { isTruncated: true, nextMarker: "a", contents: [] }, "b")),
      "does not advance"
    )
    // U+FFFD sorts before an astral character in UTF-8 (and after it in UTF-16).
    assert.include(
      detail(nextMarker("op", { isTruncated: true, nextMarker: "\uFFFD", contents: [] }, "\u{1F600}")),
      "does not advance"
    )
  })
})

describe("pagination rule: versions", () => {
  it("follows NextKeyMarker/NextVersionIdMarker, else the last entry", () => {
    assert.deepStrictEqual(
      nextVersionsCursor("op", { isTruncated: true, nextKeyMarker: "k", nextVersionIdMarker: "v2", versions: [] }, {
        keyMarker: "k",
        versionIdMarker: "v1"
      }),
      Either.right({ keyMarker: "k", versionIdMarker: "v2" })
    )
    assert.deepStrictEqual(
      nextVersionsCursor("op", { isTruncated: true, versions: versions(["a", "1"], ["b", ""]) }, {
        keyMarker: undefined,
        versionIdMarker: undefined
      }),
      Either.right({ keyMarker: "b", versionIdMarker: "" })
    )
  })
  it("ends on a page that is not truncated", () => {
    assert.deepStrictEqual(
      nextVersionsCursor("op", { isTruncated: false, versions: versions(["a", "1"]) }, {
        keyMarker: "a",
        versionIdMarker: "0"
      }),
      Either.right(undefined)
    )
  })
  it("fails on a truncated page with no marker and no entries, and on a marker that repeats or goes back", () => {
    const at = { keyMarker: "k", versionIdMarker: "v1" }
    assert.include(detail(nextVersionsCursor("op", { isTruncated: true, versions: [] }, at)), "without NextKeyMarker")
    assert.include(
      detail(
        nextVersionsCursor("op", { isTruncated: true, nextKeyMarker: "k", nextVersionIdMarker: "v1", versions: [] }, at)
      ),
      "do not advance"
    )
    assert.include(
      detail(
        nextVersionsCursor("op", { isTruncated: true, nextKeyMarker: "j", nextVersionIdMarker: "v9", versions: [] }, at)
      ),
      "do not advance"
    )
  })
})
