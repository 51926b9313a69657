/**
 * Seed operation: delete one specific version of an object (versioned buckets).
 *
 *   node --conditions=source --import tsx examples/delete-version.ts photos/cat.jpg MTg0NDUxNzgyODk2ODc1NjY0NzQ
 *
 * `DELETE /<key>?versionId=<id>` removes that version (or delete marker) for good, where a plain DELETE would only
 * add a delete marker (docs/protocol.md §4, §6). The versions of a key come from listObjectVersions.
 */
import * as Effect from "effect/Effect"
import { CosClient } from "../packages/core/src/index.js"
import { args, isMain, runExample } from "./runExample.js"

export const deleteVersion = (key: string, versionId: string) =>
  Effect.gen(function*() {
    const client = yield* CosClient.CosClient
    const result = yield* client.deleteObject({ key, versionId })
    return { key, versionId: result.versionId ?? versionId, wasDeleteMarker: result.deleteMarker }
  })

export const main = () => {
  const [key, versionId] = args("delete-version.ts KEY VERSION_ID", 2)
  runExample(deleteVersion(key!, versionId!))
}

if (isMain(import.meta.url)) main()
