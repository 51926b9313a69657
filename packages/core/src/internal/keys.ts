/**
 * Names checked before anything is sent: regions, buckets, keys (docs/protocol.md §1), and the UTF-8 byte order COS
 * lists keys in.
 *
 * @internal
 */

const regionPattern = /^[a-z\d-]+$/
const bucketPattern = /^([a-z\d-]+)-(\d+)$/

/**
 * Scans for lone surrogates (which cannot be encoded as UTF-8: encodeURIComponent throws on them) and, with `xml`,
 * for characters that cannot travel in an XML 1.0 document (control characters other than tab, LF and CR; U+FFFE,
 * U+FFFF) plus CR and LF themselves: an XML parser normalises line ends, so COS would read another key.
 * A loop rather than a regular expression: it runs for every key of every batch.
 */
const scan = (s: string, xml: boolean): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20) {
      if (xml && c !== 0x09) return false
    } else if (c >= 0xD800) {
      if (c <= 0xDBFF) {
        const next = s.charCodeAt(i + 1)
        if (!(next >= 0xDC00 && next <= 0xDFFF)) return false
        i++
      } else if (c <= 0xDFFF) {
        return false
      } else if (xml && c >= 0xFFFE) {
        return false
      }
    }
  }
  return true
}

/** @internal */
export const isWellFormed = (s: string): boolean => scan(s, false)

/** @internal */
export const isXmlSafeKey = (key: string): boolean => scan(key, true)

/** @internal */
export const cosHost = (bucket: string, region: string): string => `${bucket}.cos.${region}.myqcloud.com`

/** The whole virtual host name is capped at 60 characters (docs/protocol.md §1). */
const maxHostLength = 60

/** @internal */
export const regionProblem = (region: string): string | undefined =>
  regionPattern.test(region)
    ? undefined
    : `invalid region ${JSON.stringify(region)}: expected lower-case letters, digits and '-' (e.g. ap-guangzhou)`

/** @internal */
export const bucketProblem = (bucket: string, region: string): string | undefined => {
  const m = bucketPattern.exec(bucket)
  if (m === null) {
    return `invalid bucket ${JSON.stringify(bucket)}: expected <BucketName>-<APPID> in lower-case letters, digits ` +
      `and '-' (e.g. examplebucket-1250000000)`
  }
  const name = m[1]!
  if (name.startsWith("-") || name.endsWith("-")) {
    return `invalid bucket ${JSON.stringify(bucket)}: the name part must not start or end with '-'`
  }
  const host = cosHost(bucket, region)
  if (host.length > maxHostLength) {
    return `invalid bucket ${JSON.stringify(bucket)}: the host name ${host} is longer than ${maxHostLength} ` +
      `characters, which COS does not allow`
  }
  return undefined
}

const maxKeyBytes = 850

const show = (key: string): string => JSON.stringify(key.length > 80 ? key.slice(0, 80) + "…" : key)

/**
 * Why a key cannot be sent, or `undefined` if it can: 1–850 UTF-8 bytes, not `.` or `..`, not beginning with `/`
 * (docs/protocol.md §1).
 *
 * @internal
 */
export const keyProblem = (key: string): string | undefined => {
  if (key.length === 0) return "an object key must not be empty"
  if (!isWellFormed(key)) return `the object key ${show(key)} contains a lone UTF-16 surrogate (not valid Unicode)`
  if (key === "." || key === "..") return `the object key ${show(key)} is a dot-segment, which COS cannot address`
  if (key.startsWith("/")) {
    return `the object key ${show(key)} begins with '/': COS keys never do (the official SDKs strip one leading ` +
      `'/'); write it without the leading slash`
  }
  // Only count bytes when the key could be too long: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (key.length * 3 > maxKeyBytes) {
    const bytes = Buffer.byteLength(key, "utf8")
    if (bytes > maxKeyBytes) {
      return `the object key ${show(key)} is ${bytes} bytes long in UTF-8; COS allows at most ${maxKeyBytes}`
    }
  }
  return undefined
}

/**
 * Compares two strings in UTF-8 byte order (the order COS lists keys in, docs/protocol.md §3), which differs from
 * JavaScript's UTF-16 order for characters above U+FFFF versus U+E000–U+FFFF.
 *
 * @internal
 */
export const compareUtf8 = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (code points >= 0x10000) sort after U+E000..U+FFFF in UTF-8.
    if (x >= 0xD800) x = x <= 0xDFFF ? x + 0x2000 : x - 0x800
    if (y >= 0xD800) y = y <= 0xDFFF ? y + 0x2000 : y - 0x800
    return x < y ? -1 : 1
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1
}
