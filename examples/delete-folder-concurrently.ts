/**
 * Seed operation: delete a folder with bounded concurrency (the seed used a thread pool of single deletes).
 *
 *   node --conditions=source --import tsx examples/delete-folder-concurrently.ts media/tmp/ 4
 *
 * Here the folder's listing is a stream of keys handed to the deletion engine, which sends them in batches of up
 * to 1000 with at most `concurrency` batches in flight: the pool's bound, with 1000 times fewer requests. Every key
 * is accounted for in the summary.
 */
import * as Effect from "effect/Effect"
import { CosClient, type CosError, Deletion } from "../packages/core/src/index.js"
import { args, isMain, runExample } from "./runExample.js"

export interface FolderResult {
  readonly folder: string
  readonly deleted: number
  readonly failed: number
  readonly requests: number
}

export const deleteFolderConcurrently = (
  folder: string,
  concurrency: number
): Effect.Effect<FolderResult, CosError.CosError, CosClient.CosClient> =>
  Effect.gen(function*() {
    const client = yield* CosClient.CosClient
    const prefix = folder.endsWith("/") ? folder : `${folder}/`
    const summary = yield* Deletion.deleteKeys(client.listObjectsStream({ prefix }), { concurrency })
    return { folder: prefix, deleted: summary.deleted, failed: summary.failed, requests: summary.requests }
  })

export const main = () => {
  const [folder, concurrency] = args("delete-folder-concurrently.ts FOLDER/ [CONCURRENCY]", 1)
  runExample(deleteFolderConcurrently(folder!, Number(concurrency ?? "4")))
}

if (isMain(import.meta.url)) main()
