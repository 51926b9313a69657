/**
 * UTF-8 byte order for JavaScript strings. COS orders keys by their UTF-8 bytes (cos-api.md §3); JavaScript's `<`
 * compares UTF-16 code units, which differs only when a surrogate (an astral character) meets a code unit in
 * U+E000–U+FFFF. UTF-8 byte order equals code point order, so the first differing code unit decides, after
 * moving surrogates above U+E000–U+FFFF.
 */
export const compareUtf8 = (a: string, b: string): number => {
  if (a === b) return 0
  const n = a.length < b.length ? a.length : b.length
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // D800–DFFF (surrogates, i.e. >= U+10000) sort after E000–FFFF.
        const fx = x >= 0xe000 ? x - 0x800 : x + 0x2000
        const fy = y >= 0xe000 ? y - 0x800 : y + 0x2000
        return fx - fy
      }
      return x - y
    }
  }
  return a.length - b.length
}

/** The largest code point: no key can contain anything greater, so `p + MAX_CHAR` bounds every key under `p`. */
export const MAX_CHAR = "\u{10FFFF}"

/** Byte length of a string encoded as UTF-8 (lone surrogates count 3, like TextEncoder's U+FFFD). */
export const utf8Length = (s: string): number => {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d < 0xe000) {
        n += 4
        i++
      } else n += 3
    } else n += 3
  }
  return n
}
