/**
 * Seed operation: delete up to 1000 keys in one request, with Quiet, and read the per-key results.
 *
 *   node --conditions=source --import tsx examples/batch-delete.ts [--quiet] a.txt b.txt c.txt
 *
 * `POST /?delete` answers 200 even when some keys fail: each key is named in `<Deleted>` or `<Error>` with its own
 * code (docs/protocol.md §4). With Quiet, COS names only the failures and every other key sent counts as deleted.
 */
import * as Effect from "effect/Effect"
import { CosClient } from "../packages/core/src/index.js"
import { isMain, runExample } from "./runExample.js"

export const batchDelete = (keys: ReadonlyArray<string>, options: { readonly quiet?: boolean } = {}) =>
  Effect.gen(function*() {
    const client = yield* CosClient.CosClient
    const result = yield* client.deleteObjects({ objects: keys.map((key) => ({ key })), quiet: options.quiet === true })
    return {
      deleted: result.deleted.map((d) => d.key),
      errors: result.errors.map((e) => ({ key: e.key, code: e.code, message: e.message })),
      // Keys a non-quiet reply did not mention: not confirmed deleted.
      unconfirmed: result.missing.map((m) => m.key)
    }
  })

export const main = () => {
  const rest = process.argv.slice(2)
  const quiet = rest.includes("--quiet")
  const keys = rest.filter((a) => a !== "--quiet")
  if (keys.length === 0 || keys.length > 1000) {
    console.error("usage: batch-delete.ts [--quiet] KEY... (1 to 1000 keys)")
    process.exit(2)
  }
  runExample(batchDelete(keys, { quiet }))
}

if (isMain(import.meta.url)) main()
