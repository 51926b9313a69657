// The cos-fake command: prints its URL, serves COS until stopped.
import { CosFake } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

const require = createRequire(import.meta.url)

const COS: any = require("cos-nodejs-sdk-v5")
const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

describe("cos-fake command", () => {
  it.live(
    "prints its URL, answers the SDK and /_fake/stats, stops on SIGINT",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // The child is killed when the test ends, whatever happened.
        const child = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn(
              process.execPath,
              [
                "--conditions=source",
                "--import",
                "tsx",
                bin,
                "--port",
                "0",
                "--seed",
                "25",
                "--seed-prefix",
                "s/",
                "--stats",
                "--secret-id",
                "AKIDcli",
                "--secret-key",
                "cli-secret"
              ],
              { stdio: ["ignore", "pipe", "pipe"] }
            )
          ),
          (c) => Effect.sync(() => c.exitCode === null && c.signalCode === null && c.kill("SIGKILL"))
        )
        let out = ""
        child.stdout.on("data", (c: Buffer) => (out += c.toString()))
        const url = yield* Effect.async<string, Error>((resume) => {
          const onData = () => {
            const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
            if (m) {
              child.stdout.off("data", onData)
              resume(Effect.succeed(m[1]!))
            }
          }
          child.stdout.on("data", onData)
          child.on("exit", (code) => resume(Effect.fail(new Error(`exited ${code}: ${out}`))))
        })
        assert.notInclude(out, "cli-secret")
        const cos = new COS({ SecretId: "AKIDcli", SecretKey: "cli-secret", Domain: url.slice(7), Protocol: "http:" })
        const list = yield* Effect.async<{ Contents: Array<unknown> }, unknown>((resume) =>
          cos.getBucket(
            { Bucket: CosFake.testBucket, Region: CosFake.testRegion, Prefix: "s/" },
            (err: unknown, data: { Contents: Array<unknown> }) => resume(err ? Effect.fail(err) : Effect.succeed(data))
          )
        )
        assert.strictEqual(list.Contents.length, 25)
        const stats = yield* Effect.promise(() =>
          fetch(`${url}/_fake/stats`).then((r) => r.json() as Promise<{ byOperation: Record<string, number> }>)
        )
        assert.strictEqual(stats.byOperation.ListObjects, 1)
        const code = yield* Effect.async<number | null>((resume) => {
          child.on("exit", (c) => resume(Effect.succeed(c)))
          child.kill("SIGINT")
        })
        assert.notStrictEqual(code, null)
      })),
    30_000
  )
})
