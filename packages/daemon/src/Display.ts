/**
 * How human-readable output (tables, summaries, samples) writes a COS key. A key may hold any character, including
 * ones a terminal acts on instead of showing; keys are printed through `displayKey`, never raw. Machine-readable
 * output (`--json`, JSON lines, CSV) carries keys exactly and does not use it.
 */

/**
 * Characters a terminal would act on or reorder rather than show: C0 and C1 controls (line breaks, escape sequences),
 * DEL, the line and paragraph separators, and the bidirectional embeddings, overrides and isolates.
 */
const invisible = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
const invisibleAll = new RegExp(invisible.source, "g")

/** `text` in double quotes, written as JSON writes a string, with every invisible character as an escape. */
export const quote = (text: string): string =>
  JSON.stringify(text).replace(invisibleAll, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/**
 * A key as human-readable output (tables, summaries, samples) shows it: as is, or JSON-quoted when it holds such
 * characters, edge whitespace or nothing at all, with every such character written as an escape (`\r`, `\u001b`,
 * `\u202e`), so what is printed can neither move the cursor nor hide or reorder part of the key.
 */
export const displayKey = (key: string): string =>
  invisible.test(key) || /^\s|\s$/.test(key) || key === "" ? quote(key) : key
