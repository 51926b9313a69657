/**
 * The one pagination rule of every listing (the client's streams, the parallel lister, the engine's versions
 * source): a page that is not truncated is the last; a truncated page names the next marker (COS sends it whenever
 * truncated, docs/protocol.md §3; the page's last entry is the fallback), and the marker must advance. A page that breaks
 * the rule is a `CosDecodeError`: stopping there would silently skip the rest, and asking again would loop forever.
 *
 * @internal
 */
import * as Either from "effect/Either"
import { CosDecodeError } from "../CosError.js"
import { compareUtf8 } from "./keys.js"

const broken = (operation: string, detail: string) =>
  Either.left(new CosDecodeError({ operation, status: 200, detail, bodySnippet: "" }))

/** The end of a listing. @internal */
export const end: Either.Either<undefined, never> = Either.right(undefined)

/**
 * The marker for the page after `page`, asked for with `marker`: `undefined` at the end.
 *
 * @internal
 */
export const nextMarker = (
  operation: string,
  page: {
    readonly isTruncated: boolean
    readonly nextMarker?: string | undefined
    readonly contents: ReadonlyArray<{ readonly key: string }>
  },
  marker: string | undefined
): Either.Either<string | undefined, CosDecodeError> => {
  if (!page.isTruncated) return end
  const next = page.nextMarker ?? page.contents[page.contents.length - 1]?.key
  if (next === undefined) return broken(operation, "a truncated page without NextMarker or keys")
  if (marker !== undefined && compareUtf8(next, marker) <= 0) {
    return broken(operation, `NextMarker ${JSON.stringify(next)} does not advance past ${JSON.stringify(marker)}`)
  }
  return Either.right(next)
}

/** @internal */
export interface VersionsCursor {
  readonly keyMarker: string | undefined
  readonly versionIdMarker: string | undefined
}

/**
 * The cursor for the page of versions after `page`, asked for with `cursor`: `undefined` at the end. Without
 * `NextKeyMarker`, the last entry listed is the marker (key and version id). The key marker must not go back, and
 * on the same key the version id marker must change.
 *
 * @internal
 */
export const nextVersionsCursor = (
  operation: string,
  page: {
    readonly isTruncated: boolean
    readonly nextKeyMarker?: string | undefined
    readonly nextVersionIdMarker?: string | undefined
    readonly versions: ReadonlyArray<{ readonly key: string; readonly versionId: string }>
  },
  cursor: VersionsCursor
): Either.Either<VersionsCursor | undefined, CosDecodeError> => {
  if (!page.isTruncated) return end
  const last = page.versions[page.versions.length - 1]
  const keyMarker = page.nextKeyMarker ?? last?.key
  const versionIdMarker = page.nextKeyMarker !== undefined ? page.nextVersionIdMarker : last?.versionId
  if (keyMarker === undefined) return broken(operation, "a truncated page without NextKeyMarker or entries")
  const prev = cursor.keyMarker ?? ""
  const order = compareUtf8(keyMarker, prev)
  if (order < 0 || (order === 0 && versionIdMarker === cursor.versionIdMarker)) {
    return broken(
      operation,
      `NextKeyMarker ${JSON.stringify(keyMarker)} / NextVersionIdMarker ${JSON.stringify(versionIdMarker)} ` +
        `do not advance past ${JSON.stringify(prev)} / ${JSON.stringify(cursor.versionIdMarker)}`
    )
  }
  return Either.right({ keyMarker, versionIdMarker })
}

/** @internal */
export interface UploadsCursor {
  readonly keyMarker: string
  readonly uploadIdMarker: string
}

/**
 * The cursor for the page of incomplete uploads after `page`, asked for with `cursor`: `undefined` at the end. A
 * truncated page must name both NextKeyMarker and NextUploadIdMarker, after the markers sent (docs/protocol.md
 * "Multipart uploads", paging): a key marker alone would skip the rest of that key's uploads, a marker that stands
 * still would loop.
 *
 * @internal
 */
export const nextUploadsCursor = (
  operation: string,
  page: {
    readonly isTruncated: boolean
    readonly nextKeyMarker?: string | undefined
    readonly nextUploadIdMarker?: string | undefined
  },
  cursor: UploadsCursor
): Either.Either<UploadsCursor | undefined, CosDecodeError> => {
  if (!page.isTruncated) return end
  const keyMarker = page.nextKeyMarker
  const uploadIdMarker = page.nextUploadIdMarker
  if (keyMarker === undefined || keyMarker === "" || uploadIdMarker === undefined || uploadIdMarker === "") {
    return broken(operation, "a truncated page without NextKeyMarker and NextUploadIdMarker")
  }
  const c = compareUtf8(keyMarker, cursor.keyMarker)
  if (c < 0 || (c === 0 && uploadIdMarker <= cursor.uploadIdMarker)) {
    return broken(
      operation,
      `NextKeyMarker ${JSON.stringify(keyMarker)} / NextUploadIdMarker ${JSON.stringify(uploadIdMarker)} do not ` +
        `advance past ${JSON.stringify(cursor.keyMarker)} / ${JSON.stringify(cursor.uploadIdMarker)}`
    )
  }
  return Either.right({ keyMarker, uploadIdMarker })
}
