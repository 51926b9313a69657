import picomatch from "picomatch"

/*
 * Include/exclude globs match the whole key, and every character of a key is matched like any other: a retention
 * tool must never delete a key that an exclude names. picomatch (even with `dot: true`) refuses to let `*` and `**`
 * match `.` and `..` segments, its wildcards compile to `.`, which stops at line terminators (\n, \r, U+2028,
 * U+2029), all of which are legal in COS keys (docs/protocol.md §1), and it lets a trailing `*` swallow a final `/`.
 * So picomatch compiles the pattern with `dot: true` (dotfiles), `strictSlashes` (no optional trailing `/`) and
 * `literalBrackets: false` (`[ab]` is a character class, not also the text "[ab]"); the guards it still emits are
 * removed from the source, and the expression runs with the `s` (dotAll) flag. The result:
 * - the whole key is matched;
 * - `*` is any run of characters other than `/` (possibly empty), `?` one such character, `[...]` one character of
 *   the class (never `/`);
 * - `**` as a whole segment is any run of characters, `/` included (`a/**` also matches `a`, `**\/b` also `b`);
 * - dotfiles, `.`/`..` segments, line terminators and every other character are matched like any character.
 */

// The lookaheads picomatch 4 emits (lib/constants.js: NO_DOTS, NO_DOTS_SLASH, NO_DOT_SLASH, ONE_CHAR). Each is a
// zero-width assertion on its own, so removing it leaves a valid expression that only matches more keys.
const guards = [
  "(?!(?:^|\\/)\\.{1,2}(?:\\/|$))",
  "(?!\\.{1,2}(?:\\/|$))",
  "(?!\\.{0,1}(?:\\/|$))",
  "(?=.)"
]

/** A glob as a regular expression over the whole key. Throws on a pattern picomatch cannot compile. */
export const globRegExp = (pattern: string): RegExp => {
  let source = picomatch.makeRe(pattern, { dot: true, strictSlashes: true, literalBrackets: false }).source
  for (const g of guards) source = source.split(g).join("")
  return new RegExp(source, "s")
}

/** Whether a key matches any of the globs. */
export const anyGlob = (patterns: ReadonlyArray<string>): (key: string) => boolean => {
  const res = patterns.map(globRegExp)
  return (key) => {
    for (let i = 0; i < res.length; i++) if (res[i]!.test(key)) return true
    return false
  }
}
