/**
 * Key lists read in 64 KiB chunks: lines and multi-byte characters cut by a chunk boundary come out whole, byte for
 * byte; the check and the stream agree; standard input is spooled and refused at its first bad line.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { Readable } from "node:stream"
import * as KeyList from "../src/KeyList.js"

const tmp = (content: string | Buffer) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "keylist-test-"))
      const path = NodePath.join(dir, "list")
      NodeFs.writeFileSync(path, content)
      return { dir, path }
    }),
    ({ dir }) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
  ).pipe(Effect.map(({ path }) => path))

const read = (path: string, format: KeyList.Format) =>
  Effect.map(Stream.runCollect(KeyList.stream(path, format)), Chunk.toReadonlyArray)

describe("KeyList", () => {
  it.scoped("lines and characters cut by chunk boundaries come out whole", () =>
    Effect.gen(function*() {
      // 7-byte UTF-8 groups (an astral character is 4 bytes) against 65536-byte chunks: boundaries fall everywhere.
      const keys = Array.from({ length: 30_000 }, (_, i) => ` k😀${i % 7 === 0 ? "\r" : ""}é\u0301 ${i}`)
      const path = yield* tmp(keys.join("\n"))
      const checked = yield* KeyList.check(path)
      assert.deepStrictEqual(checked, { format: "lines", entries: keys.length })
      const entries = yield* read(path, "lines")
      assert.strictEqual(entries.length, keys.length)
      assert.isTrue(entries.every((e, i) => e.key === keys[i] && e.versionId === undefined))
    }))

  it.scoped("JSON lines: versions, nulls, extra fields; the first bad line is named", () =>
    Effect.gen(function*() {
      const path = yield* tmp(
        `{"key": "a\\nb", "versionId": "v1"}\n{"key": " x ", "versionId": null, "size": 3}\r\n{"key": "y"}`
      )
      assert.deepStrictEqual(yield* KeyList.check(path), { format: "jsonl", entries: 3 })
      assert.deepStrictEqual(yield* read(path, "jsonl"), [{ key: "a\nb", versionId: "v1" }, { key: " x " }, {
        key: "y"
      }])
      for (
        const [content, expected] of [
          [`{"key": "a"}\n{"key": ""}\n`, "line 2: \"key\" must be a non-empty string"],
          [`{"key": "a"}\n["a"]\n`, "line 2 is not a JSON object"],
          [`{"key": "a", "versionId": 3}\n`, "line 1: \"versionId\" must be a non-empty string or null"],
          [`{"key": "a"}\n\n{"key": "b"}\n`, "line 2 is empty"],
          [`a\nb\n\n`, "line 3 is empty"]
        ] as const
      ) {
        const error = yield* Effect.flip(KeyList.check(yield* tmp(content)))
        assert.include(error.message, expected)
        assert.include(error.message, "nothing was deleted")
      }
    }))

  it.scoped("an empty list has no keys; a final LF adds no empty key", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* KeyList.check(yield* tmp("")), { format: "lines", entries: 0 })
      assert.deepStrictEqual(yield* read(yield* tmp("a\n"), "lines"), [{ key: "a" }])
    }))

  it.scoped("a list with Windows line endings (every LF-ended line ends with CR) is refused; a CR key is not", () =>
    Effect.gen(function*() {
      for (const content of ["a\r\nb\r\n", "a\r\nb\r\nlast", "only\r\n"]) {
        const error = yield* Effect.flip(KeyList.check(yield* tmp(content)))
        assert.include(error.message, "Windows line endings", JSON.stringify(content))
        assert.include(error.message, "nothing was deleted")
        const spooled = yield* Effect.flip(KeyList.spool(Readable.from([Buffer.from(content)]), "-"))
        assert.include(spooled.message, "Windows line endings", JSON.stringify(content))
      }
      // Some keys ending with CR, a last line without LF, JSON lines with CR LF: taken as they are.
      assert.deepStrictEqual(yield* read(yield* tmp("cr\r\nplain\n"), "lines"), [{ key: "cr\r" }, { key: "plain" }])
      assert.deepStrictEqual(yield* KeyList.check(yield* tmp("cr\r")), { format: "lines", entries: 1 })
      assert.deepStrictEqual(yield* KeyList.check(yield* tmp(`{"key": "a"}\r\n{"key": "b"}\r\n`)), {
        format: "jsonl",
        entries: 2
      })
    }))

  it.scoped("standard input is spooled to a private file while checked; a bad line fails the spool", () =>
    Effect.gen(function*() {
      const ok = yield* KeyList.spool(Readable.from([Buffer.from("a\nb"), Buffer.from("c\n d\n")]), "-")
      assert.strictEqual(ok.entries, 3)
      assert.strictEqual(NodeFs.statSync(ok.path).mode & 0o777, 0o600)
      assert.deepStrictEqual((yield* read(ok.path, ok.format)).map((e) => e.key), ["a", "bc", " d"])
      const bad = yield* Effect.flip(KeyList.spool(Readable.from([Buffer.from("{\"key\": \"a\"}\n{oops\n")]), "-"))
      assert.include(bad.message, "line 2 is not valid JSON")
    }))
})
