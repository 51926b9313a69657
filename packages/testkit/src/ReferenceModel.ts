/**
 * A deliberately naive model of what a deletion run must do, for property tests of the deletion engine: given every
 * version of a bucket before a run, the run's filters and its start time, it says which keys or versions the rules
 * select, and checks a bucket after the run against that, naming every violation. It scans arrays and recomputes
 * everything per key: slow, short and easy to audit against the documentation of `Deletion.Filters`
 * (docs/protocol.md §6 for the versions modes).
 *
 * @since 0.1.0
 */
import type { Deletion } from "@effect-cos/core"
import * as Duration from "effect/Duration"
import type * as Store from "./Store.js"

/**
 * Glob matching as the engine documents it (see {@link globMatch}, the model's own implementation); supplied by the
 * test.
 *
 * @since 0.1.0
 * @category models
 */
export type GlobMatcher = (pattern: string, key: string) => boolean

/**
 * The identity of a version or delete marker in the model: key and version id (`"null"` for the null version).
 *
 * @since 0.1.0
 * @category models
 */
export const id = (key: string, versionId: string): string => `${key}\u0000${versionId}`

/**
 * Splits a model identity back into key and version id.
 *
 * @since 0.1.0
 * @category models
 */
export const unId = (identity: string): { readonly key: string; readonly versionId: string } => {
  const i = identity.lastIndexOf("\u0000")
  return { key: identity.slice(0, i), versionId: identity.slice(i + 1) }
}

/**
 * A selected key (current mode) or version / delete marker (other modes).
 *
 * @since 0.1.0
 * @category models
 */
export interface Selected {
  readonly key: string
  /** `undefined` in current mode (a plain DELETE of the key). */
  readonly versionId: string | undefined
  readonly lastModified: number
  readonly size: number
}

/**
 * An entry that passes every filter but `olderThan`, with whether it passes that too: `keepLatest` ranks these.
 *
 * @since 0.1.0
 * @category models
 */
export interface Ranked extends Selected {
  readonly aged: boolean
}

// Under the `u` flag only the syntax characters may be escaped.
const escapeRegExp = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")

/**
 * One path segment of a glob: `*`, `?`, `[...]` (never matching `/`), everything else literal. It walks code points
 * (`Array.from`), not UTF-16 units, and the expression is compiled with the `u` flag, so an astral character is one
 * character for `?` and for a class, as COS keys are UTF-8; a combining mark is a character of its own.
 */
const segmentSource = (seg: string): string => {
  const cs = Array.from(seg)
  let out = ""
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i]!
    if (c === "*") out += "[^/]*"
    else if (c === "?") out += "[^/]"
    else if (c === "[" && cs.indexOf("]", i + 2) > 0) {
      const end = cs.indexOf("]", i + 2)
      const body = cs.slice(i + 1, end).join("")
      out += body.startsWith("^")
        ? `[^/${body.slice(1).replace(/[\\\]]/g, "\\$&")}]`
        : `[${body.replace(/[\\\]]/g, "\\$&")}]`
      i = end
    } else out += escapeRegExp(c)
  }
  return out
}

const globCache = new Map<string, RegExp>()

/**
 * The documented glob semantics, written out independently of the engine (for the shapes the property tests use:
 * `*`, `?`, `[...]`, `**` segments; no braces or extglobs): the whole key must match; `*` is any run of characters
 * other than `/` (possibly empty), `?` one of them, `[...]` one character of the class; `**` as a whole segment is
 * any run of characters including `/` (`a/**` is `a/` then anything, `**\/b` is `b` or anything ending in `/b`).
 * Dotfiles, `.` and `..` segments and line terminators are characters like any other; a character is a code point.
 *
 * @since 0.1.0
 * @category selection
 */
export const globMatch: GlobMatcher = (pattern, key) => {
  let re = globCache.get(pattern)
  if (re === undefined) {
    const segs = pattern.split("/")
    let source = ""
    for (let i = 0; i < segs.length; i++) {
      const seg = segs[i]!
      const first = i === 0
      const last = i === segs.length - 1
      if (seg === "**") {
        // [\s\S]: every character, line terminators included.
        if (first && last) source += "[\\s\\S]*"
        else if (first) source += "(?:[\\s\\S]*/)?"
        else if (last) source += "/[\\s\\S]*"
        else source += "/(?:[\\s\\S]*/)?"
        continue
      }
      // After a `**` segment, its expression already ends with the separator.
      if (!first && segs[i - 1] !== "**") source += "/"
      source += segmentSource(seg)
    }
    globCache.set(pattern, re = new RegExp(`^${source}$`, "u"))
  }
  return re.test(key)
}

