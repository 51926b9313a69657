/**
 * Seed operation: delete everything under a prefix (the folder object `dir/` itself included).
 *
 *   node --conditions=source --import tsx examples/delete-prefix.ts logs/2023/ [--dry-run]
 *
 * The deletion engine lists the prefix, batches the keys by 1000 into batch deletes with several in flight, and
 * returns an exact summary (docs/protocol.md §7: there is no recursive delete on standard buckets).
 */
import * as Effect from "effect/Effect"
import { type CosClient, type CosError, Deletion } from "../packages/core/src/index.js"
import { args, isMain, runExample } from "./runExample.js"

export interface PrefixResult {
  readonly prefix: string
  readonly dryRun: boolean
  readonly listed: number
  readonly matched: number
  readonly deleted: number
  readonly failed: number
}

export const deletePrefix = (
  prefix: string,
  options: { readonly dryRun?: boolean } = {}
): Effect.Effect<PrefixResult, CosError.CosError, CosClient.CosClient> =>
  Effect.map(
    Deletion.purge({ prefix, dryRun: options.dryRun === true }),
    (s) => ({ prefix, dryRun: s.dryRun, listed: s.listed, matched: s.matched, deleted: s.deleted, failed: s.failed })
  )

export const main = () => {
  const [prefix, flag] = args("delete-prefix.ts PREFIX [--dry-run]", 1)
  runExample(deletePrefix(prefix!, { dryRun: flag === "--dry-run" }))
}

if (isMain(import.meta.url)) main()
