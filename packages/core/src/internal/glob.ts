import picomatch from "picomatch"

/*
 * Include/exclude globs match the whole key, and every character of a key is matched like any other: a retention
 * tool must never delete a key that an exclude names. picomatch (even with `dot: true`) refuses to let `*` and `**`
 * match `.` and `..` segments, its wildcards compile to `.`, which stops at line terminators (\n, \r, U+2028,
 * U+2029), all of which are legal in COS keys (docs/protocol.md §1), and it lets a trailing `*` swallow a final `/`.
 * So picomatch compiles the pattern with `dot: true` (dotfiles), `strictSlashes` (no optional trailing `/`) and
 * `literalBrackets: false` (`[ab]` is a character class, not also the text "[ab]"); the guards it still emits are
 * removed from the source, and the expression runs with the `s` (dotAll) and `u` (code points) flags. The result:
 * - the whole key is matched;
 * - `*` is any run of characters other than `/` (possibly empty), `?` one such character, `[...]` one character of
 *   the class (never `/`);
 * - a character is a code point, as COS keys are UTF-8: `?` and `[😀]` match an astral character (one code point,
 *   two UTF-16 units), and a combining mark is a character of its own;
 * - `**` as a whole segment is zero or more whole segments: `a/**` is `a/` then anything, `**\/b` is `b` or anything
 *   ending in `/b`, `a/**\/b` is `a/b` or `a/.../b`. `a/**\/*` does not match the key `a` (picomatch lets it: after
 *   `a/**\/` it also accepts the end of the key, so a rule with `include: [logs/**\/*]` would have deleted the key
 *   `logs` itself; that alternative is removed);
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

// After `x/**/` with more pattern to follow, picomatch 4 emits `(?:\/<any>\/|\/|$)` (lib/parse.js, the globstar
// branch with `end = '|$'`): the `$` lets `a/**/*` match the key `a`. Removing that one alternative leaves `a/` plus
// zero or more segments, as documented; it can only make the expression match fewer keys, and only keys without the
// `/` the pattern writes. A literal `$` in a glob is escaped (`\$`), so it is never this text.
const globstarEnd = "\\/|\\/|$)"
const globstarNoEnd = "\\/|\\/)"

/** Characters an escape keeps meaning under the `u` flag: the syntax characters. */
const syntax = "^$\\.*+?()[]{}|/"
/** Escapes that mean the same with and without `u` (outside a class). */
const sameOutside = "bBdDsSwWfnrtv"
/** The same inside a class (`\b` is a backspace there; `\B` is not an escape). */
const sameInside = "bdDsSwWfnrtv"
const hex = (s: string) => /^[0-9a-fA-F]+$/.test(s)

/**
 * picomatch writes expressions for the `u`-less dialect, where `\-`, `\ `, `\@`, `\é` (every escaped character) and
 * a lone `{`, `}` or `]` are literals; under `u` they are syntax errors. This rewrites such a source into the same
 * expression for the `u` flag: identity escapes become the character itself, lone braces and brackets are escaped,
 * everything else is kept. A backslash before a digit (`\1`) is its digit, as a glob escape means.
 */
const forUnicode = (source: string): string => {
  let out = ""
  let inClass = false
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!
    if (c === "\\") {
      const n = source[i + 1]
      if (n === undefined) {
        out += "\\\\"
        continue
      }
      i++
      if (syntax.includes(n) || (inClass && n === "-")) out += "\\" + n
      else if ((inClass ? sameInside : sameOutside).includes(n)) out += "\\" + n
      else if (n === "x" && hex(source.slice(i + 1, i + 3)) && source.slice(i + 1, i + 3).length === 2) {
        out += "\\x" + source.slice(i + 1, i + 3)
        i += 2
      } else if (n === "u" && hex(source.slice(i + 1, i + 5)) && source.slice(i + 1, i + 5).length === 4) {
        out += "\\u" + source.slice(i + 1, i + 5)
        i += 4
      } else if (n === "c" && /^[A-Za-z]$/.test(source[i + 1] ?? "")) {
        out += "\\c" + source[i + 1]
        i++
      } else if (n === "0" && !/^[0-9]$/.test(source[i + 1] ?? "")) out += "\\x00"
      else if (n === "c") out += "\\\\c"
      else out += n // an identity escape: the character itself (never special where it lands)
      continue
    }
    if (inClass) {
      if (c === "]") inClass = false
      out += c
      continue
    }
    if (c === "[") {
      inClass = true
      out += c
      // A `^` right after `[` negates the class (in both dialects).
      if (source[i + 1] === "^") out += source[++i]
      continue
    }
    if (c === "{") {
      const q = /^\{\d+(?:,\d*)?\}/.exec(source.slice(i))
      if (q !== null) {
        out += q[0]
        i += q[0].length - 1
      } else out += "\\{"
      continue
    }
    if (c === "}" || c === "]") {
      out += "\\" + c
      continue
    }
    out += c
  }
  return out
}

const options = { dot: true, strictSlashes: true, literalBrackets: false }

/**
 * A glob as a regular expression over the whole key. Throws on a pattern that cannot be compiled (an empty one, an
 * unclosed group, a range out of order such as `[z-a]`): picomatch would answer those with an expression that
 * matches nothing, which for an exclude means deleting what it names.
 */
export const globRegExp = (pattern: string): RegExp => {
  // picomatch's own state (`makeRe(..., returnState)`), so that its `u`-less compile (which fails on an astral range
  // like `[😀-😂]` and then matches nothing) is not the one used. The wrapping is picomatch's compileRe.
  const state = (picomatch.makeRe(pattern, options, false, true) as RegExp & {
    readonly state: { readonly output: string; readonly negated: boolean }
  }).state
  let source = `^(?:${state.output})$`
  if (state.negated) source = `^(?!${source}).*$`
  for (const g of guards) source = source.split(g).join("")
  source = source.split(globstarEnd).join(globstarNoEnd)
  try {
    return new RegExp(forUnicode(source), "su")
  } catch (e) {
    const reason = String((e as Error).message).replace(/^Invalid regular expression: \/.*\/su: /s, "")
    throw new Error(
      `it does not compile (${reason.toLowerCase()}): an unclosed ( { or [, a range out of order, or a trailing \\? ` +
        `Escape a literal character with \\`
    )
  }
}

/** Why a glob cannot be used, or undefined when it can. */
export const globProblem = (pattern: string): string | undefined => {
  if (pattern === "") return "an empty glob matches no key"
  try {
    globRegExp(pattern)
    return undefined
  } catch (e) {
    return (e as Error).message
  }
}

/** Whether a key matches any of the globs. */
export const anyGlob = (patterns: ReadonlyArray<string>): (key: string) => boolean => {
  const res = patterns.map(globRegExp)
  return (key) => {
    for (let i = 0; i < res.length; i++) if (res[i]!.test(key)) return true
    return false
  }
}
