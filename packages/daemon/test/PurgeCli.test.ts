/**
 * `cos-retention purge` as a user runs it: a child process against the testkit's socket server, checking exit codes,
 * the JSON summary line, what is left in the bucket, and that no secret is ever printed.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type Output, runCli } from "./support/child.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../../..")
const bucket = CosFake.testBucket
const secretKey = Redacted.value(CosFake.testCredentials.secretKey)
const env = {
  COS_SECRET_ID: CosFake.testCredentials.secretId,
  COS_SECRET_KEY: secretKey
}
const DAY = 86_400_000

let scope: Scope.CloseableScope
let server: CosFakeServer.CosFakeServer

beforeAll(async () => {
  scope = await Effect.runPromise(Scope.make())
  server = await Effect.runPromise(Scope.extend(CosFakeServer.start(), scope))
  const store = server.fake.store
  await Effect.runPromise(Effect.all([
    // dry run
    Store.seed(store, { bucket, count: 1500, prefix: "plan/", size: 10 }),
    // filters: .log files older than 30 days go; the rest stays
    Store.seed(store, {
      bucket,
      count: 400,
      keyFn: (i) => `logs/${String(i).padStart(4, "0")}.${i % 2 === 0 ? "log" : "txt"}`,
      ageMs: (i) => (i < 200 ? 40 * DAY : 1 * DAY)
    }),
    Store.seed(store, { bucket, count: 50, prefix: "keep/" }),
    Store.seed(store, { bucket, count: 30, prefix: "guarded/" }),
    Store.seed(store, { bucket, count: 1200, prefix: "tty/" }),
    Store.seed(store, { bucket, count: 150, prefix: "paced/" }),
    // sizes: 0, 500, ..., 4500 bytes
    Store.seed(store, { bucket, count: 10, keyFn: (i) => `sized/${i}`, size: (i) => i * 500 })
  ]))
})

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
})

/** Runs the CLI like `pnpm cos-retention purge ...` does, without a terminal; no COS_ variable but `extraEnv`. */
const cli = (
  args: ReadonlyArray<string>,
  extraEnv: Record<string, string | undefined> = env,
  onSpawn?: (child: ChildProcess) => void
) => {
  const childEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("COS_")) childEnv[k] = v
  }
  for (const [k, v] of Object.entries(extraEnv)) if (v !== undefined) childEnv[k] = v
  return runCli(["purge", ...args], { env: childEnv, onSpawn })
}

const common = () => ["--bucket", bucket, "--region", CosFake.testRegion, "--endpoint", server.url]

const lastJson = (stdout: string) => {
  const lines = stdout.trim().split("\n")
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>
}

const keys = (prefix: string) => Effect.runPromise(Store.keys(server.fake.store, bucket, prefix))

const noSecrets = (r: Output) => {
  assert.notInclude(r.stdout, secretKey)
  assert.notInclude(r.stderr, secretKey)
}

