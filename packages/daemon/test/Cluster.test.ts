import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Cluster from "../src/Cluster.js"
import * as Config from "../src/Config.js"
import { Purger } from "../src/Purger.js"
import { freePort, PgServer } from "./support/postgres.js"

const day = 86_400_000

/** The engine with short intervals: a dead runner's shards move within a few seconds. */
const fast = {
  shardsPerGroup: 12,
  shardLockRefreshInterval: Duration.millis(500),
  shardLockExpiration: Duration.seconds(3),
  entityMessagePollInterval: Duration.millis(250),
  entityReplyPollInterval: Duration.millis(100),
  refreshAssignmentsInterval: Duration.millis(250),
  runnerHealthCheckInterval: Duration.seconds(1),
  sendRetryInterval: Duration.millis(100)
}

const credentials = ConfigProvider.fromMap(
  new Map([
    ["COS_SECRET_ID", CosFake.testCredentials.secretId],
    ["COS_SECRET_KEY", Redacted.value(CosFake.testCredentials.secretKey)]
  ])
)

const settingsFor = (url: string, endpoint: string, rules: ReadonlyArray<string>, schedule: string) =>
  Either.getOrThrow(Config.decode({
    cos: { region: CosFake.testRegion, endpoint },
    state: url,
    http: { enabled: false },
    gracePeriod: "2s",
    rules: rules.map((name) => ({
      name,
      bucket: CosFake.testBucket,
      prefix: `${name}/`,
      olderThan: "30d",
      schedule
    }))
  }, { source: "test", baseDir: "/" }))

/** Starts one runner (a replica) in this process; closing the returned scope stops it. */
const startRunner = (settings: Config.RetentionConfig) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const scope = yield* Scope.make()
    yield* Layer.buildWithScope(
      Cluster.layerWith(settings, Purger.Default, { runnerAddress: { host: "127.0.0.1", port }, sharding: fast }),
      scope
    )
    return { port, stop: Scope.close(scope, Exit.void) }
  })

layer(PgServer.Default, { timeout: 120_000, excludeTestServices: true })("cluster mode", (it) => {
  it.effect("two runners: every fire time of every rule runs exactly once, none is missed", () =>
    Effect.gen(function*() {
      const pg = yield* PgServer
      const url = yield* pg.createDatabase("exactly_once")
      const server = yield* CosFakeServer.start({})
      const rules = ["alpha", "beta", "gamma", "delta"]
      for (const name of rules) {
        yield* Store.seed(server.fake.store, {
          bucket: CosFake.testBucket,
          count: 20,
          prefix: `${name}/`,
          ageMs: (i) => (i < 10 ? 40 : 1) * day,
          size: 10
        })
      }
      const settings = settingsFor(url, server.url, rules, "*/2 * * * * *")
      const began = Date.now()
      const a = yield* startRunner(settings)
      const b = yield* startRunner(settings)
      yield* Effect.sleep("9 seconds")
      const stoppedAt = Date.now()
      yield* Effect.all([a.stop, b.stop], { concurrency: 2 })

      const rows = (yield* pg.psql(
        "SELECT rule, scheduled_at, status, trigger FROM runs ORDER BY rule, scheduled_at",
        "exactly_once"
      )).trim().split("\n").filter((l) => l !== "").map((l) => l.split("|"))
      const byRule = new Map<string, Array<number>>()
      for (const [rule, at, status] of rows) {
        assert.strictEqual(status, "succeeded", rows.join("\n"))
        byRule.set(rule!, [...byRule.get(rule!) ?? [], Number(at)])
      }
      // fire times that were due well before the stop, after both runners had started
      const due = (t: number) => t > began + 3_000 && t < stoppedAt - 2_500
      for (const rule of rules) {
        const times = byRule.get(rule) ?? []
        assert.strictEqual(new Set(times).size, times.length, `${rule} ran a fire time twice: ${times}`)
        const expected: Array<number> = []
        for (let t = Math.ceil(began / 2000) * 2000; t < stoppedAt; t += 2000) if (due(t)) expected.push(t)
        assert.isAbove(expected.length, 0)
        for (const t of expected) assert.include(times, t, `${rule} missed the fire time ${new Date(t).toISOString()}`)
      }
      // each rule deleted its old keys (in its first run) and kept the young ones
      for (const rule of rules) {
        assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, `${rule}/`)).length, 10)
      }
      const audit = (yield* pg.psql("SELECT count(*), count(DISTINCT key) FROM audit", "exactly_once")).trim()
      assert.strictEqual(audit, "40|40")
    }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.scoped))
})
