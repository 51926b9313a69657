/**
 * `cos-retention audit` as a user runs it (a child process, so argv reaches it as a shell passes it): the records a
 * state database holds, filtered exactly, in each format, and bad input refused with exit 2.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as Path from "node:path"
import * as AuditQuery from "../src/AuditQuery.js"
import { parseInstant } from "../src/cli/audit.js"
import { rawValue, untrimmed } from "../src/cli/rawArgs.js"
import { State } from "../src/State.js"
import { runCli } from "./support/child.js"

const hostile = [" a ", "a", "a,b", "quote\"d", "line\nbreak", "cr\r", "𝒳/astral", "e\u0301", "é", "<x>&amp;'"]
const jan1 = Date.UTC(2026, 0, 1)
const day = 86_400_000

let dir: string
let config: string

beforeAll(async () => {
  dir = NodeFs.mkdtempSync(Path.join(NodeOs.tmpdir(), "audit-cli-test-"))
  const db = Path.join(dir, "state.db")
  config = Path.join(dir, "retention.yaml")
  NodeFs.writeFileSync(
    config,
    `state: ${db}
cos: { region: ap-guangzhou }
rules:
  - name: logs
    bucket: examplebucket-1250000000
    prefix: logs/
    olderThan: 30d
    schedule: "0 3 * * *"
`
  )
  // Two runs of two rules, a day apart; one key deleted twice (by both runs); one intent left pending.
  await Effect.runPromise(
    Effect.gen(function*() {
      const state = yield* State
      yield* TestClock.setTime(jan1)
      const r1 = yield* state.startRun({ rule: "logs", trigger: "schedule", dryRun: false })
      const run1 = { id: r1.id, rule: "logs", bucket: "examplebucket-1250000000" }
      yield* state.confirmDeleted(
        run1,
        hostile.map((key, i) => ({ key, size: i, deleteMarkerCreated: false }))
      )
      yield* TestClock.setTime(jan1 + day)
      const r2 = yield* state.startRun({ rule: "versions", trigger: "schedule", dryRun: false })
      const run2 = { id: r2.id, rule: "versions", bucket: "examplebucket-1250000000" }
      yield* state.confirmDeleted(run2, [
        { key: "a", versionId: "v1", size: 5, deleteMarkerCreated: false },
        { key: "marker", deleteMarkerCreated: true }
      ])
      yield* state.recordIntent(run2, [{ key: "pending/1" }])
    }).pipe(Effect.provide(State.layerFile(db)), Effect.provide(TestContext.TestContext))
  )
})

const audit = (args: ReadonlyArray<string>) => runCli(["audit", "--config", config, ...args])

const jsonl = (stdout: string) =>
  stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as AuditQuery.AuditRecord)

/** A minimal RFC 4180 reader, to check the CSV round-trips. */
const readCsv = (text: string): Array<Array<string>> => {
  const rows: Array<Array<string>> = []
  let row: Array<string> = []
  let field = ""
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === "\"" && text[i + 1] === "\"") {
        field += "\""
        i++
      } else if (c === "\"") quoted = false
      else field += c
    } else if (c === "\"") quoted = true
    else if (c === ",") {
      row.push(field)
      field = ""
    } else if (c === "\n") {
      row.push(field)
      rows.push(row)
      row = []
      field = ""
    } else field += c
  }
  return rows
}