const byKey = (versions: ReadonlyArray<Store.ObjectInfo>): Map<string, Array<Store.ObjectInfo>> => {
  const out = new Map<string, Array<Store.ObjectInfo>>()
  for (const v of versions) {
    const list = out.get(v.key)
    if (list === undefined) out.set(v.key, [v])
    else list.push(v)
  }
  // Store.versions lists each key's entries newest first, as COS does: that order is kept.
  return out
}

/**
 * Whether a key passes the prefix and the include / exclude globs.
 *
 * @since 0.1.0
 * @category selection
 */
export const keyMatches = (filters: Deletion.Filters, key: string, glob?: GlobMatcher): boolean => {
  if (!key.startsWith(filters.prefix)) return false
  const include = filters.include ?? []
  const exclude = filters.exclude ?? []
  if ((include.length > 0 || exclude.length > 0) && glob === undefined) {
    throw new Error("ReferenceModel: filters with globs need a GlobMatcher")
  }
  if (include.length > 0 && !include.some((p) => glob!(p, key))) return false
  if (exclude.some((p) => glob!(p, key))) return false
  return true
}

/**
 * Every entry that passes the filters other than the age window (the prefix, globs, sizes and the versions mode),
 * with whether it is also inside the window (strictly before `olderThan`'s bound, strictly after `newerThan`'s): in `current` mode the visible objects (latest entry not a delete marker); in
 * `all` every version and marker; in `noncurrent` the versions that are not latest, aged for `olderThan` from the
 * moment the next newer entry was written and for `newerThan` from their own LastModified; in `delete-markers` the markers of keys that have no version at all. Size bounds are inclusive and apply to versions, not markers. `keepLatest` ranks
 * these entries, whatever their age.
 *
 * @since 0.1.0
 * @category selection
 */
export const rank = (
  versions: ReadonlyArray<Store.ObjectInfo>,
  filters: Deletion.Filters,
  now: number,
  glob?: GlobMatcher
): Array<Ranked> => {
  // The model reads a duration or a date only: text is the engine's parser's business, not the model's.
  const instant = (bound: Deletion.Filters["olderThan"], absent: number): number => {
    if (bound === undefined) return absent
    if (bound instanceof Date) return bound.getTime()
    if (typeof bound === "string" && !/^\d+(\.\d+)? (milli|second|minute|hour|day|week)s?$/.test(bound)) {
      throw new Error(`ReferenceModel: give olderThan/newerThan as a Duration or a Date, not "${bound}"`)
    }
    return now - Duration.toMillis(Duration.decode(bound as Duration.DurationInput))
  }
  const cutoff = instant(filters.olderThan, Infinity)
  const floor = instant(filters.newerThan, -Infinity)
  const sizeOk = (size: number) =>
    (filters.minSize === undefined || size >= filters.minSize) &&
    (filters.maxSize === undefined || size <= filters.maxSize)
  const mode = filters.versions ?? "current"
  const out: Array<Ranked> = []
  // `olderFrom` is compared with olderThan's bound, `newerFrom` with newerThan's (the same instant but in noncurrent
  // mode, where newerThan counts from the version's own LastModified: see below)
  const entry = (
    v: Store.ObjectInfo,
    versionId: string | undefined,
    olderFrom: number,
    newerFrom = olderFrom
  ): Ranked => ({
    key: v.key,
    versionId,
    lastModified: v.lastModified.getTime(),
    size: v.isDeleteMarker ? 0 : v.size,
    aged: olderFrom < cutoff && newerFrom > floor
  })
  for (const [key, list] of byKey(versions)) {
    if (!keyMatches(filters, key, glob)) continue
    const latest = list[0]!
    switch (mode) {
      case "current":
        if (!latest.isDeleteMarker && sizeOk(latest.size)) {
          out.push(entry(latest, undefined, latest.lastModified.getTime()))
        }
        break
      case "all":
        for (const v of list) {
          if (v.isDeleteMarker || sizeOk(v.size)) out.push(entry(v, v.versionId, v.lastModified.getTime()))
        }
        break
      case "noncurrent":
        for (let i = 1; i < list.length; i++) {
          const v = list[i]!
          // noncurrent since the next newer entry was written, at the latest (an earlier run may have deleted the
          // real successor): olderThan counts from that entry, newerThan from the version itself, so that neither
          // can select a version whose real noncurrent time is outside the window
          if (!v.isDeleteMarker && sizeOk(v.size)) {
            out.push(entry(v, v.versionId, list[i - 1]!.lastModified.getTime(), v.lastModified.getTime()))
          }
        }
        break
      case "delete-markers":
        if (list.every((v) => v.isDeleteMarker)) {
          for (const v of list) out.push(entry(v, v.versionId, v.lastModified.getTime()))
        }
        break
    }
  }
  return out
}

