/**
 * Explicit key lists for `cos-retention purge --keys-from FILE`: one key per line, or JSON lines
 * `{"key": "...", "versionId": "..."}`, told apart by the first byte (`{` means JSON lines).
 *
 * Plain lines are taken byte for byte: only LF (0x0A) ends a line; a CR before it, leading and trailing spaces and a
 * `#` are part of the key; a last line without LF is a key too. A list whose every LF-ended line ends with CR as well
 * is refused: that is a file with Windows line endings, and its keys (each with a CR at the end) would not be the
 * ones meant, while COS answers "deleted" for keys that do not exist. A byte order mark at the start is refused (it would
 * hide the `{` of JSON lines and become part of the first key). An empty line is refused (an empty key cannot exist,
 * and a blank line usually means a list that is not what its writer thought, e.g. a double LF). A line that is not
 * UTF-8 is refused. JSON lines need a non-empty string `key`, an optional non-empty string (or null) `versionId`;
 * other fields are ignored, so a `--audit-log` file can be fed back.
 *
 * Memory stays bounded whatever the length of the list: the file is read in chunks and split as it goes. The whole
 * list is checked ({@link check}) before the first delete; standard input is first copied to a private temporary
 * file while it is checked ({@link spool}), so that nothing is deleted from a list whose line 9,000,000 is broken.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

export type Format = "lines" | "jsonl"

export interface Entry {
  readonly key: string
  readonly versionId?: string | undefined
}

/** A list that cannot be used (unreadable, or a bad line): nothing was deleted. */
export class KeyListError extends Schema.TaggedError<KeyListError>()("KeyListError", { message: Schema.String }) {}

export interface Checked {
  readonly format: Format
  readonly entries: number
}

const LF = 0x0a

/** Splits a byte stream into lines (Buffers, without their LF), keeping the partial last line between chunks. */
class Splitter {
  private rest: Buffer | undefined = undefined
  line = 0
  push(chunk: Buffer, onLine: (line: Buffer, number: number) => void): void {
    let start = 0
    let i = chunk.indexOf(LF, start)
    if (i >= 0 && this.rest !== undefined) {
      const first = Buffer.concat([this.rest, chunk.subarray(0, i)])
      this.rest = undefined
      onLine(first, ++this.line)
      start = i + 1
      i = chunk.indexOf(LF, start)
    }
    while (i >= 0) {
      onLine(chunk.subarray(start, i), ++this.line)
      start = i + 1
      i = chunk.indexOf(LF, start)
    }
    if (start < chunk.length) {
      const tail = chunk.subarray(start)
      this.rest = this.rest === undefined ? Buffer.from(tail) : Buffer.concat([this.rest, tail])
    }
  }
  /** The last line, if the input did not end with LF: it is a key like the others. */
  end(onLine: (line: Buffer, number: number) => void): void {
    if (this.rest !== undefined) {
      const last = this.rest
      this.rest = undefined
      onLine(last, ++this.line)
    }
  }
}

/** Counts the LF-ended lines of a plain list that end with CR too: all of them means Windows line endings. */
class LineEndings {
  ended = 0
  withCr = 0
  saw(line: Buffer): void {
    this.ended++
    if (line.length > 0 && line[line.length - 1] === 0x0d) this.withCr++
  }
  /** The refusal, when every LF-ended line ends with CR LF. */
  problem(): string | undefined {
    return this.ended > 0 && this.withCr === this.ended
      ? `every line ends with CR LF (Windows line endings): the keys would end with a CR and not be the ones meant ` +
        `(COS reports keys that do not exist as deleted). Convert the list to LF line endings (e.g. dos2unix); keys ` +
        `that really end with CR can be given as JSON lines ({"key": "...\\r"})`
      : undefined
  }
}

// ignoreBOM: decode byte for byte (a byte order mark at the start of the list is refused before decoding).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** One line as an entry, or the reason it is refused. */
export const parseLine = (bytes: Buffer, number: number, format: Format): Entry | string => {
  if (bytes.length === 0) {
    return `line ${number} is empty (an empty key cannot exist; remove the line)`
  }
  if (number === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    // An editor's byte order mark would hide the "{" of JSON lines and become part of the first key.
    return "line 1 starts with a byte order mark (U+FEFF): save the list without it (a key that really starts with " +
      "U+FEFF can be given as a JSON line, \"\\ufeff...\")"
  }
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    return `line ${number} is not UTF-8 (COS keys are UTF-8)`
  }
  if (format === "lines") return { key: text }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return `line ${number} is not valid JSON (${(e as Error).message}); in a JSON lines list (the first line starts ` +
      `with "{") every line is {"key": "...", "versionId": "..."}`
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `line ${number} is not a JSON object {"key": "...", "versionId": "..."}`
  }
  const { key, versionId } = value as { key?: unknown; versionId?: unknown }
  if (typeof key !== "string" || key === "") return `line ${number}: "key" must be a non-empty string`
  if (versionId === undefined || versionId === null) return { key }
  if (typeof versionId !== "string" || versionId === "") {
    return `line ${number}: "versionId" must be a non-empty string or null`
  }
  return { key, versionId }
}

