import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { runDemo } from "../src/cli/demo.js"
import * as Daemon from "../src/Daemon.js"
import { State } from "../src/State.js"
import { readConfig, writeConfig } from "./support/config.js"
import { cosRetentionJsonLogs, fakeCredentials } from "./support/inProcess.js"
import { seedKeys } from "./support/seed.js"

const day = 86_400_000

/** `cos-retention <args>` in process, with JSON log lines. */
const cosRetention = cosRetentionJsonLogs

describe("cos-retention CLI", () => {
  it.live("validate, plan, once (exit 1 on failure), history", () =>
    Effect.gen(function*() {
      const server = yield* CosFakeServer.start({})
      yield* seedKeys(server, "logs/", 50, (i) => (i < 30 ? 40 : 1) * day, 1000)
      const rule = (name: string, bucket: string) => `
  - name: ${name}
    bucket: ${bucket}
    prefix: logs/
    olderThan: 30d
    schedule: "0 3 * * *"`
      const { dir, path: config } = yield* writeConfig("cli", () =>
        `cos: { region: ${CosFake.testRegion}, endpoint: ${server.url} }
rules:${rule("expire-logs", CosFake.testBucket)}${rule("wrong-key", CosFake.testBucket)}
    credentials: { secretKey: not-the-right-key }
    enabled: false
`)

      const validate = yield* cosRetention("validate", "--config", config)
      assert.strictEqual(validate.code, 0)
      assert.match(validate.stdout, /valid, 2 rule\(s\)/)
      assert.match(validate.stdout, /expire-logs\s+yes\s+examplebucket-1250000000\/logs\/\s+older than 30d/)

      const plan = yield* cosRetention("plan", "--config", config, "--json")
      assert.strictEqual(plan.code, 0, plan.stderr)
      const planned = JSON.parse(plan.stdout)
      assert.deepStrictEqual(planned.map((r: any) => [r.rule, r.listed, r.matched, r.matchedBytes]), [
        ["expire-logs", 50, 30, 30_000]
      ])
      assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length, 50)
      assert.isFalse(NodeFs.existsSync(NodePath.join(dir, "cos-retention.db")), "plan writes no state")

      const once = yield* cosRetention("once", "--config", config)
      assert.strictEqual(once.code, 0, once.stderr)
      assert.match(once.stdout, /expire-logs\s+succeeded\s+30\s+30/)
      assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, "logs/")).length, 20)

      // the disabled rule, named explicitly, runs (with a wrong key written in the file) and fails: exit 1
      const failing = yield* cosRetention("once", "--config", config, "--rule", "wrong-key", "--json")
      assert.strictEqual(failing.code, 1)
      const [failed] = JSON.parse(failing.stdout)
      assert.strictEqual(failed.status, "failed")
      assert.match(failed.error, /SignatureDoesNotMatch/)
      assert.include(failing.stderr, "rules[1].credentials.secretKey: a secret is written in the config file")
      assert.notInclude(failing.stdout + failing.stderr, "not-the-right-key")

      const unknown = yield* cosRetention("once", "--config", config, "--rule", "nope")
      assert.strictEqual(unknown.code, 2)
      assert.match(unknown.stderr, /no rule named "nope"/)

      const history = yield* cosRetention("history", "--config", config, "--json")
      assert.strictEqual(history.code, 0)
      assert.deepStrictEqual(JSON.parse(history.stdout).map((r: any) => [r.rule, r.status, r.deleted]), [
        ["wrong-key", "failed", 0],
        ["expire-logs", "succeeded", 30]
      ])
      for (const output of [validate, plan, once, failing, history]) {
        assert.notInclude(output.stdout + output.stderr, Redacted.value(CosFake.testCredentials.secretKey))
      }

      const bad = yield* cosRetention("validate", "--config", NodePath.join(dir, "nope.yaml"))
      assert.notStrictEqual(bad.code, 0)
    }).pipe(
      Effect.withConfigProvider(fakeCredentials),
      Effect.scoped
    ), 20_000)

  it.live(
    "once stopped by a rule's cap (maxDeletes, maxDeleteSize): exit 3, the cap named, the rest left in place",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        const bucket = CosFake.testBucket
        yield* Store.seed(server.fake.store, { bucket, count: 30, prefix: "logs/", ageMs: () => 40 * day, size: 1000 })
        yield* Store.seed(server.fake.store, { bucket, count: 30, prefix: "tmp/", ageMs: () => 40 * day, size: 1000 })
        const { dir, path: config } = yield* writeConfig("cap", () =>
          `cos: { region: ${CosFake.testRegion}, endpoint: ${server.url} }
rules:
  - { name: few-keys, bucket: ${bucket}, prefix: logs/, olderThan: 30d, schedule: "0 3 * * *", maxDeletes: 10 }
  - { name: few-bytes, bucket: ${bucket}, prefix: tmp/, olderThan: 30d, schedule: "0 3 * * *", maxDeleteSize: 5.5KB }
`)
        const byKeys = yield* cosRetention("once", "--config", config, "--rule", "few-keys", "--json")
        assert.strictEqual(byKeys.code, 3, byKeys.stderr)
        assert.include(
          byKeys.stderr,
          `rule "few-keys" stopped by the rule's cap (maxDeletes: 10) after deleting 10 keys: 20 matched keys ` +
            `(20000 bytes) left in place`
        )
        const [row] = JSON.parse(byKeys.stdout)
        assert.deepStrictEqual([row.status, row.deleted, row.summary.stoppedBy], ["succeeded", 10, "maxDeletes"])
        assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "logs/")).length, 20)

        // both rules: the size cap stops the second one (5 keys of 1000 bytes fit in 5,500): exit 3, in the table too
        const both = yield* cosRetention("once", "--config", config)
        assert.strictEqual(both.code, 3, both.stderr)
        assert.include(
          both.stderr,
          `rule "few-bytes" stopped by the rule's cap (maxDeleteSize: 5500 bytes) after deleting 5 keys: 25 matched ` +
            `keys (25000 bytes) left in place`
        )
        assert.match(both.stdout, /few-bytes\s+succeeded\s+30\s+5\s.*stopped by the rule's cap/)
        assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "tmp/")).length, 25)
        assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "logs/")).length, 10)

        // the audit holds exactly what was deleted; history shows why the runs stopped
        const history = yield* cosRetention("history", "--config", config, "--json")
        const runs = JSON.parse(history.stdout).map((
          r: any
        ) => [r.rule, r.status, r.deleted, /cap/.test(r.error ?? "")])
        assert.deepStrictEqual(runs, [
          ["few-bytes", "succeeded", 5, true],
          ["few-keys", "succeeded", 10, true],
          ["few-keys", "succeeded", 10, true]
        ])
        const audit = yield* Effect.flatMap(State, (state) =>
          state.audit()).pipe(
            Effect.provide(State.layerReadonly(NodePath.join(dir, "cos-retention.db")))
          )
        assert.deepStrictEqual(
          audit.map((a) =>
            a.state
          ),
          Array(25).fill("deleted")
        )
        const gone = new Set(audit.map((a) => a.key))
        for (const key of yield* Store.keys(server.fake.store, bucket, "")) assert.isFalse(gone.has(key), key)

        // the cap reached exactly (the last 10 keys, maxDeletes 10): everything matched is deleted, exit 0
        const rest = yield* cosRetention("once", "--config", config, "--rule", "few-keys")
        assert.strictEqual(rest.code, 0, rest.stderr)
        assert.notInclude(rest.stderr, "stopped by the rule's cap")
        assert.strictEqual((yield* Store.keys(server.fake.store, bucket, "logs/")).length, 0)
      }).pipe(Effect.withConfigProvider(fakeCredentials), Effect.scoped),
    20_000
  )

  it.live(
    "a target: incomplete-uploads rule, once: old uploads aborted and audited with their ids, the rest kept",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        const store = server.fake.store
        const bucket = CosFake.testBucket
        const oldKeys = ["tmp/\u{1F4E6}.tar", "tmp/cafe\u0301.tar", "tmp/ spaced ", "tmp/line\nbreak", "tmp/<&\"'>.tar"]
        const old: Array<readonly [string, string]> = []
        for (const key of oldKeys) {
          old.push([key, yield* Store.initiateUpload(store, { bucket, key, partSizes: [8], ageMs: 10 * day })])
          yield* Store.putObject(store, { bucket, key, body: "completed" })
        }
        old.push([oldKeys[0]!, yield* Store.initiateUpload(store, { bucket, key: oldKeys[0]!, ageMs: 9 * day })])
        const excluded = yield* Store.initiateUpload(store, { bucket, key: "tmp/keep/x.tar", ageMs: 10 * day })
        const young = yield* Store.initiateUpload(store, { bucket, key: "tmp/young.tar", ageMs: 1 * day })
        const { dir, path: config } = yield* writeConfig("mpu", () =>
          `cos: { region: ${CosFake.testRegion}, endpoint: ${server.url} }
rules:
  - name: abort-stale-uploads
    bucket: ${bucket}
    prefix: tmp/
    target: incomplete-uploads
    olderThan: 7d
    exclude: ["tmp/keep/**"]
    schedule: "0 4 * * *"
`)
        const once = yield* cosRetention("once", "--config", config, "--json")
        assert.strictEqual(once.code, 0, once.stderr)
        const [row] = JSON.parse(once.stdout)
        assert.deepStrictEqual([row.status, row.matched, row.deleted, row.failed], ["succeeded", 6, 6, 0])
        const left = (yield* Store.uploads(store, bucket)).map((u) =>
          u.uploadId
        ).sort()
        assert.deepStrictEqual(left, [excluded, young].sort())
        assert.deepStrictEqual(
          [...(yield* Store.keys(store, bucket, "tmp/"))].sort(),
          [...oldKeys].sort(),
          "completed objects are untouched"
        )
        // The audit: one row per aborted upload, with its key and upload id (two uploads of one key included).
        const audit = yield* Effect.flatMap(State, (state) => state.audit({ rule: "abort-stale-uploads" })).pipe(
          Effect.provide(State.layerFile(NodePath.join(dir, "cos-retention.db")))
        )
        const pairs = (xs: ReadonlyArray<readonly [string, string]>) => xs.map(([k, id]) => `${k}|${id}`).sort()
        assert.deepStrictEqual(pairs(audit.map((a) => [a.key, a.uploadId!] as const)), pairs(old))
        assert.isTrue(audit.every((a) => a.state === "deleted" && a.versionId === ""))

        // A rule that mixes the targets' fields is refused with the field named.
        NodeFs.writeFileSync(
          config,
          `cos: { region: ${CosFake.testRegion}, endpoint: ${server.url} }
rules:
  - name: bad
    bucket: ${bucket}
    prefix: tmp/
    target: incomplete-uploads
    minSize: 1MB
    schedule: "0 4 * * *"
`
        )
        const invalid = yield* cosRetention("validate", "--config", config)
        assert.notStrictEqual(invalid.code, 0)
        assert.include(
          invalid.stderr + invalid.stdout,
          "rules[0].olderThan: a target: incomplete-uploads rule needs olderThan"
        )
        assert.include(
          invalid.stderr + invalid.stdout,
          "rules[0].minSize: does not apply to target: incomplete-uploads"
        )
      }).pipe(
        Effect.withConfigProvider(fakeCredentials),
        Effect.scoped
      ),
    20_000
  )

  it.live(
    "the demo runs in a few seconds against the in-memory fake and reports each rule",
    () =>
      Effect.gen(function*() {
        const before = NodeFs.readdirSync(process.cwd())
        const started = Date.now()
        const report = yield* runDemo
        assert.isBelow(Date.now() - started, 5000)
        for (const name of ["expire-logs", "rotate-backups", "prune-report-versions", "tmp-uploads"]) {
          assert.include(report, name)
        }
        assert.match(report, /expire-logs\s+succeeded\s+1560\s+1080\s+480/)
        assert.match(report, /rotate-backups\s+succeeded\s+100\s+79\s+21/)
        assert.match(report, /tmp-uploads\s+succeeded \(dry run\)\s+200\s+0\s+200/)
        assert.match(report, /would delete 140/)
        assert.deepStrictEqual(NodeFs.readdirSync(process.cwd()), before, "the demo leaves no files behind")
      }),
    20_000
  )
})

