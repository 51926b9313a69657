/**
 * Seed operation: delete one object.
 *
 *   COS_REGION=ap-guangzhou COS_BUCKET=examplebucket-1250000000 COS_SECRET_ID=... COS_SECRET_KEY=... \
 *     node --conditions=source --import tsx examples/delete-object.ts photos/cat.jpg
 *
 * DELETE Object answers 204 whether or not the key existed (docs/protocol.md §4), so "deleted" means "gone".
 */
import * as Effect from "effect/Effect"
import { CosClient } from "../packages/core/src/index.js"
import { args, isMain, runExample } from "./runExample.js"

export const deleteObject = (key: string) =>
  Effect.gen(function*() {
    const client = yield* CosClient.CosClient
    const result = yield* client.deleteObject({ key })
    // On a versioned bucket this only adds a delete marker (result.deleteMarker, result.versionId).
    return { key, deleteMarkerCreated: result.deleteMarker, versionId: result.versionId }
  })

export const main = () => runExample(deleteObject(args("delete-object.ts KEY", 1)[0]!))

if (isMain(import.meta.url)) main()