/**
 * What the filters select before `keepLatest`: the entries of {@link rank} that pass `olderThan` too.
 *
 * @since 0.1.0
 * @category selection
 */
export const select = (
  versions: ReadonlyArray<Store.ObjectInfo>,
  filters: Deletion.Filters,
  now: number,
  glob?: GlobMatcher
): Array<Selected> => rank(versions, filters, now, glob).filter((r) => r.aged).map(({ aged: _, ...s }) => s)

const regexps = new Map<string, RegExp>()

/**
 * The `keepLatest` group of a key: the first capture group of `groupBy` (or its whole match); keys it does not
 * match, and every key without `groupBy`, share one group.
 *
 * @since 0.1.0
 * @category selection
 */
export const group = (keepLatest: Deletion.Filters["keepLatest"], key: string): string => {
  if (keepLatest?.groupBy === undefined) return ""
  let re = regexps.get(keepLatest.groupBy)
  if (re === undefined) regexps.set(keepLatest.groupBy, re = new RegExp(keepLatest.groupBy))
  const m = re.exec(key)
  return m === null ? "" : "\u0001" + (m[1] ?? m[0])
}

const selectedId = (s: Selected) => (s.versionId === undefined ? s.key : id(s.key, s.versionId))

/**
 * Checks a run's effect on a bucket: `before` and `after` are `Store.versions` of the whole bucket, `removed` the
 * identities the run took away (keys in current mode, `id(key, versionId)` otherwise), computed from `before` and
 * `after` by {@link removedBy}. Returns every violation found, empty when the run did exactly what the rules say:
 * - nothing outside the selection was touched, and in current mode no version was destroyed on a versioned bucket
 *   (a delete there only adds markers);
 * - everything selected was removed, except that `keepLatest` keeps, per group, the newest `count` of the entries
 *   that pass every filter but `olderThan` ({@link rank}), whatever their age (ties in LastModified may go either
 *   way): so with olderThan, only entries both outside the newest `count` and older than the cutoff go.
 * With `complete: false` (a run that may have given up on some keys) the second rule becomes: what was removed is
 * a subset of the selection, and `keepLatest` never let an entry among the newest `count` of its group go.
 *
 * @since 0.1.0
 * @category checks
 */
export const check = (options: {
  readonly before: ReadonlyArray<Store.ObjectInfo>
  readonly after: ReadonlyArray<Store.ObjectInfo>
  readonly filters: Deletion.Filters
  readonly now: number
  readonly versioning: Store.VersioningState
  readonly glob?: GlobMatcher | undefined
  readonly complete?: boolean | undefined
}): Array<string> => {
  const { after, before, filters } = options
  const problems: Array<string> = []
  const show = (s: string) => JSON.stringify(s)
  const ranked = rank(before, filters, options.now, options.glob)
  const selectedIds = new Map(ranked.filter((s) => s.aged).map((s) => [selectedId(s), s]))
  const removed = removedBy(before, after, filters.versions ?? "current")
  for (const r of removed) {
    if (!selectedIds.has(r)) problems.push(`removed but not selected by the rules: ${show(r)}`)
  }
  const complete = options.complete ?? true
  // keepLatest, per group: the newest `keep` ranked entries (aged or not) stay; ranked entries outside them go if
  // aged, stay if not.
  const groups = new Map<string, Array<Ranked>>()
  for (const s of ranked) {
    const g = group(filters.keepLatest, s.key)
    const list = groups.get(g)
    if (list === undefined) groups.set(g, [s])
    else list.push(s)
  }
  const keep = filters.keepLatest !== undefined && filters.keepLatest.count > 0 ? filters.keepLatest.count : 0
  for (const [g, list] of groups) {
    // T: LastModified of the keep-th newest ranked entry. Newer ones must stay; older aged ones must go.
    const times = list.map((s) => s.lastModified).sort((x, y) => y - x)
    const t = keep === 0 ? Infinity : keep >= times.length ? -Infinity : times[keep - 1]!
    let newer = 0
    const tied: Array<Ranked> = []
    for (const s of list) {
      const gone = removed.has(selectedId(s))
      if (s.lastModified > t) newer++
      if (s.lastModified === t) tied.push(s)
      if (gone && s.lastModified > t) {
        problems.push(`group ${show(g)}: ${show(selectedId(s))} is among the ${keep} newest but was removed`)
      }
      if (complete && !gone && s.aged && s.lastModified < t) {
        problems.push(`selected but not removed: ${show(selectedId(s))}`)
      }
    }
    if (complete && tied.length > 0) {
      // Entries sharing the keep-th newest time: `keep - newer` of them are kept (which ones is free), the others
      // go if aged.
      const slots = keep - newer
      const stayed = tied.filter((s) => !removed.has(selectedId(s))).length
      const young = tied.filter((s) => !s.aged).length
      const least = Math.max(slots, young)
      const most = Math.min(tied.length, slots + young)
      if (stayed < least || stayed > most) {
        problems.push(
          `group ${show(g)}: ${stayed} of ${tied.length} entries at the ${keep}-th newest time stayed, expected ` +
            `${least}..${most} (keepLatest ${keep})`
        )
      }
    }
  }
  problems.push(...untouched(before, after, removed, filters.versions ?? "current", options.versioning))
  return problems
}

