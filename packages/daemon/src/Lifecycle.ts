/**
 * Which retention rules COS lifecycle could run server-side, and the lifecycle configuration that would (docs/protocol.md
 * §6). Lifecycle filters by a plain key prefix and counts whole days; so a rule is equivalent only with a
 * prefix and an age in whole days, and none of: include/exclude globs, keepLatest, size bounds, a maxDeletes cap.
 *
 * Versions modes map as follows:
 * - `current`: `<Expiration><Days>` (counted from last-modified; on a versioned bucket it adds a delete marker, as
 *   our current mode does).
 * - `noncurrent`: `<NoncurrentVersionExpiration><NoncurrentDays>` (counted from when the version became noncurrent,
 *   as our noncurrent mode does).
 * - `delete-markers`: `<Expiration><ExpiredObjectDeleteMarker>true` (markers with no version left), which takes no
 *   age: only a rule without `olderThan` is equivalent.
 * - `all`: none. Lifecycle cannot permanently delete a current version in one step, and its noncurrent age counts
 *   from a different instant than a version's own last-modified time.
 *
 * Lifecycle runs asynchronously (a daily sweep whose exact rounding COS does not document), so "equivalent" means the
 * same selection, not the same instant.
 */
import * as Duration from "effect/Duration"
import type { Rule } from "./Config.js"

export type Action =
  | { readonly _tag: "Expiration"; readonly days: number }
  | { readonly _tag: "NoncurrentVersionExpiration"; readonly days: number }
  | { readonly _tag: "ExpiredObjectDeleteMarker" }

export type Verdict =
  | { readonly eligible: true; readonly action: Action; readonly summary: string }
  | { readonly eligible: false; readonly reasons: ReadonlyArray<string> }

const DAY = 86_400_000
const maxDays = 3650
const maxId = 255

/** Characters XML 1.0 cannot carry at all, even as character references. */
const notXml = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/

/** Whether COS lifecycle could do this rule's job server-side, and if so with what action; else every reason. */
export const verdict = (rule: Rule): Verdict => {
  const reasons: Array<string> = []
  if (rule.include.length > 0 || rule.exclude.length > 0) {
    reasons.push("include/exclude globs (lifecycle filters by a plain prefix only)")
  }
  if (rule.keepLatest !== undefined) reasons.push("keepLatest (lifecycle cannot keep the newest N)")
  if (rule.minSize !== undefined || rule.maxSize !== undefined) {
    reasons.push("minSize/maxSize (size bounds are not in the lifecycle COS documents for this)")
  }
  if (rule.maxDeletes !== undefined) reasons.push("maxDeletes (lifecycle has no cap)")
  if (rule.maxDeleteSize !== undefined) reasons.push("maxDeleteSize (lifecycle has no cap)")
  if (rule.newerThan !== undefined) reasons.push("newerThan (lifecycle expires everything past an age)")
  if (notXml.test(rule.prefix)) reasons.push("the prefix holds characters an XML document cannot carry")
  if (rule.name.length > maxId) reasons.push(`the rule name is longer than ${maxId} characters (lifecycle rule ID)`)
  let action: Action | undefined
  const days = rule.olderThan === undefined ? undefined : Duration.toMillis(rule.olderThan) / DAY
  const ageProblem = days === undefined
    ? "no olderThan (lifecycle expiration needs an age in days)"
    : !Number.isInteger(days) || days < 1 || days > maxDays
    ? `olderThan ${rule.olderThanText ?? Duration.format(rule.olderThan!)} is not a whole number of days from 1 to ` +
      `${maxDays}`
    : undefined
  switch (rule.versions) {
    case "current":
    case "noncurrent": {
      if (ageProblem !== undefined) reasons.push(ageProblem)
      else {
        action = rule.versions === "current"
          ? { _tag: "Expiration", days: days! }
          : { _tag: "NoncurrentVersionExpiration", days: days! }
      }
      break
    }
    case "delete-markers": {
      if (rule.olderThan !== undefined) {
        reasons.push("olderThan in delete-markers mode (lifecycle removes expired delete markers without an age)")
      } else action = { _tag: "ExpiredObjectDeleteMarker" }
      break
    }
    case "all": {
      reasons.push(
        "versions: all (lifecycle cannot delete current versions permanently in one step, and ages noncurrent " +
          "versions from when they became noncurrent)"
      )
    }
  }
  if (reasons.length > 0 || action === undefined) return { eligible: false, reasons }
  const where = rule.prefix === "" ? "the whole bucket" : `under ${JSON.stringify(rule.prefix)}`
  const summary = action._tag === "Expiration"
    ? `Expiration after ${action.days} days, ${where}`
    : action._tag === "NoncurrentVersionExpiration"
    ? `NoncurrentVersionExpiration after ${action.days} days, ${where}`
    : `ExpiredObjectDeleteMarker, ${where}`
  return { eligible: true, action, summary }
}

/** Text content escaped for XML: the five specials, and CR, LF, tab as references (a parser would normalize them). */
export const escapeXml = (text: string): string =>
  text.replace(/[&<>"'\r\n\t]/g, (c) =>
    c === "&"
      ? "&amp;"
      : c === "<"
      ? "&lt;"
      : c === ">"
      ? "&gt;"
      : c === "\""
      ? "&quot;"
      : c === "'"
      ? "&apos;"
      : `&#${c.charCodeAt(0)};`)

const actionXml = (action: Action): string =>
  action._tag === "Expiration"
    ? `    <Expiration><Days>${action.days}</Days></Expiration>`
    : action._tag === "NoncurrentVersionExpiration"
    ? `    <NoncurrentVersionExpiration><NoncurrentDays>${action.days}</NoncurrentDays></NoncurrentVersionExpiration>`
    : `    <Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>`

/** The `LifecycleConfiguration` document (for `PUT /?lifecycle` of one bucket) holding these rules. */
export const configurationXml = (
  rules: ReadonlyArray<{ readonly name: string; readonly prefix: string; readonly action: Action }>
): string =>
  [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<LifecycleConfiguration>`,
    ...rules.flatMap((r) => [
      `  <Rule>`,
      `    <ID>${escapeXml(r.name)}</ID>`,
      `    <Filter><Prefix>${escapeXml(r.prefix)}</Prefix></Filter>`,
      `    <Status>Enabled</Status>`,
      actionXml(r.action),
      `  </Rule>`
    ]),
    `</LifecycleConfiguration>`
  ].join("\n") + "\n"
