import { CosClient } from "@effect-cos/core"

/**
 * UTF-8 byte order for JavaScript strings, COS's listing order (docs/protocol.md §3): the client's own comparator,
 * so the fake and the client can never disagree on where a marker falls.
 */
export const compareUtf8: (a: string, b: string) => number = CosClient.compareKeys

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
