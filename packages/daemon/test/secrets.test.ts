/**
 * Secrets never leak: every `cos-retention` command and the daemon itself run as child processes with known,
 * distinctive secret values (COS_SECRET_KEY, COS_SECURITY_TOKEN, a secret written in the config file, a wrong
 * secret), against the testkit's socket server. None of them may appear in any stdout or stderr line (logs, errors,
 * summaries, in JSON or pretty form), in `/metrics`, `/status`, `/healthz`, or in the SQLite state file.
 */
import { CosFake, Store } from "@effect-cos/testkit"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { fakeTarget, sharedFake } from "./support/fakeServer.js"

const repo = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "../../..")
const bucket = CosFake.testBucket
const DAY = 86_400_000

// Distinctive values, and fragments of them: a secret must not leak whole, nor cut short.
const secretId = "AKIDh5SecretsTest000000000000000000001"
const secretKey = "h5SECRETKEY-zq8Xw3Jv-distinctive-0001"
const securityToken = "h5SECURITYTOKEN-Pq7Lm2Ty-distinctive-0002"
const fileSecretKey = "h5FILESECRET-Rk4Nb9Qe-written-in-yaml-0003"
const wrongSecretKey = "h5WRONGSECRET-Gm5Vc1Hs-not-accepted-0004"
const secrets = [secretKey, securityToken, fileSecretKey, wrongSecretKey]
const fragments = ["zq8Xw3Jv", "Pq7Lm2Ty", "Rk4Nb9Qe", "Gm5Vc1Hs"]

const env = { COS_SECRET_ID: secretId, COS_SECRET_KEY: secretKey, COS_SECURITY_TOKEN: securityToken }

/** Every place a secret was found in `text`, as "<where>: ...context..." (empty: none). */
const leaks = (where: string, text: string): Array<string> => {
  const out: Array<string> = []
  for (const s of [...secrets, ...fragments]) {
    const i = text.indexOf(s)
    if (i >= 0) out.push(`${where}: ${JSON.stringify(text.slice(Math.max(0, i - 80), i + s.length + 20))}`)
  }
  return out
}

const outputs: Array<{ readonly what: string; readonly text: string }> = []

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

interface Running {
  readonly result: Promise<Result>
  readonly stderrSoFar: () => string
  readonly kill: (signal: NodeJS.Signals) => void
}

/** Runs `cos-retention <args>` from source with `childEnv` (and no other COS_ variable). */
const start = (args: ReadonlyArray<string>, childEnv: Record<string, string> = env): Running => {
  const base: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("COS_")) base[k] = v
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "packages/daemon/src/bin.ts", ...args],
    { cwd: repo, env: { ...base, ...childEnv }, stdio: ["ignore", "pipe", "pipe"] }
  )
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d) => (stdout += d))
  child.stderr.on("data", (d) => (stderr += d))
  const result = new Promise<Result>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code) => {
      outputs.push({ what: `cos-retention ${args.join(" ")} (stdout)`, text: stdout })
      outputs.push({ what: `cos-retention ${args.join(" ")} (stderr)`, text: stderr })
      resolve({ code, stdout, stderr })
    })
  })
  return { result, stderrSoFar: () => stderr, kill: (signal) => child.kill(signal) }
}

const cli = (args: ReadonlyArray<string>, childEnv?: Record<string, string>) => start(args, childEnv).result

const purgeArgs = (prefix: string) => [
  "purge",
  ...fakeTarget(fake.server.url),
  "--prefix",
  prefix,
  "--older-than",
  "1d",
  "--yes"
]

const config = (extra = "") =>
  `cos:
  region: ${CosFake.testRegion}
  endpoint: ${fake.server.url}
  timeout: 5s
state: state.db
http: { port: 0 }
gracePeriod: 2s
rules:
  - name: expire-logs
    bucket: ${bucket}
    prefix: logs/
    olderThan: 1d
    schedule: "* * * * * *"
    batchSize: 50
  - name: planned-only
    bucket: ${bucket}
    prefix: plan/
    olderThan: 1d
    schedule: "0 3 * * *"
    dryRun: true
${extra}`

const fake = sharedFake(
  "secrets",
  {
    credentials: [
      { secretId, secretKey: Redacted.make(secretKey), securityToken: Redacted.make(securityToken) },
      // The config-file credential (rule `from-file`), without a token.
      { secretId: "AKIDh5FileSecret00000000000000000003", secretKey: Redacted.make(fileSecretKey) }
    ]
  },
  (store) => [
    Store.seed(store, { bucket, count: 300, prefix: "logs/", ageMs: 3 * DAY, size: 10 }),
    Store.seed(store, { bucket, count: 200, prefix: "plan/", ageMs: 3 * DAY }),
    Store.seed(store, { bucket, count: 120, prefix: "purge-json/", ageMs: 3 * DAY }),
    Store.seed(store, { bucket, count: 120, prefix: "purge-text/", ageMs: 3 * DAY }),
    Store.seed(store, { bucket, count: 50, prefix: "wrong/", ageMs: 3 * DAY }),
    Store.seed(store, { bucket, count: 50, prefix: "file/", ageMs: 3 * DAY })
  ]
)

beforeAll(() => {
  NodeFs.writeFileSync(NodePath.join(fake.dir, "retention.yaml"), config())
  NodeFs.writeFileSync(
    NodePath.join(fake.dir, "in-file.yaml"),
    config(`  - name: from-file
    bucket: ${bucket}
    prefix: file/
    olderThan: 1d
    schedule: "0 4 * * *"
    credentials:
      secretId: AKIDh5FileSecret00000000000000000003
      secretKey: ${fileSecretKey}
`).replace("state: state.db", "state: in-file.db")
  )
})

