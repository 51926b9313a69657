import { CosFake } from "@effect-cos/testkit"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import { vi } from "vitest"
import * as Cluster from "../src/Cluster.js"
import { layerSql } from "../src/State.js"
import * as StateStore from "../src/StateStore.js"
import {
  clusterSettings,
  credentials,
  day,
  fire,
  keyCount,
  seedKeys,
  setUp,
  startChildReplica,
  startRunner,
  waitUntil,
  writeClusterConfig
} from "./support/cluster.js"
import { readConfig } from "./support/config.js"
import { freePort, PgServer } from "./support/postgres.js"

// every test here waits on several conditions with bounds of 30-60 s each (runners starting, shards spread, runs):
// more than vitest's 30 s default on a loaded machine
vi.setConfig({ testTimeout: 240_000 })

const settingsFor = (url: string, endpoint: string, rules: ReadonlyArray<string>, schedule: string) =>
  clusterSettings(url, endpoint, rules.map((name) => ({ name, prefix: `${name}/`, schedule })))

layer(PgServer.Default, { timeout: 120_000, excludeTestServices: true })("cluster mode", (it) => {
  it.effect("two runners: every fire time of every rule runs exactly once, none is missed", () =>
    Effect.gen(function*() {
      const { pg, server, url } = yield* setUp("exactly_once")
      const rules = ["alpha", "beta", "gamma", "delta"]
      for (const name of rules) yield* seedKeys(server, `${name}/`, 20, (i) => (i < 10 ? 40 : 1) * day)
      const settings = settingsFor(url, server.url, rules, "*/2 * * * * *")
      // fire times skipped because the rule's previous run was still going (a loaded machine), from the log
      const skips: Array<string> = []
      const collect = Logger.make(({ annotations, message }) => {
        if (String(message).includes("skipped a scheduled run")) {
          skips.push(`${HashMap.unsafeGet(annotations, "rule")} ${HashMap.unsafeGet(annotations, "scheduledAt")}`)
        }
      })
      let began = 0
      let stoppedAt = 0
      yield* Effect.gen(function*() {
        const a = yield* startRunner(settings)
        const b = yield* startRunner(settings)
        // checked from here: both replicas are members (a loaded machine may take seconds to start them), and a
        // fire time due after a replica joined runs even while the scheduler is still moving to it
        began = Date.now()
        yield* Effect.sleep("9 seconds")
        stoppedAt = Date.now()
        // on a loaded machine a runner may lose a rule for a while (a lock refresh timing out): the fire times due
        // meanwhile come late, never never. Stop once every one checked below is answered
        yield* waitUntil(
          pg.psql(
            "SELECT count(*) FROM cluster_messages WHERE tag = 'fire' AND NOT processed " +
              `AND deliver_at < ${stoppedAt - 2_500}`,
            "exactly_once"
          ),
          (n) => n.trim() === "0",
          { every: "200 millis", within: "60 seconds" }
        )
        yield* Effect.all([a.stop, b.stop], { concurrency: 2 })
      }).pipe(Effect.provide(Logger.add(collect)))

      const rows = (yield* pg.psql(
        "SELECT rule, scheduled_at, status, trigger FROM runs ORDER BY id",
        "exactly_once"
      )).trim().split("\n").filter((l) => l !== "").map((l) => l.split("|"))
      // fire times that were due well before the stop, after both runners had started
      const due = (t: number) => t > began && t < stoppedAt - 2_500
      for (const rule of rules) {
        const runs = rows.filter((r) => r[0] === rule).map((r) => ({ at: Number(r[1]), status: r[2], trigger: r[3] }))
        // a run cut short (the stop at the end, or its runner losing the rule on a loaded machine) is interrupted and
        // resumed by the next run; a fire time never completes twice
        const completed = runs.filter((r) => r.status !== "interrupted").map((r) => r.at)
        assert.strictEqual(new Set(completed).size, completed.length, `${rule} ran a fire time twice: ${completed}`)
        assert.isTrue(runs.every((r) => r.status !== "failed"), JSON.stringify(runs))
        const expected: Array<number> = []
        for (let t = Math.ceil(began / 2000) * 2000; t < stoppedAt; t += 2000) if (due(t)) expected.push(t)
        assert.isAbove(expected.length, 0)
        for (const t of expected) {
          // each due fire time is decided once: it ran to the end, or was skipped as an overlap (as one daemon does)
          const skipped = skips.filter((s) => s === `${rule} ${new Date(t).toISOString()}`).length
          const ran = completed.filter((x) => x === t).length
          assert.strictEqual(
            ran + skipped,
            1,
            `${rule} at ${new Date(t).toISOString()}: ran ${ran}, skipped ${skipped}`
          )
        }
        assert.isAbove(completed.length, 0, `${rule} never ran`)
      }
      // each rule deleted its old keys (in its first run) and kept the young ones
      for (const rule of rules) {
        assert.strictEqual(yield* keyCount(server, `${rule}/`), 10)
      }
      const audit = (yield* pg.psql("SELECT count(*), count(DISTINCT key) FROM audit", "exactly_once")).trim()
      assert.strictEqual(audit, "40|40")

      // housekeeping: answered fire times leave the engine's tables once past the retention
      const messages = (sql: string) => pg.psql(sql, "exactly_once").pipe(Effect.map((out) => Number(out.trim())))
      const before = yield* messages("SELECT count(*) FROM cluster_messages WHERE processed")
      assert.isAbove(before, 0)
      const store = Either.getOrThrow(StateStore.fromSetting(url, "/"))
      const pruned = yield* Cluster.pruneMessages(0).pipe(Effect.provide(layerSql(store)))
      assert.strictEqual(pruned, before)
      assert.strictEqual(yield* messages("SELECT count(*) FROM cluster_messages WHERE processed"), 0)
      assert.strictEqual(
        yield* messages(
          "SELECT count(*) FROM cluster_replies r LEFT JOIN cluster_messages m ON m.id = r.request_id " +
            "WHERE m.id IS NULL"
        ),
        0
      )
    }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped))

  it.effect("the status page and /status of one replica show every runner and the rules it holds, escaped", () =>
    Effect.gen(function*() {
      const { server, url } = yield* setUp("status_page")
      const rules = ["alpha", "beta", "gamma", "delta"]
      const prefix = `<b>&"'/`
      const settingsOn = (httpPort: number) =>
        // once a year: nothing runs during the test
        clusterSettings(url, server.url, rules.map((name) => ({ name, prefix, schedule: "0 0 1 1 *" })), {
          host: "127.0.0.1",
          port: httpPort
        })
      const httpA = yield* freePort
      const httpB = yield* freePort
      const a = yield* startRunner(settingsOn(httpA))
      const b = yield* startRunner(settingsOn(httpB))
      yield* Effect.addFinalizer(() => Effect.all([a.stop, b.stop], { concurrency: 2 }))
      const get = (port: number, path: string) =>
        Effect.promise(async () => {
          const res = await fetch(`http://127.0.0.1:${port}${path}`)
          return { status: res.status, body: await res.text() }
        })
      const status = (port: number) => Effect.map(get(port, "/status"), (r) => JSON.parse(r.body))
      // once the engine has registered both runners and given out every rule's shard, each rule held by one of them,
      // and that for a second (a runner that has not seen the other yet still holds every rule)
      let stableSince: { held: string; at: number } | undefined
      const [statusA, statusB] = yield* Effect.all([status(httpA), status(httpB)]).pipe(
        Effect.filterOrFail(([sa, sb]) => {
          const held = JSON.stringify([sa.cluster.held, sb.cluster.held])
          const shared = sa.cluster.runners.length === 2 && sb.cluster.runners.length === 2 &&
            [...sa.cluster.held, ...sb.cluster.held].sort().join() === [...rules].sort().join()
          if (!shared) stableSince = undefined
          else if (stableSince?.held !== held) stableSince = { held, at: Date.now() }
          return stableSince !== undefined && Date.now() - stableSince.at >= 1000
        }),
        Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 300 }),
        Effect.orDieWith(() => new Error("the two runners did not share the rules out within 30 s"))
      )
      const addressA = `127.0.0.1:${a.port}`
      const addressB = `127.0.0.1:${b.port}`
      const holder = (name: string) => statusA.cluster.held.includes(name) ? addressA : addressB
      // one fire time of every rule, as the scheduler would send it: each runs on the runner holding its rule
      const fireAt = Date.now()
      for (const name of rules) yield* fire(a, fireAt, name)
      const ran = yield* status(httpA).pipe(
        Effect.filterOrFail((s) => s.rules.every((r: any) => r.lastRun?.status === "succeeded")),
        Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 300 }),
        Effect.orDieWith(() => new Error("the fire times did not run within 30 s"))
      )
      assert.deepStrictEqual(
        ran.rules.map((r: any) => [r.name, r.lastRun.runner]),
        rules.map((name) => [name, holder(name)])
      )
      assert.strictEqual(statusA.cluster.self, addressA)
      assert.deepStrictEqual(
        statusA.cluster.runners.map((r: any) => [r.address, r.healthy, r.self]),
        [[addressA, true, true], [addressB, true, false]].sort()
      )
      assert.deepStrictEqual(
        statusB.cluster.runners.map((r: any) => [r.address, r.self]),
        [[addressA, false], [addressB, true]].sort()
      )
      for (const r of statusA.cluster.runners) {
        // a heartbeat within the engine's lock expiry (5 s here), as this replica's clock sees it
        assert.isBelow(Math.abs(Date.now() - Date.parse(r.lastSeenAt)), 10_000, JSON.stringify(r))
      }
      assert.deepStrictEqual(
        statusA.rules.map((r: any) => [r.name, r.heldHere]),
        rules.map((name) => [name, statusA.cluster.held.includes(name)])
      )

      const page = yield* get(httpA, "/")
      assert.strictEqual(page.status, 200)
      assert.include(page.body, "cluster runners")
      assert.include(page.body, `<code>${addressA}</code> <span class="badge live">this replica</span>`)
      assert.include(page.body, `<code>${addressB}</code></td>`)
      assert.notInclude(page.body, `<code>${addressB}</code> <span class="badge live">`)
      assert.strictEqual(page.body.match(/>healthy</g)?.length, 2)
      for (const name of rules) {
        assert.include(
          page.body,
          statusA.cluster.held.includes(name)
            ? `<dt>held by</dt><dd>this replica (<code>${addressA}</code>)</dd>`
            : `<dt>held by</dt><dd><span class="muted">another runner</span></dd>`
        )
      }
      // each rule's run, with the runner that ran it (this replica or the other)
      assert.strictEqual(
        page.body.match(/<td><code>127\.0\.0\.1:\d+<\/code><\/td><td class="err">/g)?.length,
        rules.length
      )
      for (const name of rules) {
        const section = page.body.split("<section").find((part) => part.includes(`<h2>${name}</h2>`))
        assert.include(section, `<td><code>${holder(name)}</code></td><td class="err">`)
      }
      // the prefix is shown as text only
      assert.notInclude(page.body, "<b>")
      assert.include(page.body, `<code>&quot;&lt;b&gt;&amp;\\&quot;&#39;/&quot;</code>`)

      // a split run in progress (its plan, as ClusterSplit writes it): /status and the page say who runs which chunk
      const runId = ran.rules[0].lastRun.id
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`INSERT INTO cos_retention_split_chunks
          (rule, scheduled_at, chunk, chunks, run_id, entity_id, after_key, through_key, checkpoint, status, attempts,
           runner)
          VALUES ('alpha', ${fireAt}, 0, 2, ${runId}, 'alpha/0', '', 'm', 'f<&', 'running', 1, ${addressB}),
                 ('alpha', ${fireAt}, 1, 2, ${runId}, 'alpha/1', 'm', NULL, NULL, 'succeeded', 1, ${addressA})`
      }).pipe(Effect.provide(layerSql(Either.getOrThrow(StateStore.fromSetting(url, "/")))))
      const withChunks = yield* status(httpA)
      assert.deepStrictEqual(withChunks.cluster.chunks, [{
        rule: "alpha",
        runId,
        chunk: 0,
        chunks: 2,
        status: "running",
        runner: addressB,
        attempts: 1,
        checkpoint: "f<&"
      }])
      const pageWithChunks = yield* get(httpA, "/")
      assert.include(pageWithChunks.body, "split runs in progress")
      assert.include(
        pageWithChunks.body,
        `<td>1 of 2</td><td><span class="badge live">running</span></td><td><code>${addressB}</code>`
      )
      assert.notInclude(pageWithChunks.body, "<td>2 of 2</td>")
    }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped))

  it.effect(
    "a runner SIGKILLed mid-run: another takes the rule over and resumes the run from its checkpoint",
    () =>
      Effect.gen(function*() {
        const { pg, server, url } = yield* setUp("failover", {
          faults: { operations: { DeleteObjects: { latencyMs: 100 } } }
        })
        const keys = 2500
        const young = 300
        yield* seedKeys(server, "logs/old/", keys, 40 * day)
        yield* seedKeys(server, "logs/new/", young, day)
        const count = (p: string) => keyCount(server, p)
        const config = yield* writeClusterConfig("cluster", {
          endpoint: server.url,
          state: url,
          rules: `  - name: expire-logs
    bucket: ${CosFake.testBucket}
    prefix: logs/
    olderThan: 30d
    schedule: "*/2 * * * * *"
    batchSize: 100
    concurrency: 2
`
        })
        // replica A, alone at first, so it owns the rule; SIGKILLed once it has deleted a good part
        const { child: a } = yield* startChildReplica(config.path)
        yield* waitUntil(count("logs/old/"), (n) => n <= keys - 1200, {
          every: "5 millis",
          // (a child process compiling the daemon from source: slow on a loaded machine)
          within: "90 seconds",
          message: () => JSON.stringify(a.lines.slice(-20), null, 1)
        })
        a.kill("SIGKILL")
        yield* Effect.promise(() => a.exit)
        const killedAt = Date.now()
        const leftAtKill = yield* count("logs/old/")
        assert.isAbove(leftAtKill, 0, "the run finished before the kill")

        // replica B joins; once A's shard locks expire it owns the rule and the unanswered fire time comes to it
        const b = yield* startRunner(readConfig(config))
        yield* waitUntil(
          Effect.gen(function*() {
            const left = yield* count("logs/old/")
            const running = (yield* pg.psql("SELECT count(*) FROM runs WHERE status = 'running'", "failover")).trim()
            return left === 0 && running === "0"
          }),
          (done) => done,
          { every: "100 millis", within: "60 seconds", message: () => "the run was not resumed within 60 s" }
        )
        const takeoverMs = Date.now() - killedAt
        yield* b.stop
        console.log(`failover: the run resumed and finished ${takeoverMs} ms after the SIGKILL`)

        assert.strictEqual(yield* count("logs/new/"), young)
        const runs = (yield* pg.psql(
          "SELECT id, status, trigger, coalesce(resumed_from, ''), scheduled_at, deleted FROM runs ORDER BY id",
          "failover"
        )).trim().split("\n").map((l) => l.split("|"))
        const killed = runs[0]!
        // the killed run: marked interrupted by the new owner, credited with what the audit proves it deleted
        assert.strictEqual(killed[1], "interrupted")
        const resumed = runs.find((r) => r[2] === "resume")
        assert.isDefined(resumed, JSON.stringify(runs))
        assert.notStrictEqual(resumed![3], "", "the resumed run started from the checkpoint")
        assert.strictEqual(resumed![1], "succeeded")
        // every old key deleted exactly once in the audit, no young key
        const audit = (yield* pg.psql(
          "SELECT count(*), count(DISTINCT key), count(*) FILTER (WHERE key LIKE 'logs/new/%') FROM audit " +
            "WHERE state = 'deleted'",
          "failover"
        )).trim()
        assert.strictEqual(audit, `${keys}|${keys}|0`)
        const pending = (yield* pg.psql(
          "SELECT (SELECT count(*) FROM audit WHERE state = 'pending') + (SELECT count(*) FROM audit_intents)",
          "failover"
        )).trim()
        assert.strictEqual(pending, "0")
        const credited = runs.reduce((n, r) => n + Number(r[5]), 0)
        assert.strictEqual(credited, keys, JSON.stringify(runs))
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )

  it.effect(
    "every replica stopped mid-run (SIGTERM) and started again: the fire time's run resumes once",
    () =>
      Effect.gen(function*() {
        const { pg, server, url } = yield* setUp("restart_all", {
          faults: { operations: { DeleteObjects: { latencyMs: 100 } } }
        })
        const keys = 2500
        yield* seedKeys(server, "logs/", keys, 40 * day)
        const count = keyCount(server, "logs/")
        const base = clusterSettings(url, server.url, [{
          name: "logs",
          prefix: "logs/",
          // once a year: only the first fire time matters here
          schedule: "0 0 1 1 *",
          batchSize: 100,
          concurrency: 1
        }])
        // the fire time is due now: send it as the scheduler would
        const firstRunners = yield* Effect.all([startRunner(base), startRunner(base)])
        const fireAt = Date.now()
        yield* fire(firstRunners[0]!, fireAt)
        yield* waitUntil(count, (n) => n <= keys - 1200, { every: "5 millis", within: "60 seconds" })
        // the checkpoint advances once a listed range is wholly handled: wait for it, so that the stop below
        // interrupts a run that has one (how fast the ranges finish depends on the machine)
        yield* waitUntil(pg.psql("SELECT count(*) FROM checkpoints", "restart_all"), (n) => n.trim() !== "0", {
          every: "5 millis",
          within: "60 seconds"
        })
        // both stop (as on SIGTERM): the run is recorded interrupted with its checkpoint, the fire time stays unanswered
        yield* Effect.all(firstRunners.map((r) => r.stop), { concurrency: 2 })
        const leftAtStop = yield* count
        assert.isAbove(leftAtStop, 0, "the run finished before the stop")
        // (the replica stopping second may have taken the rule over from the first, and been stopped in turn)
        const stopped = (yield* pg.psql("SELECT DISTINCT status FROM runs", "restart_all")).trim()
        assert.strictEqual(stopped, "interrupted")

        const again = yield* Effect.all([startRunner(base), startRunner(base)])
        yield* waitUntil(
          Effect.gen(function*() {
            const left = yield* count
            const done = (yield* pg.psql("SELECT count(*) FROM runs WHERE status = 'succeeded'", "restart_all")).trim()
            return left === 0 && done === "1"
          }),
          (done) => done,
          { every: "100 millis", within: "60 seconds", message: () => "the run was not resumed within 60 s" }
        )
        yield* Effect.all(again.map((r) => r.stop), { concurrency: 2 })
        const runs = (yield* pg.psql(
          "SELECT status, trigger, scheduled_at, coalesce(resumed_from, '') <> '' FROM runs ORDER BY id",
          "restart_all"
        )).trim().split("\n").map((l) => l.split("|"))
        // one fire time: interrupted runs, then the one that finished it, resumed from the checkpoint
        assert.isTrue(runs.every((r) => r[2] === String(fireAt)), JSON.stringify(runs))
        assert.deepStrictEqual(runs[0]!.slice(0, 2), ["interrupted", "schedule"])
        assert.isTrue(runs.slice(1, -1).every((r) => r[0] === "interrupted"), JSON.stringify(runs))
        assert.deepStrictEqual(runs[runs.length - 1], ["succeeded", "resume", String(fireAt), "t"])
        const audit = (yield* pg.psql(
          "SELECT count(*), count(DISTINCT key) FROM audit WHERE state = 'deleted'",
          "restart_all"
        )).trim()
        assert.strictEqual(audit, `${keys}|${keys}`)
      }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped),
    240_000
  )
})