describe("cos-retention history on a daemon's state", () => {
  it.scopedLive("history --json shows each scheduled run's fire time, as in cluster mode", () =>
    Effect.gen(function*() {
      const server = yield* CosFakeServer.start({})
      yield* seedKeys(server, "logs/", 5, 40 * day)
      const { dir, path: config } = yield* writeConfig(
        "scheduled",
        () =>
          `cos: { region: ${CosFake.testRegion}, endpoint: ${server.url} }
state: state.db
http: { enabled: false }
rules:
  - { name: every-second, bucket: ${CosFake.testBucket}, prefix: logs/, olderThan: 30d, schedule: "* * * * * *" }
`
      )
      const settings = readConfig({ dir, path: config })
      const started = Date.now()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(Daemon.layer(settings))
        yield* Effect.sleep("2500 millis")
      })).pipe(Effect.withConfigProvider(fakeCredentials))
      const history = yield* cosRetention("history", "--config", config, "--json")
      assert.strictEqual(history.code, 0, history.stderr)
      const runs: Array<any> = JSON.parse(history.stdout)
      assert.isAbove(runs.length, 0)
      for (const run of runs) {
        assert.strictEqual(run.trigger, "schedule")
        // the fire time, on the second, at or before the run started
        const at = Date.parse(run.scheduledAt)
        assert.strictEqual(at % 1000, 0, JSON.stringify(run))
        assert.isAtLeast(at, started - 1000)
        assert.isAtMost(at, Date.parse(run.startedAt))
      }
      assert.strictEqual(new Set(runs.map((r) => r.scheduledAt)).size, runs.length)
    }))
})