describe("cos-retention purge", () => {
  it("plans, deletes what the filters select, refuses what it must, with the right exit codes", async () => {
    const [plan, real, refused, noKey, badArgs, wholeBucket, unreachable] = await Promise.all([
      cli([...common(), "--prefix", "plan/", "--dry-run", "--json"]),
      cli([
        ...common(),
        "--prefix",
        "logs/",
        "--include",
        "**/*.log",
        "--older-than",
        "30d",
        "--yes",
        "--json",
        "--list-concurrency",
        "3"
      ]),
      cli([...common(), "--prefix", "guarded/"]),
      cli([...common(), "--prefix", "guarded/", "--yes"], { COS_SECRET_ID: env.COS_SECRET_ID }),
      cli([...common(), "--prefix", "guarded/", "--yes", "--versions", "some"]),
      cli([...common(), "--prefix", "", "--yes"]),
      cli([
        "--bucket",
        bucket,
        "--region",
        CosFake.testRegion,
        "--endpoint",
        "http://127.0.0.1:9", // nothing listens there
        "--prefix",
        "keep/",
        "--yes",
        "--json"
      ])
    ])

    // Dry run: the plan as the last line, exit 0, nothing deleted.
    assert.strictEqual(plan.code, 0, plan.stderr)
    const p = lastJson(plan.stdout)
    assert.strictEqual(p["dryRun"], true)
    assert.strictEqual(p["listed"], 1500)
    assert.strictEqual(p["matched"], 1500)
    assert.strictEqual(p["deleted"], 0)
    assert.strictEqual(p["matchedBytes"], 15_000)
    assert.isNumber(p["durationMs"])
    assert.strictEqual((await keys("plan/")).length, 1500)

    // A real delete with filters: exactly the old .log files go.
    assert.strictEqual(real.code, 0, real.stderr)
    const s = lastJson(real.stdout)
    assert.strictEqual(s["listed"], 400)
    assert.strictEqual(s["matched"], 100)
    assert.strictEqual(s["deleted"], 100)
    assert.strictEqual(s["failed"], 0)
    assert.strictEqual(s["dryRun"], false)
    const left = await keys("logs/")
    assert.strictEqual(left.length, 300)
    assert.isTrue(left.every((k) => k.endsWith(".txt") || Number(k.slice(5, 9)) >= 200))
    assert.strictEqual((await keys("keep/")).length, 50)

    // No terminal and no --yes: refused, naming --yes.
    assert.strictEqual(refused.code, 2)
    assert.include(refused.stderr, "--yes")
    // A missing secret: named, exit 2.
    assert.strictEqual(noKey.code, 2)
    assert.include(noKey.stderr, "COS_SECRET_KEY")
    // @effect/cli validation error: exit 2.
    assert.strictEqual(badArgs.code, 2)
    assert.include(badArgs.stderr + badArgs.stdout, "delete-markers")
    // The whole bucket needs --allow-whole-bucket.
    assert.strictEqual(wholeBucket.code, 2)
    assert.include(wholeBucket.stderr, "--allow-whole-bucket")
    assert.strictEqual((await keys("guarded/")).length, 30)

    // The run fails (COS unreachable): exit 1, the error in the JSON line.
    assert.strictEqual(unreachable.code, 1, unreachable.stderr)
    assert.include(String(lastJson(unreachable.stdout)["error"]), "CosClient.listObjects")

    for (const r of [plan, real, refused, noKey, badArgs, wholeBucket, unreachable]) noSecrets(r)
  }, 60_000)

  it(
    "--incomplete-uploads aborts old uploads (dry run first), keeps young and excluded ones and every object",
    async () => {
      const store = server.fake.store
      const oldKeys = ["mpu/\u{1F4E6}.tar", "mpu/cafe\u0301.tar", "mpu/ spaced ", "mpu/line\nbreak", "mpu/<&\"'>.tar"]
      const ids = await Effect.runPromise(Effect.gen(function*() {
        const old: Array<string> = []
        for (const key of oldKeys) {
          old.push(yield* Store.initiateUpload(store, { bucket, key, partSizes: [16], ageMs: 10 * DAY }))
          yield* Store.putObject(store, { bucket, key, body: "completed" })
        }
        const excluded = yield* Store.initiateUpload(store, { bucket, key: "mpu/keep/x.tar", ageMs: 10 * DAY })
        const young = yield* Store.initiateUpload(store, { bucket, key: "mpu/young.tar", ageMs: 1 * DAY })
        return { old, excluded, young }
      }))
      const args = [
        ...common(),
        "--incomplete-uploads",
        "--prefix",
        "mpu/",
        "--older-than",
        "7d",
        "--exclude",
        "mpu/keep/**"
      ]
      const uploads = () => Effect.runPromise(Store.uploads(store, bucket, "mpu/"))

      const [plan, badCombo] = await Promise.all([
        cli([...args, "--dry-run", "--json"]),
        cli([...args, "--min-size", "1", "--yes"])
      ])
      assert.strictEqual(plan.code, 0, plan.stderr)
      const p = lastJson(plan.stdout)
      assert.deepStrictEqual([p["target"], p["dryRun"], p["listed"], p["matched"], p["deleted"]], [
        "incompleteUploads",
        true,
        7,
        5,
        0
      ])
      assert.strictEqual((await uploads()).length, 7)
      assert.strictEqual(badCombo.code, 2)
      assert.include(badCombo.stderr, "--min-size cannot be combined with --incomplete-uploads")

      // --max-deletes 2: the first two old uploads in listing order (UTF-8: " spaced " then "<&\"'>.tar") go.
      // Exit 3: stopped by the cap, as for objects (the rest is left in place).
      const capped = await cli([...args, "--max-deletes", "2", "--yes"])
      assert.strictEqual(capped.code, 3, capped.stderr)
      assert.include(capped.stdout, "aborted 2 of 5 matching incomplete uploads")
      assert.include(capped.stdout, "stopped early: maxDeletes")
      const gone = [ids.old[2]!, ids.old[4]!]
      const left = (await uploads()).map((u) => u.uploadId).sort()
      assert.deepStrictEqual(left, [...ids.old.filter((id) => !gone.includes(id)), ids.excluded, ids.young].sort())
      // The completed objects under the same keys are all still there.
      assert.deepStrictEqual([...(await keys("mpu/"))].sort(), [...oldKeys].sort())
      for (const r of [plan, badCombo, capped]) noSecrets(r)
    },
    // Each run is a child process compiling the CLI from source: slow on a busy machine.
    120_000
  )

  it(
    "--min-size and --max-size take a byte count or a size (KB decimal, KiB binary), as rules' minSize/maxSize do",
    async () => {
      const sized = [...common(), "--prefix", "sized/"]
      const [kib, reversed, wrong] = await Promise.all([
        cli([...sized, "--min-size", "1KiB", "--max-size", "4000", "--dry-run", "--json"]),
        cli([...sized, "--min-size", "5KB", "--max-size", "1KB", "--yes"]),
        cli([...sized, "--min-size", "10XB", "--yes"])
      ])
      // 1KiB = 1024 bytes: 1500 ... 4000 (6 keys); 4500 is above 4000 bytes
      assert.strictEqual(kib.code, 0, kib.stderr)
      assert.deepStrictEqual([lastJson(kib.stdout)["matched"], lastJson(kib.stdout)["matchedBytes"]], [6, 16_500])
      assert.strictEqual(reversed.code, 2)
      assert.include(reversed.stderr, "--min-size (5000 bytes) is more than --max-size (1000 bytes)")
      assert.strictEqual(wrong.code, 2)
      assert.include(wrong.stderr + wrong.stdout, `--min-size: expected a byte count (1048576) or a size`)
      assert.include(wrong.stderr + wrong.stdout, `got "10XB"`)
      assert.strictEqual((await keys("sized/")).length, 10)
      // 1KB = 1000 bytes, 3.5kb = 3500: 1000 ... 3500 go (6 keys), 0, 500, 4000 and 4500 stay
      const real = await cli([...sized, "--min-size", "1KB", "--max-size", "3.5kb", "--yes", "--json"])
      assert.strictEqual(real.code, 0, real.stderr)
      assert.strictEqual(lastJson(real.stdout)["deleted"], 6)
      assert.deepStrictEqual(await keys("sized/"), ["sized/0", "sized/1", "sized/8", "sized/9"])
    },
    60_000
  )

  it("--write-budget paces the deletes (keys per second); a budget below 1 is refused, naming the flag", async () => {
    const [paced, zero] = await Promise.all([
      cli([...common(), "--prefix", "paced/", "--yes", "--json", "--write-budget", "100"]),
      cli([...common(), "--prefix", "paced/", "--yes", "--json", "--write-budget", "0"])
    ])
    assert.strictEqual(zero.code, 2)
    assert.include(zero.stderr + zero.stdout, "--write-budget")
    assert.strictEqual(paced.code, 0, paced.stderr)
    const s = lastJson(paced.stdout)
    assert.strictEqual(s["deleted"], 150)
    // 100 keys/s with a burst of one second's worth: the batch of 150 waits for the other 50 (half a second).
    assert.isAtLeast(s["durationMs"] as number, 450)
    assert.strictEqual((await keys("paced/")).length, 0)
  }, 60_000)

  it("interrupted by SIGINT or SIGTERM: in-flight batches finish, the summary is printed, exit 130 / 143", async () => {
    // A slow COS: every batch delete takes 1.5 s; one at a time.
    const slow = await Effect.runPromise(Scope.extend(
      CosFakeServer.start({ faults: { operations: { DeleteObjects: { latencyMs: 1500 } } } }),
      scope
    ))
    const count = (prefix: string) =>
      Effect.runPromise(Store.keys(slow.fake.store, bucket, prefix)).then((ks) => ks.length)
    await Effect.runPromise(Effect.all([
      Store.seed(slow.fake.store, { bucket, count: 6000, prefix: "int/" }),
      Store.seed(slow.fake.store, { bucket, count: 6000, prefix: "term/" })
    ]))
    const args = (prefix: string) => [
      "--bucket",
      bucket,
      "--region",
      CosFake.testRegion,
      "--endpoint",
      slow.url,
      "--prefix",
      prefix,
      "--concurrency",
      "1",
      "--yes",
      "--json"
    ]
    // The signal comes once the first batch is done, while the second is in flight.
    const signalAfterFirstBatch = (prefix: string, signal: NodeJS.Signals) => (child: ChildProcess) => {
      const timer = setInterval(() => {
        void count(prefix).then((n) => {
          if (n <= 5000) {
            clearInterval(timer)
            child.kill(signal)
          }
        })
      }, 100)
      child.on("close", () => clearInterval(timer))
    }
    const [int, term] = await Promise.all([
      cli(args("int/"), env, signalAfterFirstBatch("int/", "SIGINT")),
      cli(args("term/"), env, signalAfterFirstBatch("term/", "SIGTERM"))
    ])
    for (const [r, prefix, code] of [[int, "int/", 130], [term, "term/", 143]] as const) {
      assert.strictEqual(r.code, code, r.stderr)
      const s = lastJson(r.stdout)
      assert.strictEqual(s["stoppedBy"], "interrupted")
      assert.strictEqual(s["failed"], 0, "the batch in flight was let finish, not cut off")
      // What the summary says was deleted is what is gone: the first batch and the one in flight at the signal.
      const left = await count(prefix)
      assert.strictEqual(s["deleted"], 6000 - left)
      assert.isAtLeast(Number(s["deleted"]), 2000)
      assert.isBelow(Number(s["deleted"]), 6000)
      noSecrets(r)
    }
  }, 60_000)

  // util-linux `script` gives the CLI a pseudo-terminal, as a user at a terminal has.
  const hasScript = spawnSync("script", ["--version"]).status === 0

  it.skipIf(!hasScript)("on a terminal, shows the plan and asks before deleting", async () => {
    const command = [
      "node",
      "--conditions=source",
      "--import",
      "tsx",
      "packages/daemon/src/bin.ts",
      "purge",
      ...common(),
      "--prefix",
      "tty/"
    ]
      .join(" ")
    const result = await new Promise<Output>((resolve, reject) => {
      const child = spawn("script", ["-qefc", command, "/dev/null"], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ["pipe", "pipe", "pipe"]
      })
      let stdout = ""
      let answered = false
      child.stdout.on("data", (d) => {
        stdout += d
        if (!answered && stdout.includes("Delete these 1200 keys")) {
          answered = true
          child.stdin.write("y")
        }
      })
      child.on("error", reject)
      child.on("close", (code) => resolve({ code, stdout, stderr: "" }))
    })
    assert.strictEqual(result.code, 0, result.stdout)
    assert.include(result.stdout, "1200 of 1200 listed keys match")
    assert.include(result.stdout, "deleted 1200 of 1200 matching keys")
    assert.strictEqual((await keys("tty/")).length, 0)
    noSecrets(result)
  }, 60_000)
})
