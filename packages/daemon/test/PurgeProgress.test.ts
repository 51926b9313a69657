/**
 * `cos-retention purge --progress json` as a CI job sees it: JSON progress lines on stderr while the purge goes on,
 * the summary alone on stdout.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { credentialsEnv, repo } from "./support/child.js"

const bucket = CosFake.testBucket

const purge = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    const child = spawn(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "packages/daemon/src/bin.ts", "purge", ...args],
      { cwd: repo, env: { ...process.env, ...credentialsEnv, ...env }, stdio: ["ignore", "pipe", "pipe"] }
    )
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

describe("purge --progress json", () => {
  it.live("prints JSON progress lines on stderr every interval, the summary on stdout", () =>
    Effect.gen(function*() {
      // 2500 keys in pages of 1000 at 250 ms per request: about 1.5 s of purge, several 200 ms intervals
      const server = yield* CosFakeServer.start({ faults: { all: { latencyMs: 250 } } })
      yield* Store.seed(server.fake.store, { bucket, count: 2500, prefix: "slow/" })
      const result = yield* purge(
        [
          "--bucket",
          bucket,
          "--region",
          CosFake.testRegion,
          "--endpoint",
          server.url,
          "--prefix",
          "slow/",
          "--list-concurrency",
          "1",
          "--concurrency",
          "1",
          "--yes",
          "--json",
          "--progress",
          "json"
        ],
        { COS_RETENTION_PROGRESS_INTERVAL_MS: "200" }
      )
      assert.strictEqual(result.code, 0, result.stderr)
      const progress = result.stderr.trim().split("\n").map((l) => JSON.parse(l))
      assert.isAtLeast(progress.length, 2, result.stderr)
      for (const p of progress) {
        assert.deepStrictEqual(Object.keys(p).sort(), [
          "deleted",
          "elapsedMs",
          "failed",
          "keysPerSecond",
          "listed",
          "matched",
          "throttled"
        ])
      }
      // counts only grow, and the last line is the end of the run
      for (let i = 1; i < progress.length; i++) {
        assert.isAtLeast(progress[i].deleted, progress[i - 1].deleted)
        assert.isAtLeast(progress[i].elapsedMs, progress[i - 1].elapsedMs)
      }
      const last = progress[progress.length - 1]
      assert.strictEqual(last.listed, 2500)
      assert.strictEqual(last.deleted, 2500)
      assert.strictEqual(last.failed, 0)
      assert.isAbove(last.keysPerSecond, 0)
      assert.isTrue(progress.some((p) => p.deleted < 2500), "a line showed the purge under way")
      // stdout holds the summary only
      const out = result.stdout.trim().split("\n")
      assert.strictEqual(out.length, 1)
      assert.strictEqual(JSON.parse(out[0]!).deleted, 2500)
      assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "slow/")).length, 0)
    }).pipe(Effect.scoped), 30_000)
})
