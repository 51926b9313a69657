/**
 * The filters compiled to plain predicates, and keepLatest's grouping and ranking. Pure and synchronous.
 *
 * @internal
 */
import * as Either from "effect/Either"
import type { CosInvalidRequest } from "../../CosError.js"
import type * as Deletion from "../../Deletion.js"
import * as Units from "../../Units.js"
import { anyGlob } from "../glob.js"
import { invalid } from "./options.js"
import type { Cand } from "./segments.js"

/** @internal */
export interface Predicates {
  readonly key: (key: string) => boolean
  /** Last-modified cutoff in ms (keys strictly older match), or undefined. */
  readonly cutoff: number | undefined
  /** `newerThan`'s bound in ms (keys strictly newer match), or undefined. */
  readonly floor: number | undefined
  readonly minSize: number | undefined
  readonly maxSize: number | undefined
}

/** @internal */
export const compileFilters = (filters: Deletion.Filters, now: number): Predicates => {
  const include = filters.include !== undefined && filters.include.length > 0 ? anyGlob(filters.include) : undefined
  const exclude = filters.exclude !== undefined && filters.exclude.length > 0 ? anyGlob(filters.exclude) : undefined
  const key = include === undefined && exclude === undefined
    ? () => true
    : (k: string) => (include === undefined || include(k)) && (exclude === undefined || !exclude(k))
  return {
    key,
    cutoff: bound("olderThan", filters.olderThan, now),
    floor: bound("newerThan", filters.newerThan, now),
    minSize: filters.minSize,
    maxSize: filters.maxSize
  }
}

/** An age bound in ms; a value no form accepts throws (`purge` refuses it before, with the reason). */
const bound = (name: string, value: Deletion.Filters["olderThan"], now: number): number | undefined => {
  if (value === undefined) return undefined
  const at = Units.boundAt(value, now)
  if (at === undefined) throw new TypeError(`${name} is not a duration or a date: ${String(value)}`)
  return at
}

/** Whether a last-modified (or initiated) instant is inside the age window. @internal */
export const ageOk = (p: Predicates, t: number) =>
  (p.cutoff === undefined || t < p.cutoff) && (p.floor === undefined || t > p.floor)

/** @internal */
export const sizeOk = (p: Predicates, size: number) =>
  (p.minSize === undefined || size >= p.minSize) && (p.maxSize === undefined || size <= p.maxSize)

/** @internal */
export const matcher = (filters: Deletion.Filters, now: number): Deletion.Matcher => {
  const p = compileFilters(filters, now)
  const prefix = filters.prefix
  const mode = filters.versions ?? "current"
  const keyOk = (k: string) => k.startsWith(prefix) && p.key(k)
  return {
    key: keyOk,
    object: (o) => keyOk(o.key) && ageOk(p, o.lastModified.getTime()) && sizeOk(p, o.size),
    version: (v, context) => {
      if (!keyOk(v.key)) return false
      switch (mode) {
        case "current":
          return v.isLatest && v._tag === "Version" &&
            ageOk(p, v.lastModified.getTime()) && sizeOk(p, v.size)
        case "all":
          return ageOk(p, v.lastModified.getTime()) &&
            (v._tag === "DeleteMarker" || sizeOk(p, v.size))
        case "noncurrent": {
          if (v._tag !== "Version" || v.isLatest) return false
          // When it became noncurrent is known only as a range: after its own LastModified, and at the latest when
          // the next newer entry listed now was written (an earlier run may have deleted the entries in between, so
          // that one can be later than the real successor). Each bound is read from the end of the range that can
          // only understate its age on that side: olderThan from the next newer entry (never older than it really
          // is), newerThan from the version's own LastModified (never younger than it really is). Either way a
          // version is selected only if its real noncurrent time is inside the window, whatever was deleted before.
          const since = context?.noncurrentSince?.getTime() ?? now
          return (p.cutoff === undefined || since < p.cutoff) &&
            (p.floor === undefined || v.lastModified.getTime() > p.floor) && sizeOk(p, v.size)
        }
        case "delete-markers":
          return v._tag === "DeleteMarker" && context?.keyHasVersions === false &&
            ageOk(p, v.lastModified.getTime())
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// keepLatest
// ---------------------------------------------------------------------------------------------------------------

/** @internal */
export interface KeepLatest {
  readonly count: number
  readonly group: (key: string) => string
  readonly heaps: Map<string, Array<Cand>>
}

/** @internal */
export const newer = (a: Cand, b: Cand) =>
  a.lastModified > b.lastModified || (a.lastModified === b.lastModified && a.key > b.key)

/** Inserts into a heap sorted newest first. @internal */
export const insertNewestFirst = (heap: Array<Cand>, c: Cand) => {
  let i = heap.length
  heap.push(c)
  while (i > 0 && newer(c, heap[i - 1]!)) {
    heap[i] = heap[i - 1]!
    i--
  }
  heap[i] = c
}

/**
 * keepLatest's state: undefined when nothing is kept; a `CosInvalidRequest` for a `groupBy` that does not compile.
 *
 * @internal
 */
export const makeKeepLatest = (
  k: Deletion.Filters["keepLatest"]
): Either.Either<KeepLatest | undefined, CosInvalidRequest> => {
  if (k === undefined || !(k.count > 0)) return Either.right(undefined)
  const groupBy = k.groupBy
  if (groupBy === undefined) return Either.right({ count: k.count, group: () => "", heaps: new Map() })
  let re: RegExp
  try {
    re = new RegExp(groupBy)
  } catch (e) {
    return Either.left(invalid(`keepLatest.groupBy is not a valid regular expression: ${(e as Error).message}`))
  }
  return Either.right({
    count: k.count,
    // Keys the expression does not match share one group: they are still protected.
    group: (key) => {
      const m = re.exec(key)
      return m === null ? "" : "\u0001" + (m[1] ?? m[0])
    },
    heaps: new Map()
  })
}
