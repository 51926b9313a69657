/**
 * Property: over random buckets (keys with unicode, spaces, XML specials and control characters; random ages, sizes
 * and version histories) and random rules, `Deletion.purge` against the in-process fake removes exactly what the
 * reference model (testkit ReferenceModel) selects, reports exactly what it removed, and its summary adds up.
 */
import type { ReferenceModel } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import picomatch from "picomatch"
import { type Case, caseArb, runCase } from "./support/engineProperties.js"

const compiled = new Map<string, (key: string) => boolean>()
/** The documented glob semantics: picomatch with dot files, against the whole key. */
const glob: ReferenceModel.GlobMatcher = (pattern, key) => {
  let m = compiled.get(pattern)
  if (m === undefined) compiled.set(pattern, m = picomatch(pattern, { dot: true }))
  return m(key)
}

describe("Deletion.purge against the reference model", () => {
  it("removes exactly what the rules select, reports it, and counts it", async () => {
    await fc.assert(
      fc.asyncProperty(caseArb({ bulk: true }), async (c: Case) => {
        const r = await runCase(c, { glob })
        assert.deepStrictEqual(r.problems, [], JSON.stringify(c.filters))
      }),
      { numRuns: 45 }
    )
  }, 20_000)

  it("picks the newest keys for keepLatest, with or without olderThan", async () => {
    // keepLatest by LastModified, not by key order: keys are written in descending key order here.
    await fc.assert(
      fc.asyncProperty(caseArb({ bulk: false, keepLatest: true }), async (c: Case) => {
        const r = await runCase(c, { glob })
        assert.deepStrictEqual(r.problems, [], JSON.stringify(c.filters))
      }),
      { numRuns: 30 }
    )
  }, 20_000)
})

describe("Deletion.purge keepLatest (regression)", () => {
  it("without olderThan keeps the newest keys, not the greatest ones", async () => {
    // Found by the property above: candidates had LastModified 0 unless olderThan was set, so keepLatest kept the
    // keys that sort last and deleted the newest backup.
    const r = await runCase({
      initial: "NeverEnabled",
      bulk: undefined,
      ops: [
        { _tag: "put", key: "backups/c", size: 1, gap: 1 },
        { _tag: "put", key: "backups/b", size: 1, gap: 1 },
        { _tag: "put", key: "backups/a", size: 1, gap: 1 }
      ],
      nowGap: 10,
      filters: { prefix: "backups/", keepLatest: { count: 1 } },
      run: { listConcurrency: 1, concurrency: 1, batchSize: 1000, quiet: false, dryRun: false }
    }, { glob })
    assert.deepStrictEqual(r.problems, [])
    assert.strictEqual(r.summary?.kept, 1)
    assert.strictEqual(r.summary?.deleted, 2)
  })
})
