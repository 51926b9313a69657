/**
 * Seed operation: delete an empty "directory" object (`dir/`, what the console's "create folder" writes).
 *
 *   node --conditions=source --import tsx examples/delete-directory-object.ts reports/2024/
 *
 * A folder is just a zero-byte object whose key ends in `/`; `DELETE /dir/` removes that object and never the keys
 * under it (docs/protocol.md §7). Like the console, this refuses a folder that still holds keys: use delete-prefix.ts.
 */
import * as Effect from "effect/Effect"
import { CosClient, CosError } from "../packages/core/src/index.js"
import { args, isMain, runExample } from "./runExample.js"

export const deleteDirectoryObject = (dir: string) =>
  Effect.gen(function*() {
    const client = yield* CosClient.CosClient
    const key = dir.endsWith("/") ? dir : `${dir}/`
    const page = yield* client.listObjects({ prefix: key, maxKeys: 2 })
    const children = page.contents.filter((o) => o.key !== key)
    if (children.length > 0) {
      return yield* new CosError.CosInvalidRequest({
        operation: "deleteDirectoryObject",
        reason: `${key} is not empty (it holds ${children[0]!.key}${page.isTruncated ? " and more" : ""}); ` +
          `delete its keys first (examples/delete-prefix.ts)`
      })
    }
    const existed = page.contents.length > 0
    yield* client.deleteObject({ key })
    return { key, existed }
  })

export const main = () => runExample(deleteDirectoryObject(args("delete-directory-object.ts DIR/", 1)[0]!))

if (isMain(import.meta.url)) main()