const formatOf = (first: number | undefined): Format => (first === 0x7b ? "jsonl" : "lines")

const highWaterMark = 1 << 16

/** Checks a list chunk by chunk: its format (from its first byte), how many entries it holds, its first bad line. */
class ListCheck {
  private readonly splitter = new Splitter()
  private readonly endings = new LineEndings()
  private format: Format | undefined
  private entries = 0
  problem: string | undefined
  private readonly onLine = (line: Buffer, n: number) => {
    if (this.problem !== undefined) return
    const e = parseLine(line, n, this.format!)
    if (typeof e === "string") this.problem = e
    else this.entries++
  }
  private readonly onEndedLine = (line: Buffer, n: number) => {
    this.endings.saw(line)
    this.onLine(line, n)
  }
  push(chunk: Buffer): void {
    this.format ??= formatOf(chunk[0])
    this.splitter.push(chunk, this.onEndedLine)
  }
  /** After the last chunk (or the first bad line): the format, the entries and the problem, if any. */
  end(): { readonly format: Format; readonly entries: number; readonly problem: string | undefined } {
    if (this.problem === undefined) this.splitter.end(this.onLine)
    if (this.problem === undefined && this.format === "lines") this.problem = this.endings.problem()
    return { format: this.format ?? "lines", entries: this.entries, problem: this.problem }
  }
}

/**
 * Reads the whole list once and refuses it at its first bad line (naming the line); returns its format and how many
 * keys it holds.
 */
export const check = (path: string, label: string = path): Effect.Effect<Checked, KeyListError> =>
  Effect.tryPromise({
    try: async () => {
      const list = new ListCheck()
      for await (const chunk of NodeFs.createReadStream(path, { highWaterMark }) as AsyncIterable<Buffer>) {
        list.push(chunk)
        if (list.problem !== undefined) break
      }
      return list.end()
    },
    catch: (e) => new KeyListError({ message: `--keys-from ${label}: cannot read it: ${(e as Error).message}` })
  }).pipe(Effect.flatMap(({ entries, format, problem }) =>
    problem === undefined
      ? Effect.succeed({ format, entries })
      : Effect.fail(new KeyListError({ message: `--keys-from ${label}: ${problem}; nothing was deleted` }))
  ))

/**
 * The entries of a list already {@link check}ed, read in chunks (one array per chunk read). A line that no longer
 * parses (the file changed since it was checked) ends the stream with an error.
 */
export const stream = (path: string, format: Format, label: string = path): Stream.Stream<Entry, KeyListError> =>
  Stream.fromAsyncIterable(
    (async function*() {
      const splitter = new Splitter()
      let problem: string | undefined
      let out: Array<Entry> = []
      const onLine = (line: Buffer, n: number) => {
        if (problem !== undefined) return
        const e = parseLine(line, n, format)
        if (typeof e === "string") problem = e
        else out.push(e)
      }
      for await (const chunk of NodeFs.createReadStream(path, { highWaterMark }) as AsyncIterable<Buffer>) {
        splitter.push(chunk, onLine)
        if (problem !== undefined) throw new Error(`${problem} (the file changed after it was checked)`)
        if (out.length > 0) {
          yield out
          out = []
        }
      }
      splitter.end(onLine)
      if (problem !== undefined) throw new Error(`${problem} (the file changed after it was checked)`)
      if (out.length > 0) yield out
    })(),
    (e) => new KeyListError({ message: `--keys-from ${label}: ${(e as Error).message}` })
  ).pipe(Stream.mapConcatChunk((entries) => Chunk.unsafeFromArray(entries)))

/**
 * Copies a readable (standard input) to a temporary file only this user can read, checking every line as it goes;
 * the file is removed when the scope closes. Fails at the first bad line, before anything could be deleted.
 */
export const spool = (
  input: NodeJS.ReadableStream,
  label: string
): Effect.Effect<Checked & { readonly path: string }, KeyListError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.try({
        try: () => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "cos-retention-keys-")),
        catch: (e) => new KeyListError({ message: `--keys-from ${label}: cannot create a temporary file: ${e}` })
      }),
      (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
    )
    const path = NodePath.join(dir, "keys")
    const result = yield* Effect.tryPromise({
      try: async () => {
        const fd = NodeFs.openSync(path, "wx", 0o600)
        try {
          const list = new ListCheck()
          for await (const raw of input as AsyncIterable<Buffer | string>) {
            const chunk = typeof raw === "string" ? Buffer.from(raw, "utf8") : raw
            if (chunk.length === 0) continue
            list.push(chunk)
            if (list.problem !== undefined) break
            NodeFs.writeSync(fd, chunk)
          }
          return list.end()
        } finally {
          NodeFs.closeSync(fd)
        }
      },
      catch: (e) => new KeyListError({ message: `--keys-from ${label}: cannot read it: ${(e as Error).message}` })
    })
    if (result.problem !== undefined) {
      return yield* new KeyListError({ message: `--keys-from ${label}: ${result.problem}; nothing was deleted` })
    }
    return { path, format: result.format, entries: result.entries }
  })
