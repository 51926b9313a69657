/**
 * The CLI reads like a finished tool (issue 10): help without ANSI escapes when piped or with NO_COLOR, the real
 * command path, defaults and repeatable options shown as such, durations as people write them, and argument errors
 * in our words naming the flag and what it accepts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { vi } from "vitest"
import { colorFor } from "../src/cli/output.js"
import * as Logging from "../src/Logging.js"
import { formatDuration } from "../src/Logging.js"
import { cosRetention } from "./support/inProcess.js"

const ESC = "\x1b["
const target = ["--bucket", "examplebucket-1250000000", "--region", "ap-guangzhou", "--endpoint", "http://127.0.0.1:9"]

describe("the CLI's words", () => {
  it.effect("help, piped: no escapes, `$ cos-retention purge`, repeatable options optional, defaults", () =>
    Effect.gen(function*() {
      const r = yield* cosRetention(["purge", "--help"])
      assert.strictEqual(r.code, 0)
      assert.notInclude(r.stdout, ESC)
      assert.match(r.stdout, /^\$ cos-retention purge --bucket text /m)
      assert.notMatch(r.stdout, /^\$ purge/m)
      assert.include(r.stdout, "[--include text]...")
      assert.include(r.stdout, "[--exclude text]...")
      assert.notInclude(r.stdout, " --include text...")
      assert.notInclude(r.stdout, "A user-defined piece of text.")
      assert.include(r.stdout, "(default 8)")
      assert.include(r.stdout, "(default 4)")
      assert.include(r.stdout, "current (the default")
      assert.include(r.stdout, "3 stopped by a cap, --max-deletes or --max-delete-size")
      assert.include(r.stdout, "--newer-than must reach further back than --older-than")
      const once = yield* cosRetention(["once", "--help"])
      assert.match(once.stdout, /^\$ cos-retention once /m)
      assert.notInclude(once.stdout, ESC)
    }))

  it("escapes only on a terminal, and never with NO_COLOR", () => {
    const saved = process.env["NO_COLOR"]
    try {
      delete process.env["NO_COLOR"]
      assert.isTrue(colorFor({ isTTY: true }))
      assert.isFalse(colorFor({ isTTY: false }))
      assert.isFalse(colorFor({}))
      process.env["NO_COLOR"] = "1"
      assert.isFalse(colorFor({ isTTY: true }))
    } finally {
      if (saved === undefined) delete process.env["NO_COLOR"]
      else process.env["NO_COLOR"] = saved
    }
  })

  it.effect("argument errors are our sentences, naming the flag and what it accepts (exit 2)", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["purge", ...target, "--yes"], "--prefix is required: the key prefix to delete under"],
        [
          ["purge", "--region", "ap-guangzhou", "--prefix", "x/"],
          "--bucket is required: the bucket, <BucketName>-<APPID>"
        ],
        [
          ["purge", ...target, "--prefix", "x/", "--versions", "some"],
          `--versions: expected one of current, all, noncurrent, delete-markers, got "some"`
        ],
        [
          ["purge", ...target, "--prefix", "x/", "--concurrency", "abc"],
          `--concurrency: expected a whole number from 1 to 1000, got "abc"`
        ],
        [
          ["purge", ...target, "--prefix", "x/", "--concurrency", "1001"],
          `--concurrency: expected a whole number from 1 to 1000, got "1001"`
        ],
        [
          ["purge", ...target, "--prefix", "x/", "--list-concurrency", "257"],
          `--list-concurrency: expected a whole number from 1 to 256, got "257"`
        ],
        [
          ["purge", ...target, "--prefix", "x/", "--max-deletes", "-1"],
          `--max-deletes: expected a whole number of at least 0, got "-1"`
        ],
        [
          ["once", "--config", "/nonexistent/retention.yaml"],
          "--config: there is no file at /nonexistent/retention.yaml"
        ],
        [["plan"], "--config is required: the retention configuration file (YAML or JSON)"],
        [
          ["history", "--config", "/nonexistent/r.yaml", "--limit", "abc"],
          `--limit: expected a whole number of at least 1, got "abc"`
        ],
        [
          ["once", "--config", "/nonexistent/r.yaml", "--log-format", "xml"],
          `--log-format: expected one of auto, json, pretty, got "xml"`
        ]
      ]
      for (const [args, message] of cases) {
        const r = yield* cosRetention(args)
        assert.strictEqual(r.code, 2, args.join(" "))
        assert.include(r.stderr, message, args.join(" "))
        assert.notMatch(r.stderr, /Expected to find option|must exist|Expected one of the following|is not a integer/)
        assert.notInclude(r.stderr, ESC)
      }
    }))

  it("durations print as people write them", () => {
    assert.strictEqual(formatDuration("5 seconds"), "5s")
    assert.strictEqual(formatDuration("150 seconds"), "2m30s")
    assert.strictEqual(formatDuration("30 days"), "30d")
    assert.strictEqual(formatDuration("250 millis"), "250ms")
    assert.strictEqual(formatDuration("20 seconds"), "20s")
    assert.strictEqual(formatDuration(0), "0s")
    assert.notInclude(formatDuration("90 minutes"), "Duration")
    assert.strictEqual(formatDuration("90 minutes"), "1h30m")
  })

  it.effect("a log line the cluster engine annotates with its address object names the runner as HOST:PORT", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const error = vi.spyOn(console, "error").mockImplementation((...xs: Array<unknown>) =>
        void lines.push(xs.join(" "))
      )
      yield* Effect.logWarning("No healthy runners available").pipe(
        // as the engine annotates its own fibers, over the replica's `runner=HOST:PORT`
        Effect.annotateLogs({ runner: { host: "10.0.0.11", port: 34431 } }),
        Effect.annotateLogs({ runner: "10.0.0.11:34431" }),
        Effect.provide(Logging.layer("json")),
        Effect.ensuring(Effect.sync(() => error.mockRestore()))
      )
      assert.strictEqual(lines.length, 1)
      assert.strictEqual(JSON.parse(lines[0]!).annotations.runner, "10.0.0.11:34431")
    }))
})
