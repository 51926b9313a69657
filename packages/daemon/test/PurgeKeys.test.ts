/**
 * `cos-retention purge --keys-from FILE` and `--audit-log FILE` as a user runs them: a child process against the
 * testkit's socket server, checking exactly which keys are gone, what the audit log holds, and the exit codes.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { ChildProcess } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as Path from "node:path"
import { credentialsEnv, runCli } from "./support/child.js"

const bucket = CosFake.testBucket

let scope: Scope.CloseableScope
let server: CosFakeServer.CosFakeServer
let dir: string

// Keys a careless reader would mangle: spaces at either end, a CR, astral characters, combining marks (and their
// precomposed twin, which must stay), XML-special characters, a # that is not a comment, a line break.
const hostile = [
  " lead",
  "trail ",
  "  both  ",
  "cr\r",
  "astral/𝒳😀",
  "combining/e\u0301",
  "xml/<a>&amp;\"'.txt",
  "#not-a-comment",
  "last-without-lf"
]
const neighbours = [
  "lead",
  "trail",
  "both",
  "cr",
  "combining/é",
  "xml/<a>&amp;\"'.tx",
  "last-without-l"
]

beforeAll(async () => {
  dir = NodeFs.mkdtempSync(Path.join(NodeOs.tmpdir(), "purge-keys-test-"))
  scope = await Effect.runPromise(Scope.make())
  server = await Effect.runPromise(Scope.extend(CosFakeServer.start(), scope))
  const store = server.fake.store
  const all = [...hostile, ...neighbours, "json/line\nbreak", "json/line", "json/tab\t", "bad/0", "bad/1", "std/0"]
  await Effect.runPromise(Effect.all([
    Effect.forEach(all, (key) => Store.putObject(store, { bucket, key, body: "x" })),
    Store.seed(store, { bucket, count: 2500, prefix: "many/", size: 3 }),
    Store.seed(store, { bucket, count: 50, prefix: "cap/" }),
    Store.seed(store, { bucket, count: 20, prefix: "audit/", size: 7 })
  ]))
})

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  NodeFs.rmSync(dir, { recursive: true, force: true })
})

const cli = (
  args: ReadonlyArray<string>,
  options: {
    readonly stdin?: string | Buffer | number
    readonly onSpawn?: (child: ChildProcess) => void
  } = {}
) =>
  runCli(["purge", ...args], {
    env: { ...process.env, ...credentialsEnv },
    // without one, standard input is a pipe closed at once
    stdin: options.stdin ?? "",
    onSpawn: options.onSpawn
  })

const common = () => ["--bucket", bucket, "--region", CosFake.testRegion, "--endpoint", server.url]

const file = (name: string, content: string | Buffer) => {
  const path = Path.join(dir, name)
  NodeFs.writeFileSync(path, content)
  return path
}

const lastJson = (stdout: string) => {
  const lines = stdout.trim().split("\n")
  return JSON.parse(lines[lines.length - 1]!) as Record<string, any>
}

const exists = (key: string) =>
  Effect.runPromise(Store.head(server.fake.store, bucket, key)).then((info) => info !== undefined)

const count = (prefix: string) => Effect.runPromise(Store.keys(server.fake.store, bucket, prefix)).then((k) => k.length)

describe("cos-retention purge --keys-from", () => {
  it("deletes exactly the keys listed, byte for byte, and nothing that merely looks like them", async () => {
    // LF ends a line; the CR before the LF of "cr\r" is part of that key; the last line has no LF.
    const list = file("hostile.txt", hostile.join("\n"))
    const r = await cli([...common(), "--keys-from", list, "--yes", "--json"])
    assert.strictEqual(r.code, 0, r.stderr)
    const s = lastJson(r.stdout)
    assert.strictEqual(s["matched"], hostile.length)
    assert.strictEqual(s["deleted"], hostile.length)
    assert.strictEqual(s["failed"], 0)
    for (const key of hostile) assert.isFalse(await exists(key), JSON.stringify(key))
    for (const key of neighbours) assert.isTrue(await exists(key), JSON.stringify(key))
  }, 180_000)

  it("reads JSON lines (keys with line breaks, tabs, versions) when the first line starts with {", async () => {
    // A server of its own: with an IP endpoint the fake serves its default bucket, here a versioned one.
    const versioned = "versioned-1250000000"
    const other = await Effect.runPromise(Scope.extend(
      CosFakeServer.start({ buckets: [{ name: versioned, versioning: "Enabled" }] }),
      scope
    ))
    const store = other.fake.store
    const [v1] = await Effect.runPromise(Effect.gen(function*() {
      const v1 = yield* Store.putObject(store, { bucket: versioned, key: "ver/k", body: "1" })
      const v2 = yield* Store.putObject(store, { bucket: versioned, key: "ver/k", body: "2" })
      yield* Store.putObject(store, { bucket: versioned, key: "ver/other", body: "3" })
      return [v1, v2]
    }))
    const versionsList = file("versions.jsonl", JSON.stringify({ key: "ver/k", versionId: v1 }) + "\n")
    const log = Path.join(dir, "versions-audit.jsonl")
    const byVersion = cli([
      "--bucket",
      versioned,
      "--region",
      CosFake.testRegion,
      "--endpoint",
      other.url,
      "--keys-from",
      versionsList,
      "--audit-log",
      log,
      "--yes",
      "--json"
    ])
    const list = file(
      "keys.jsonl",
      [
        JSON.stringify({ key: "json/line\nbreak" }),
        JSON.stringify({ key: "json/tab\t", versionId: null, size: 1, outcome: "deleted" })
      ].join("\n") + "\n"
    )
    const r = await cli([...common(), "--keys-from", list, "--yes", "--json"])
    assert.strictEqual(r.code, 0, r.stderr)
    assert.strictEqual(lastJson(r.stdout)["deleted"], 2)
    const v = await byVersion
    assert.strictEqual(v.code, 0, v.stderr)
    // Only that version is gone: the current one and the other key stay.
    const left = await Effect.runPromise(Store.versions(store, versioned, "ver/"))
    assert.deepStrictEqual(
      left.map((o) => [o.key, o.versionId !== v1]),
      [["ver/k", true], ["ver/other", true]]
    )
    assert.deepStrictEqual(
      auditLines(log).map((l) => [l["key"], l["versionId"], l["outcome"]]),
      [["ver/k", v1, "deleted"]]
    )
    assert.isFalse(await exists("json/line\nbreak"))
    assert.isFalse(await exists("json/tab\t"))
    assert.isTrue(await exists("json/line"))
  }, 180_000)

  it("refuses a list with a bad line before deleting anything: exit 2, the line named", async () => {
    const [badJson, emptyLine, badStdin, notUtf8, bom, crlf, crlfStdin] = await Promise.all([
      cli([
        ...common(),
        "--keys-from",
        file("bad.jsonl", `{"key": "bad/0"}\n{"key": "bad/1"}\n{"key": "bad/2"\n`),
        "--yes"
      ]),
      cli([...common(), "--keys-from", file("empty-line.txt", "bad/0\n\nbad/1\n"), "--yes"]),
      cli([...common(), "--keys-from", "-", "--yes"], { stdin: `{"key": "bad/0"}\n{"key": "bad/1"}\nbad/2\n` }),
      cli([...common(), "--keys-from", file("latin1.txt", Buffer.from([0x62, 0x61, 0x64, 0x2f, 0xe9, 0x0a])), "--yes"]),
      cli([...common(), "--keys-from", file("bom.jsonl", `\ufeff{"key": "bad/0"}\n`), "--yes"]),
      cli([...common(), "--keys-from", file("windows.txt", "bad/0\r\nbad/1\r\n"), "--yes"]),
      cli([...common(), "--keys-from", "-", "--yes"], { stdin: "bad/0\r\nbad/1\r\n" })
    ])
    assert.strictEqual(badJson.code, 2, badJson.stderr)
    assert.include(badJson.stderr, "line 3 is not valid JSON")
    assert.strictEqual(emptyLine.code, 2, emptyLine.stderr)
    assert.include(emptyLine.stderr, "line 2 is empty")
    assert.strictEqual(badStdin.code, 2, badStdin.stderr)
    assert.include(badStdin.stderr, "line 3 is not valid JSON")
    assert.include(badStdin.stderr, "standard input")
    assert.strictEqual(notUtf8.code, 2, notUtf8.stderr)
    assert.include(notUtf8.stderr, "line 1 is not UTF-8")
    assert.strictEqual(bom.code, 2, bom.stderr)
    assert.include(bom.stderr, "byte order mark")
    for (const r of [crlf, crlfStdin]) {
      assert.strictEqual(r.code, 2, r.stderr)
      assert.include(r.stderr, "every line ends with CR LF (Windows line endings)")
    }
    assert.isTrue(await exists("bad/0"))
    assert.isTrue(await exists("bad/1"))
  }, 180_000)

  it("reads standard input; batches by 1000; --max-deletes, --dry-run and absent keys as for a prefix", async () => {
    const many = Array.from({ length: 2500 }, (_, i) => `many/${String(i).padStart(4, "0")}`)
    const cap = Array.from({ length: 50 }, (_, i) => `cap/${String(i).padStart(2, "0")}`)
    const [stdin, dry, capped, absent] = await Promise.all([
      cli([...common(), "--keys-from", "-", "--yes", "--json"], { stdin: many.join("\n") + "\n" }),
      cli([...common(), "--keys-from", file("std.txt", "std/0\n"), "--dry-run", "--json"]),
      cli([
        ...common(),
        "--keys-from",
        file("cap.txt", cap.join("\n") + "\n"),
        "--max-deletes",
        "20",
        "--yes",
        "--json"
      ]),
      cli([...common(), "--keys-from", file("absent.txt", "absent/0\nabsent/1\n"), "--yes", "--json"])
    ])
    assert.strictEqual(stdin.code, 0, stdin.stderr)
    const s = lastJson(stdin.stdout)
    assert.strictEqual(s["deleted"], 2500)
    assert.strictEqual(s["requests"], 3, "batches of 1000")
    assert.strictEqual(await count("many/"), 0)

    assert.strictEqual(dry.code, 0, dry.stderr)
    assert.strictEqual(lastJson(dry.stdout)["dryRun"], true)
    assert.strictEqual(lastJson(dry.stdout)["matched"], 1)
    assert.isTrue(await exists("std/0"))

    assert.strictEqual(capped.code, 3, capped.stderr) // stopped by the cap: exit 3
    const c = lastJson(capped.stdout)
    assert.strictEqual(c["deleted"], 20)
    assert.strictEqual(c["skipped"], 30)
    assert.strictEqual(c["stoppedBy"], "maxDeletes")
    assert.strictEqual(await count("cap/"), 30)

    // COS (and the fake) answer a batch delete of a missing key with <Deleted>: the summary says so.
    assert.strictEqual(absent.code, 0, absent.stderr)
    const a = lastJson(absent.stdout)
    assert.strictEqual(a["deleted"], 2)
    assert.isTrue((a["notes"] as Array<string>).some((n) => n.includes("does not exist as deleted")))
  }, 180_000)

  it("bad arguments: exit 2 naming the flag and what it accepts", async () => {
    const dirFd = NodeFs.openSync(dir, "r")
    const [missing, withPrefix, noSource, dirArg, dirStdin, badLog] = await Promise.all([
      cli([...common(), "--keys-from", Path.join(dir, "nope.txt"), "--yes"]),
      cli([...common(), "--keys-from", file("p.txt", "x\n"), "--prefix", "logs/", "--older-than", "3d", "--yes"]),
      cli([...common(), "--yes"]),
      cli([...common(), "--keys-from", dir, "--yes"]),
      cli([...common(), "--keys-from", "-", "--yes"], { stdin: dirFd }),
      cli([...common(), "--keys-from", file("q.txt", "bad/0\n"), "--audit-log", dir, "--yes"])
    ])
    NodeFs.closeSync(dirFd)
    assert.strictEqual(missing.code, 2)
    assert.include(missing.stderr, "--keys-from")
    assert.include(missing.stderr, "no such file")
    assert.strictEqual(withPrefix.code, 2)
    assert.include(withPrefix.stderr, "--prefix, --older-than")
    assert.strictEqual(noSource.code, 2)
    assert.include(noSource.stderr, "--prefix is required: the key prefix to delete under (or --keys-from FILE")
    assert.strictEqual(dirArg.code, 2)
    assert.include(dirArg.stderr, "not a file")
    assert.strictEqual(dirStdin.code, 2)
    assert.include(dirStdin.stderr, "--keys-from -: standard input is a directory")
    assert.strictEqual(badLog.code, 2)
    assert.include(badLog.stderr, "--audit-log")
    assert.include(badLog.stderr, "cannot open it for writing")
    assert.isTrue(await exists("bad/0"), "nothing deleted when the audit log cannot be written")
  }, 180_000)
})

const auditLines = (path: string) =>
  NodeFs.readFileSync(path, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, any>)

describe("cos-retention purge --audit-log", () => {
  it("one JSON line per deleted key and one per failed key with its code, nothing else", async () => {
    const log = Path.join(dir, "audit.jsonl")
    // COS keys never begin with "/": that key fails alone, with InvalidKey.
    const list = file("audit.txt", ["audit/00", "audit/01", "audit/02", "/audit/bad"].join("\n") + "\n")
    const [r, byPrefix] = await Promise.all([
      cli([...common(), "--keys-from", list, "--audit-log", log, "--yes", "--json"]),
      cli([...common(), "--prefix", "audit/1", "--audit-log", Path.join(dir, "audit-prefix.jsonl"), "--yes"])
    ])
    assert.strictEqual(r.code, 1, r.stderr)
    const lines = auditLines(log)
    assert.deepStrictEqual(
      lines.map((l) => [l["key"], l["outcome"], l["code"]]),
      [["audit/00", "deleted", undefined], ["audit/01", "deleted", undefined], ["audit/02", "deleted", undefined], [
        "/audit/bad",
        "failed",
        "InvalidKey"
      ]]
    )
    assert.strictEqual(lines[0]!["size"], 0, "a listed key's size is not known")
    assert.isString(lines[0]!["time"])

    assert.strictEqual(byPrefix.code, 0, byPrefix.stderr)
    const p = auditLines(Path.join(dir, "audit-prefix.jsonl"))
    assert.deepStrictEqual(p.map((l) => l["key"]), Array.from({ length: 10 }, (_, i) => `audit/1${i}`))
    assert.isTrue(p.every((l) => l["outcome"] === "deleted" && l["size"] === 7))
  }, 180_000)

  it("interrupted by SIGTERM: the log names exactly the keys that are gone", async () => {
    const slow = await Effect.runPromise(Scope.extend(
      CosFakeServer.start({ faults: { operations: { DeleteObjects: { latencyMs: 800 } } } }),
      scope
    ))
    await Effect.runPromise(Store.seed(slow.fake.store, { bucket, count: 6000, prefix: "sig/" }))
    const left = () => Effect.runPromise(Store.keys(slow.fake.store, bucket, "sig/"))
    const log = Path.join(dir, "audit-signal.jsonl")
    const r = await cli([
      "--bucket",
      bucket,
      "--region",
      CosFake.testRegion,
      "--endpoint",
      slow.url,
      "--prefix",
      "sig/",
      "--concurrency",
      "1",
      "--audit-log",
      log,
      "--yes",
      "--json"
    ], {
      onSpawn: (child) => {
        const timer = setInterval(() => {
          void left().then((ks) => {
            if (ks.length <= 5000) {
              clearInterval(timer)
              child.kill("SIGTERM")
            }
          })
        }, 50)
        child.on("close", () => clearInterval(timer))
      }
    })
    assert.strictEqual(r.code, 143, r.stderr)
    const remaining = new Set(await left())
    const logged = auditLines(log).map((l) => l["key"] as string)
    assert.isAtLeast(logged.length, 1000)
    assert.isBelow(logged.length, 6000)
    assert.strictEqual(new Set(logged).size, logged.length, "one line per key")
    assert.strictEqual(logged.length, 6000 - remaining.size)
    assert.isTrue(logged.every((k) => !remaining.has(k)))
  }, 180_000)
})