describe("cos-retention audit", () => {
  it("answers exact questions in jsonl, csv and table", async () => {
    const [all, key, keyEq, prefix, rule, window, limited, csv, table] = await Promise.all([
      audit(["--format", "jsonl"]),
      audit(["--key", " a ", "--format", "jsonl"]),
      audit(["--key= a ", "--format=jsonl"]),
      audit(["--prefix", "e\u0301", "--format", "jsonl"]),
      audit(["--rule", "versions", "--run", "2", "--format", "jsonl"]),
      audit(["--since", "2026-01-01T12:00:00Z", "--until", "2026-01-02", "--format", "jsonl"]),
      audit(["--limit", "3", "--format", "jsonl"]),
      audit(["--format", "csv"]),
      audit([])
    ])
    for (const r of [all, key, keyEq, prefix, rule, window, limited, csv, table]) {
      assert.strictEqual(r.code, 0, r.stderr)
    }

    const records = jsonl(all.stdout)
    assert.deepStrictEqual(records.map((r) => r.key), [...hostile, "a", "marker", "pending/1"])
    assert.deepStrictEqual(records[0], {
      key: " a ",
      versionId: null,
      uploadId: null,
      size: 0,
      bucket: "examplebucket-1250000000",
      rule: "logs",
      run: 1,
      time: "2026-01-01T00:00:00.000Z",
      outcome: "deleted"
    })
    assert.deepStrictEqual(records.slice(-3).map((r) => [r.versionId, r.outcome, r.time]), [
      ["v1", "deleted", "2026-01-02T00:00:00.000Z"],
      [null, "delete-marker-created", "2026-01-02T00:00:00.000Z"],
      [null, "pending", null]
    ])

    // --key is exact, whichever way it is spelled: " a " is neither "a" nor "a,b".
    assert.deepStrictEqual(jsonl(key.stdout).map((r) => r.key), [" a "])
    assert.deepStrictEqual(jsonl(keyEq.stdout).map((r) => r.key), [" a "])
    // A prefix with a combining mark does not match its precomposed twin.
    assert.deepStrictEqual(jsonl(prefix.stdout).map((r) => r.key), ["e\u0301"])
    assert.deepStrictEqual(jsonl(rule.stdout).map((r) => r.key), ["a", "marker", "pending/1"])
    // Only run 2's confirmed rows are in the window (pending rows have no time).
    assert.deepStrictEqual(jsonl(window.stdout).map((r) => r.key), ["a", "marker"])
    assert.deepStrictEqual(jsonl(limited.stdout).map((r) => r.key), hostile.slice(0, 3))

    const rows = readCsv(csv.stdout)
    assert.deepStrictEqual(rows[0], [
      "key",
      "versionId",
      "uploadId",
      "size",
      "rule",
      "run",
      "time",
      "outcome",
      "bucket"
    ])
    assert.deepStrictEqual(rows.slice(1).map((r) => r[0]), [...hostile, "a", "marker", "pending/1"])
    assert.deepStrictEqual(
      rows[1],
      ["key", "", "", "0", "logs", "1", "2026-01-01T00:00:00.000Z", "deleted", "x"].map(
        (v, i) => (i === 0 ? " a " : i === 8 ? "examplebucket-1250000000" : v)
      )
    )

    const lines = table.stdout.split("\n")
    assert.match(lines[0]!, /^time\s+run\s+rule\s+outcome\s+size\s+version\s+key$/)
    assert.include(table.stdout, "\"line\\nbreak\"", "a key with a line break is quoted in the table")
    assert.include(table.stdout, "(pending)")
  }, 180_000)

  it("refuses bad input with exit 2, naming the flag and what it accepts", async () => {
    const [format, negative, order, badTime, localTime, both, word, run] = await Promise.all([
      audit(["--format", "xml"]),
      audit(["--limit", "-1"]),
      audit(["--since", "2026-02-01", "--until", "2026-01-01"]),
      audit(["--since", "yesterday"]),
      audit(["--until", "2026-01-01T10:00:00"]),
      audit(["--key", "a", "--prefix", "a"]),
      audit(["--limit", "ten"]),
      audit(["--run", "0"])
    ])
    assert.strictEqual(format.code, 2)
    assert.include(format.stderr, `--format: expected one of table, jsonl, csv, got "xml"`)
    assert.strictEqual(negative.code, 2)
    assert.include(negative.stderr, `--limit: expected a whole number of at least 0, got "-1"`)
    assert.strictEqual(word.code, 2)
    assert.include(word.stderr, `--limit: expected a whole number of at least 0, got "ten"`)
    assert.notInclude(word.stderr, "is not a integer")
    assert.strictEqual(run.code, 2)
    assert.include(run.stderr, `--run: expected a whole number of at least 1, got "0"`)
    assert.strictEqual(order.code, 2)
    assert.include(order.stderr, "--since (2026-02-01T00:00:00.000Z) is after --until")
    assert.strictEqual(badTime.code, 2)
    assert.include(badTime.stderr, "--since: expected a date")
    assert.strictEqual(localTime.code, 2, "a date-time without a zone is refused")
    assert.include(localTime.stderr, "--until")
    assert.strictEqual(both.code, 2)
    assert.include(both.stderr, "--key and --prefix")
  }, 180_000)
})

describe("audit helpers", () => {
  it("parseInstant: dates in UTC, zones honoured, durations back from now, nothing ambiguous", () => {
    const now = Date.UTC(2026, 5, 1)
    assert.strictEqual(parseInstant("2026-01-31", now), Date.UTC(2026, 0, 31))
    assert.strictEqual(parseInstant("2026-01-31T08:00:00+08:00", now), Date.UTC(2026, 0, 31))
    assert.strictEqual(parseInstant("7d", now), now - 7 * day)
    assert.isUndefined(parseInstant("2026-01-31T08:00:00", now))
    assert.isUndefined(parseInstant(" 7d", now))
    assert.isUndefined(parseInstant("-7d", now))
  })

  it("csvField quotes what a CSV reader would split or trim", () => {
    assert.strictEqual(AuditQuery.csvField("a,b"), "\"a,b\"")
    assert.strictEqual(AuditQuery.csvField("q\"x"), "\"q\"\"x\"")
    assert.strictEqual(AuditQuery.csvField(" a"), "\" a\"")
    assert.strictEqual(AuditQuery.csvField("l\nb"), "\"l\nb\"")
    assert.strictEqual(AuditQuery.csvField(null), "")
    assert.strictEqual(AuditQuery.csvField("plain"), "plain")
  })

  it("rawArgs: the value as typed, in both spellings", () => {
    const argv = ["node", "bin", "audit", "--key= a ", "--prefix", " p "]
    assert.strictEqual(rawValue(argv, "key"), " a ")
    assert.strictEqual(rawValue(argv, "prefix"), " p ")
    assert.strictEqual(untrimmed(" a", "key", argv), " a ")
    assert.strictEqual(untrimmed("other", "key", argv), "other", "a raw value that is not the parsed one is ignored")
    assert.isUndefined(rawValue(["--", "--key", "x"], "key"))
  })
})
