import { CosFake, CosFakeServer } from "@effect-cos/testkit"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as NodePath from "node:path"
import * as Config from "../src/Config.js"
import * as Daemon from "../src/Daemon.js"
import { Purger } from "../src/Purger.js"
import { layerSqlite, State } from "../src/State.js"
import { cosRetention, credentialsEnv } from "./support/child.js"
import { writeConfig } from "./support/config.js"
import { keyCount, seedKeys } from "./support/seed.js"

/** Objects the rule must delete (40 days old), per scenario. */
const keys = 5000
/** Objects under the same prefix it must keep (1 day old). */
const young = 500

/** One fake COS for every kill point; each scenario works under its own prefix. */
class Server extends Context.Tag("Kill.test/Server")<Server, CosFakeServer.CosFakeServer>() {}
const ServerLive = Layer.scoped(
  Server,
  CosFakeServer.start({ faults: { operations: { DeleteObjects: { latencyMs: 40 } } } })
)

/**
 * Kill points, as the number of old objects gone from COS when `kill -9` is sent. Listing pages hold 1000 keys and
 * the checkpoint advances a page at a time, so each point is past the first checkpoint (a kill before any checkpoint
 * has nothing to resume from: the next scheduled run starts over).
 */
const killPoints = [
  { name: "early", atDeleted: 1300 },
  { name: "middle", atDeleted: 2700 },
  { name: "late", atDeleted: 4200 }
]

const scenario = (name: string, atDeleted: number) =>
  Effect.gen(function*() {
    const server = yield* Server
    const prefix = `kill-${name}/`
    yield* seedKeys(server, `${prefix}old/`, keys, 40 * 86_400_000)
    yield* seedKeys(server, `${prefix}new/`, young, 86_400_000)
    const { dir, path: config } = yield* writeConfig("kill", () =>
      `cos: { region: ${CosFake.testRegion}, endpoint: "${server.url}" }
state: state.db
http: { enabled: false }
rules:
  - name: expire-${name}
    bucket: ${CosFake.testBucket}
    prefix: ${prefix}
    olderThan: 30d
    schedule: "0 3 1 1 *"
    batchSize: 100
    concurrency: 4
`)
    const count = (p: string) =>
      keyCount(server, p)
    const left = count(`${prefix}old/`)

    // a run, SIGKILLed with batches in flight at the kill point
    const once = cosRetention(["once", "--config", config])
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => once.kill("SIGKILL"))
    )
    yield* left.pipe(
      Effect.repeat({ until: (n) => n <= keys - atDeleted, schedule: Schedule.spaced("5 millis") }),
      Effect.timeout("20 seconds")
    )
    once.kill("SIGKILL")
    yield* Effect.promise(() => once.exit)
    yield* Effect.sleep("200 millis") // requests the fake had already received complete
    const deletedBeforeRestart = keys - (yield* left)
    assert.isBelow(deletedBeforeRestart, keys, "the run finished before the kill")
    assert.isAtLeast(deletedBeforeRestart, atDeleted)

    const db = layerSqlite(NodePath.join(dir, "state.db"))
    const killed = yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const runs = yield* sql<{ status: string }>`SELECT status FROM runs`
      const checkpoints = yield* sql<{ after_key: string }>`SELECT after_key FROM checkpoints`
      // requests in flight: their intents (one row per request, its keys as JSON), and any per-key pending row
      const pending = yield* sql<{ n: number }>`SELECT
        (SELECT count(*) FROM audit WHERE state = 'pending') +
        (SELECT coalesce(sum(json_array_length(keys)), 0) FROM audit_intents) AS n`
      return { runs: runs.map((r) => r.status), checkpoints: checkpoints.length, pending: pending[0]!.n }
    }).pipe(Effect.provide(db))
    assert.deepStrictEqual(killed.runs, ["running"])
    assert.strictEqual(killed.checkpoints, 1)
    // batches were in flight at the kill: their keys are pending in the audit, to be settled by asking COS
    assert.isAbove(killed.pending, 0)

    // the daemon starts: the killed run is marked interrupted and resumes at once from its checkpoint
    const settings = yield* Config.load(config).pipe(Effect.provide(NodeFileSystem.layer))
    yield* Effect.gen(function*() {
      const state = yield* State
      yield* state.getRun(2).pipe(
        Effect.repeat({ until: (run) => run?.endedAt != null, schedule: Schedule.spaced("20 millis") }),
        Effect.timeout("45 seconds")
      )
    }).pipe(
      Effect.provide(Daemon.layerWith(settings, Purger.Default)),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(credentialsEnv)))),
      Effect.scoped
    )

    // every old object is gone, every young one is still there
    assert.strictEqual(yield* left, 0)
    assert.strictEqual(yield* count(`${prefix}new/`), young)
    yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const runs = yield* sql<{ status: string; trigger: string; resumed_from: string | null; deleted: number }>`
        SELECT status, trigger, resumed_from, deleted FROM runs ORDER BY id`
      // the killed run is credited with exactly what had left COS before the restart, the resumed run the rest
      assert.deepStrictEqual(runs.map((r) => r.deleted), [deletedBeforeRestart, keys - deletedBeforeRestart])
      assert.deepStrictEqual(runs.map((r) => [r.status, r.trigger]), [["interrupted", "once"], [
        "succeeded",
        "resume"
      ]])
      assert.isNotNull(runs[1]!.resumed_from)
      // every deleted key exactly once, and only old keys
      const audit = yield* sql<{ state: string; n: number; k: number }>`
        SELECT state, count(*) AS n, count(DISTINCT key) AS k FROM audit GROUP BY state`
      assert.deepStrictEqual(
        audit,
        [{ state: "deleted", n: keys, k: keys }],
        `kill at ${deletedBeforeRestart} deleted, pending at the kill: ${killed.pending}`
      )
      const outside = yield* sql<{ n: number }>`
        SELECT count(*) AS n FROM audit WHERE key NOT LIKE ${`${prefix}old/%`}`
      assert.strictEqual(outside[0]!.n, 0)
    }).pipe(Effect.provide(db))
  }).pipe(Effect.scoped)

describe("restart after SIGKILL", () => {
  layer(ServerLive, { excludeTestServices: true, timeout: "10 seconds" })((it) => {
    for (const { atDeleted, name } of killPoints) {
      it.effect(
        `a run killed ${name} (after ${atDeleted} of ${keys} deletes) resumes from its checkpoint at the next start, ` +
          "deletes every matching key, and the audit holds each deleted key once",
        () => scenario(name, atDeleted),
        90_000
      )
    }
  })
})