interface Outcomes {
  readonly purgeJson: Result
  readonly purgeText: Result
  readonly purgeWrong: Result
  readonly validate: Result
  readonly plan: Result
  readonly once: Result
  readonly daemon: Result
  readonly pages: ReadonlyArray<readonly [string, string]>
}

let outcomes: Outcomes

/** Waits until `re` matches the daemon's stderr so far. */
const waitFor = async (running: Running, re: RegExp, ms: number) => {
  const until = Date.now() + ms
  for (;;) {
    const m = re.exec(running.stderrSoFar())
    if (m !== null) return m
    if (Date.now() > until) throw new Error(`no ${re} in:\n${running.stderrSoFar().slice(-2000)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The daemon, briefly: started, one scheduled run completed, its HTTP pages read, then SIGTERM. */
const daemonRun = async () => {
  const daemon = start(["run", "--config", NodePath.join(fake.dir, "retention.yaml"), "--log-format", "json"])
  try {
    const port = (await waitFor(daemon, /status server listening on http:\/\/127\.0\.0\.1:(\d+)/, 60_000))[1]
    await waitFor(daemon, /"message":"run succeeded"/, 60_000)
    const pages: Array<readonly [string, string]> = []
    for (const path of ["/metrics", "/status", "/healthz", "/readyz"]) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`)
      pages.push([path, await res.text()])
    }
    daemon.kill("SIGTERM")
    return { daemon: await daemon.result, pages }
  } catch (e) {
    daemon.kill("SIGKILL")
    throw e
  }
}

describe("secrets never leak", () => {
  beforeAll(async () => {
    const cfg = NodePath.join(fake.dir, "retention.yaml")
    const inFile = NodePath.join(fake.dir, "in-file.yaml")
    // Every process at once: each start costs a couple of seconds of loading TypeScript.
    const [purgeJson, purgeText, purgeWrong, validate, plan, once, run] = await Promise.all([
      cli([...purgeArgs("purge-json/"), "--json"]),
      cli(purgeArgs("purge-text/")),
      cli([...purgeArgs("wrong/"), "--json"], { ...env, COS_SECRET_KEY: wrongSecretKey }),
      cli(["validate", "--config", inFile]),
      cli(["plan", "--config", cfg, "--json", "--log-format", "pretty"]),
      cli(["once", "--config", inFile, "--json", "--log-format", "json"]),
      daemonRun()
    ])
    outcomes = { purgeJson, purgeText, purgeWrong, validate, plan, once, daemon: run.daemon, pages: run.pages }
  }, 90_000)

  const clean = (r: Result) => assert.deepStrictEqual([...leaks("stdout", r.stdout), ...leaks("stderr", r.stderr)], [])

  it.effect("purge, with --json and without: done, and no secret printed", () =>
    Effect.gen(function*() {
      const { purgeJson, purgeText } = outcomes
      assert.strictEqual(purgeJson.code, 0, purgeJson.stderr)
      assert.strictEqual(purgeText.code, 0, purgeText.stderr)
      assert.strictEqual((yield* Store.keys(fake.server.fake.store, bucket, "purge-json/")).length, 0)
      assert.strictEqual((yield* Store.keys(fake.server.fake.store, bucket, "purge-text/")).length, 0)
      clean(purgeJson)
      clean(purgeText)
    }))

  it.effect("purge with a wrong secret: fails naming SignatureDoesNotMatch, deletes nothing, shows no secret", () =>
    Effect.gen(function*() {
      const r = outcomes.purgeWrong
      assert.notStrictEqual(r.code, 0)
      assert.include(r.stdout + r.stderr, "SignatureDoesNotMatch")
      assert.strictEqual((yield* Store.keys(fake.server.fake.store, bucket, "wrong/")).length, 50)
      clean(r)
    }))

  it.effect("validate, plan and once (secrets in the environment and in the file)", () =>
    Effect.gen(function*() {
      const { once, plan, validate } = outcomes
      for (const r of [validate, plan, once]) {
        assert.strictEqual(r.code, 0, r.stderr.slice(-1000))
        clean(r)
      }
      // The rule with its secret in the file did run with it.
      assert.strictEqual((yield* Store.keys(fake.server.fake.store, bucket, "file/")).length, 0)
    }))

  it("the daemon: logs, /metrics, /status, /healthz, /readyz; exit 0 on SIGTERM", () => {
    const { daemon, pages } = outcomes
    assert.strictEqual(daemon.code, 0, daemon.stderr.slice(-2000))
    assert.include(pages[0]![1], "cos_retention_runs_total")
    assert.include(pages[1]![1], "expire-logs")
    for (const [path, body] of pages) assert.deepStrictEqual(leaks(path, body), [])
    clean(daemon)
  })

  it("the state databases (and their journal files) hold no secret", () => {
    const files = NodeFs.readdirSync(fake.dir).filter((f) => f.startsWith("state.db") || f.startsWith("in-file.db"))
    assert.isAtLeast(files.length, 2)
    for (const f of files) {
      assert.deepStrictEqual(leaks(f, NodeFs.readFileSync(NodePath.join(fake.dir, f)).toString("latin1")), [])
    }
  })

  it("no output of any command held a secret", () => {
    assert.strictEqual(outputs.length, 14)
    assert.deepStrictEqual(outputs.flatMap((o) => leaks(o.what, o.text)), [])
  })
})