/**
 * What a run removed: in current mode the keys visible before and not after; otherwise the version identities
 * present before and not after.
 *
 * @since 0.1.0
 * @category checks
 */
export const removedBy = (
  before: ReadonlyArray<Store.ObjectInfo>,
  after: ReadonlyArray<Store.ObjectInfo>,
  mode: Deletion.VersionsMode
): Set<string> => {
  const out = new Set<string>()
  if (mode === "current") {
    const visible = (vs: ReadonlyArray<Store.ObjectInfo>) =>
      new Set(vs.filter((v) => v.isLatest && !v.isDeleteMarker).map((v) => v.key))
    const a = visible(after)
    for (const k of visible(before)) if (!a.has(k)) out.add(k)
    return out
  }
  const a = new Set(after.map((v) => id(v.key, v.versionId)))
  for (const v of before) {
    const i = id(v.key, v.versionId)
    if (!a.has(i)) out.add(i)
  }
  return out
}

/** Keys and versions the run had no business changing are exactly as before. */
const untouched = (
  before: ReadonlyArray<Store.ObjectInfo>,
  after: ReadonlyArray<Store.ObjectInfo>,
  removed: ReadonlySet<string>,
  mode: Deletion.VersionsMode,
  versioning: Store.VersioningState
): Array<string> => {
  const problems: Array<string> = []
  const b = byKey(before)
  const a = byKey(after)
  const ids = (list: ReadonlyArray<Store.ObjectInfo> | undefined) =>
    (list ?? []).map((v) => id(v.key, v.versionId) + (v.isDeleteMarker ? " (marker)" : ""))
  for (const key of new Set([...b.keys(), ...a.keys()])) {
    const was = ids(b.get(key))
    const is = ids(a.get(key))
    if (mode === "current" && removed.has(key)) {
      // A plain DELETE: gone (never versioned), or a delete marker on top with every earlier version kept
      // (Suspended: except the null version, which the null marker replaces) (docs/protocol.md §4, §6).
      const now = a.get(key) ?? []
      if (versioning === "NeverEnabled") {
        if (now.length > 0) problems.push(`${JSON.stringify(key)}: still has entries after a plain delete`)
        continue
      }
      if (now.length === 0 || !now[0]!.isDeleteMarker) {
        problems.push(`${JSON.stringify(key)}: a delete on a versioned bucket must leave a delete marker on top`)
      }
      const kept = new Set(is)
      for (const v of b.get(key) ?? []) {
        if (v.versionId === "null") continue
        const i = id(v.key, v.versionId) + (v.isDeleteMarker ? " (marker)" : "")
        if (!kept.has(i)) problems.push(`${JSON.stringify(key)}: current mode destroyed version ${i}`)
      }
      for (const v of now) {
        if (!v.isDeleteMarker && !(b.get(key) ?? []).some((w) => w.versionId === v.versionId)) {
          problems.push(`${JSON.stringify(key)}: a version appeared during the run`)
        }
      }
      continue
    }
    if (mode === "current") {
      if (JSON.stringify(was) !== JSON.stringify(is)) {
        problems.push(`${JSON.stringify(key)}: changed though not removed: ${was.join(",")} -> ${is.join(",")}`)
      }
      continue
    }
    // Versions modes: after = before minus the removed identities, nothing added.
    const expected = (b.get(key) ?? []).filter((v) => !removed.has(id(v.key, v.versionId)))
    if (JSON.stringify(ids(expected)) !== JSON.stringify(is)) {
      problems.push(`${JSON.stringify(key)}: expected ${ids(expected).join(",")} got ${is.join(",")}`)
    }
  }
  return problems
}
