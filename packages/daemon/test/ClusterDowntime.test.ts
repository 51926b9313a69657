/**
 * The catch-up and overlap rules of one daemon, for the cluster as a whole (ClusterUptime records when some replica
 * was up): fire times that came due while every replica was down, and a fire time whose run the downtime cut, follow
 * `catchUp` however the replicas come back; a fire time that came due while the scheduler moved between replicas
 * (others up) runs once, whichever replica takes the scheduler over.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import * as EntityId from "@effect/cluster/EntityId"
import * as EngineRunnerAddress from "@effect/cluster/RunnerAddress"
import * as Sharding from "@effect/cluster/Sharding"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as HashMap from "effect/HashMap"
import * as HashRing from "effect/HashRing"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Config from "../src/Config.js"
import { cosRetention } from "./support/child.js"
import { credentials, fast, fastEnv, startRunner } from "./support/cluster.js"
import { freePort, PgServer } from "./support/postgres.js"

const day = 86_400_000

interface Run {
  readonly id: number
  readonly rule: string
  readonly at: number
  readonly startedAt: number
  readonly status: string
  readonly trigger: string
  readonly runner: string
}

const rows = (out: string) => out.trim().split("\n").filter((l) => l !== "").map((l) => l.split("|"))

const helpers = (database: string) =>
  Effect.gen(function*() {
    const pg = yield* PgServer
    const query = (sql: string) => Effect.map(pg.psql(sql, database), rows)
    const runs = Effect.map(
      query(
        "SELECT id, rule, coalesce(scheduled_at, 0), started_at, status, trigger, coalesce(runner, '') FROM runs " +
          "ORDER BY id"
      ),
      (rs) =>
        rs.map((r): Run => ({
          id: Number(r[0]),
          rule: r[1]!,
          at: Number(r[2]),
          startedAt: Number(r[3]),
          status: r[4]!,
          trigger: r[5]!,
          runner: r[6]!
        }))
    ).pipe(Effect.catchAllDefect(() => Effect.succeed([] as Array<Run>)))
    const waitRuns = (what: string, until: (all: ReadonlyArray<Run>) => boolean, seconds = 60) =>
      runs.pipe(
        Effect.repeat({ until, schedule: Schedule.spaced("200 millis") }),
        Effect.timeout(`${seconds} seconds`),
        Effect.catchTag(
          "TimeoutException",
          () => Effect.flatMap(runs, (all) => Effect.dieMessage(`${what} within ${seconds} s: ${JSON.stringify(all)}`))
        )
      )
    /** The engine's answers to a rule's fire times: deliver_at -> [processed, reply payloads]. */
    const answers = (rule: string) =>
      Effect.map(
        query(
          `SELECT m.deliver_at, m.processed, coalesce(string_agg(r.payload, ' / '), 'no reply') FROM cluster_messages m ` +
            `LEFT JOIN cluster_replies r ON r.request_id = m.id WHERE m.entity_type = 'cos-retention/rule' ` +
            `AND m.tag = 'fire' AND m.entity_id = '${rule}' GROUP BY m.deliver_at, m.processed`
        ),
        (rs) => new Map(rs.map((r) => [Number(r[0]), { processed: r[1] === "t", reply: r.slice(2).join("|") }]))
      )
    const settled = (cutoff: number) =>
      query(
        `SELECT count(*) FROM cluster_messages WHERE entity_type = 'cos-retention/rule' AND tag = 'fire' ` +
          `AND deliver_at <= ${cutoff} AND NOT processed`
      ).pipe(
        Effect.repeat({ until: (rs) => rs[0]![0] === "0", schedule: Schedule.spaced("200 millis") }),
        Effect.timeout("60 seconds"),
        Effect.catchTag("TimeoutException", () => Effect.dieMessage(`fire times due by ${cutoff} left unanswered`))
      )
    return { pg, query, runs, waitRuns, answers, settled }
  })

/** Every log line of the replicas in this process, as `message` with its rule and fire time. */
const logCollector = () => {
  const lines: Array<
    { message: string; rule: string | undefined; scheduledAt: string | undefined; runner: string | undefined }
  > = []
  const logger = Logger.make(({ annotations, message }) => {
    const get = (k: string) => {
      const v = HashMap.get(annotations, k)
      return v._tag === "Some" ? String(v.value) : undefined
    }
    lines.push({ message: String(message), rule: get("rule"), scheduledAt: get("scheduledAt"), runner: get("runner") })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** The shard of the cluster's scheduler (a singleton): the engine hashes its name as it hashes an entity id. */
const schedulerShard = (() => {
  const name = "cos-retention/scheduler"
  let h = 5381
  for (let i = name.length; i > 0;) h = (h * 33) ^ name.charCodeAt(--i)
  h = (h & 0xbfffffff) | ((h >>> 1) & 0x40000000)
  return Math.abs(h % fast.shardsPerGroup) + 1
})()

/** The port of the runner (of those given) the engine's hash ring gives the scheduler's shard to. */
const schedulerHolder = (ports: ReadonlyArray<number>) => {
  const ring = HashRing.make<EngineRunnerAddress.RunnerAddress>()
  for (const port of ports) HashRing.add(ring, EngineRunnerAddress.make("127.0.0.1", port), { weight: 1 })
  return HashRing.getShards(ring, fast.shardsPerGroup)![schedulerShard - 1]!.port
}

/** A free port for a new runner beside `others` that the hash ring would give the scheduler to (or not). */
const portWhere = (others: ReadonlyArray<number>, holds: boolean) =>
  freePort.pipe(
    Effect.repeat({
      until: (port) => !others.includes(port) && (schedulerHolder([...others, port]) === port) === holds,
      times: 200
    }),
    Effect.flatMap((port) =>
      (schedulerHolder([...others, port]) === port) === holds
        ? Effect.succeed(port)
        : Effect.dieMessage("no port found for the scheduler's placement")
    )
  )

const completedTwice = (all: ReadonlyArray<Run>, rule: string) => {
  const completed = all.filter((r) => r.rule === rule && r.status !== "interrupted").map((r) => r.at)
  return completed.filter((t, i) => completed.indexOf(t) !== i)
}

layer(PgServer.Default, { timeout: 120_000, excludeTestServices: true })(
  "cluster mode: downtime and catch-up",
  (it) => {
    it.effect(
      "every replica stopped while runs were going and down over several fire times: the runs it cut and the fire " +
        "times it missed follow catchUp (false: none runs; true: the last missed runs once), replicas back one by one",
      () =>
        Effect.gen(function*() {
          const database = "cut_runs"
          const { answers, pg, query, runs, settled, waitRuns } = yield* helpers(database)
          const url = yield* pg.createDatabase(database)
          const server = yield* CosFakeServer.start({})
          const every = 5000
          for (const name of ["catcher", "sleeper"]) {
            yield* Store.seed(server.fake.store, {
              bucket: CosFake.testBucket,
              count: 5,
              prefix: `${name}/`,
              ageMs: 40 * day,
              size: 10
            })
          }
          const settings = Either.getOrThrow(Config.decode({
            cos: { region: CosFake.testRegion, endpoint: server.url },
            state: url,
            http: { enabled: false },
            gracePeriod: "2s",
            rules: ["catcher", "sleeper"].map((name) => ({
              name,
              bucket: CosFake.testBucket,
              prefix: `${name}/`,
              olderThan: "30d",
              schedule: "*/5 * * * * *",
              catchUp: name === "catcher"
            }))
          }, { source: "test", baseDir: "/" }))
          const log = logCollector()
          const first = yield* Effect.all([startRunner(settings), startRunner(settings)], { concurrency: 2 }).pipe(
            Effect.provide(log.layer)
          )
          yield* waitRuns(
            "the rules did not run",
            (all) =>
              ["catcher", "sleeper"].every((rule) => all.some((r) => r.rule === rule && r.status === "succeeded"))
          )
          // listing hangs from now on: the next fire time's run of each rule is going (listing) when every replica
          // stops, so it is cut before it has deleted anything (no checkpoint to resume from)
          yield* server.fake.setFaults({ operations: { ListObjects: { latencyMs: 600_000 } } })
          // (a run going for a second is hanging: the others take milliseconds)
          yield* waitRuns(
            "no run was going",
            (all) =>
              ["catcher", "sleeper"].every((rule) =>
                all.some((r) => r.rule === rule && r.status === "running" && Date.now() - r.startedAt > 1000)
              )
          )
          const going = yield* runs
          const cut = new Map(
            ["catcher", "sleeper"].map((rule) => [
              rule,
              going.find((r) => r.rule === rule && r.status === "running" && Date.now() - r.startedAt > 1000)!.at
            ])
          )
          yield* Effect.all(first.map((r) => r.stop), { concurrency: 2 })
          const stoppedAt = Date.now()
          // the runs were cut (interrupted) and their fire times are left unanswered: the engine delivers them again
          for (const [rule, at] of cut) {
            const mine = (yield* runs).filter((r) => r.rule === rule && r.at === at)
            assert.deepStrictEqual(mine.map((r) => r.status), ["interrupted"], rule)
            assert.strictEqual((yield* answers(rule)).get(at)?.processed, false, rule)
          }
          assert.deepStrictEqual(yield* query("SELECT count(*) FROM checkpoints"), [["0"]])
          const before = yield* runs
          // keys for the runs after the restart to delete
          for (const name of ["catcher", "sleeper"]) {
            yield* Store.seed(server.fake.store, {
              bucket: CosFake.testBucket,
              count: 3,
              prefix: `${name}/later/`,
              ageMs: 40 * day,
              size: 10
            })
          }
          // down over two fire times or more
          yield* Effect.sleep(2 * every + 1500)
          yield* server.fake.setFaults({})
          // back one by one: the second replica joins 3 s after the first (the scheduler may start on either, or
          // move between them)
          const a = yield* startRunner(settings).pipe(Effect.provide(log.layer))
          yield* Effect.sleep("3 seconds")
          const b = yield* startRunner(settings).pipe(Effect.provide(log.layer))
          // the cluster is up again from the first replica's start (its uptime row)
          const upSince = Number(
            (yield* query(`SELECT min(started_at) FROM cos_retention_runner_uptime WHERE started_at > ${stoppedAt}`))[
              0
            ]![0]
          )
          assert.isAbove(upSince, stoppedAt)
          const lastMissed = Math.floor(upSince / every) * every
          assert.isAbove(lastMissed - every, cut.get("catcher")!, "not down over two fire times")
          // both rules run their schedule again
          yield* waitRuns(
            "the rules did not run after the restart",
            (all) =>
              ["catcher", "sleeper"].every((rule) =>
                all.some((r) => r.rule === rule && r.at >= upSince && r.status === "succeeded")
              )
          )
          const cutoff = Date.now() - 500
          yield* settled(cutoff)
          yield* Effect.all([a.stop, b.stop], { concurrency: 2 })
          const all = yield* runs
          const after = all.filter((r) => r.id > Math.max(...before.map((x) => x.id)))
          console.log(
            `cut runs: cut ${JSON.stringify([...cut].map(([r, t]) => [r, t - stoppedAt]))}, up ${
              upSince - stoppedAt
            }, ` +
              `after ${JSON.stringify(after.map((r) => [r.rule, r.trigger, r.status, r.at - stoppedAt]))}`
          )
          for (const rule of ["catcher", "sleeper"]) {
            const mine = after.filter((r) => r.rule === rule)
            // nothing for the fire times before the cluster came back but the catch-up: not the cut one (nothing to
            // resume from), not the missed ones
            const early = mine.filter((r) => r.at < upSince).map((r) => [r.at, r.trigger, r.status])
            assert.deepStrictEqual(early, rule === "catcher" ? [[lastMissed, "catch-up", "succeeded"]] : [], rule)
            // the cut fire time was answered "skipped", and the log says why
            const answer = (yield* answers(rule)).get(cut.get(rule)!)
            assert.isTrue(answer?.processed, rule)
            assert.include(answer?.reply, `"outcome":"skipped"`)
            const why = log.lines.find((l) =>
              l.rule === rule && l.scheduledAt === new Date(cut.get(rule)!).toISOString() &&
              l.message.startsWith("skipped a fire time that came due before every replica was down")
            )
            assert.isDefined(why, `${rule}: ${JSON.stringify(log.lines.filter((l) => l.rule === rule).slice(-20))}`)
            // the catcher's reason depends on which comes first, the cut fire time delivered again or its catch-up:
            // "catches up ... instead" before the catch-up has run, "has run since" after it
            if (rule === "catcher") {
              assert.match(why!.message, /the rule catches up its last missed fire time instead|the rule has run since/)
            } else assert.include(why!.message, "catchUp: false")
            assert.deepStrictEqual(completedTwice(all, rule), [], rule)
          }
          // the rule without catch-up: the scheduler says it skipped what came due while every replica was down
          assert.isTrue(
            log.lines.some((l) =>
              l.rule === "sleeper" && l.message.startsWith("skipped the fire times that came due while every replica")
            ),
            JSON.stringify(log.lines.filter((l) => l.rule === "sleeper").slice(-20))
          )
          // every key deleted once (the catch-up, and the runs after), none by the runs that were cut
          for (const rule of ["catcher", "sleeper"]) {
            assert.strictEqual((yield* Store.keys(server.fake.store, CosFake.testBucket, `${rule}/`)).length, 0, rule)
          }
          assert.deepStrictEqual(yield* query("SELECT count(*), count(DISTINCT key) FROM audit"), [["16", "16"]])
        }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Info), Effect.scoped),
      240_000
    )
    it.effect(
      "the scheduler's holder SIGKILLed while another replica is up, a third joining during the lock expiry and " +
        "taking the scheduler over: every fire time due meanwhile runs once (catchUp false)",
      () =>
        Effect.gen(function*() {
          const database = "moved"
          const { answers, pg, runs, settled, waitRuns } = yield* helpers(database)
          const url = yield* pg.createDatabase(database)
          const server = yield* CosFakeServer.start({})
          const period = 2000
          const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "cos-retention-moved-"))
          yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true })))
          const config = NodePath.join(dir, "retention.yaml")
          NodeFs.writeFileSync(
            config,
            `cos: { region: ${CosFake.testRegion}, endpoint: "${server.url}" }
state: ${url}
http: { enabled: false }
gracePeriod: 2s
rules:
  - { name: ticker, bucket: ${CosFake.testBucket}, prefix: ticker/, olderThan: 30d, schedule: "*/2 * * * * *" }
`
          )
          const settings = Either.getOrThrow(
            Config.parse(NodeFs.readFileSync(config, "utf8"), { source: config, baseDir: dir })
          )
          // A (a child process, to be SIGKILLed) alone first: it holds the rule and the scheduler
          const portA = yield* freePort
          const a = cosRetention(["run", "--config", config, "--runner-address", `127.0.0.1:${portA}`], {
            env: fastEnv
          })
          yield* Effect.addFinalizer(() => Effect.sync(() => a.kill("SIGKILL")))
          yield* waitRuns(
            `A did not run the rule: ${JSON.stringify(a.lines.slice(-10))}`,
            (all) => all.some((r) => r.runner === `127.0.0.1:${portA}` && r.status === "succeeded"),
            120
          )
          // B joins on a port that leaves the scheduler with A
          const log = logCollector()
          const portB = yield* portWhere([portA], false)
          const b = yield* startRunner(settings, portB).pipe(Effect.provide(log.layer))
          yield* Effect.addFinalizer(() => b.stop)
          const shard = yield* Effect.map(
            Sharding.Sharding,
            (s) => s.getShardId(EntityId.make("cos-retention/scheduler"), "default").id
          ).pipe(Effect.provide(b.context))
          assert.strictEqual(shard, schedulerShard)
          yield* Effect.sleep("3 seconds")
          assert.isFalse(
            log.lines.some((l) => l.message.startsWith("cluster scheduler started")),
            "B holds the scheduler"
          )
          // A is killed just after a fire time (the next one comes due while its lock has not expired yet)
          yield* Effect.sleep(period - (Date.now() % period) + 400)
          a.kill("SIGKILL")
          yield* Effect.promise(() => a.exit)
          const killedAt = Date.now()
          // C joins after the next fire time came due, on a port that gives it the scheduler once A's locks expire
          const portC = yield* portWhere([portB], true)
          yield* Effect.sleep(period - (Date.now() % period) + 500)
          const joinedC = Date.now()
          const c = yield* startRunner(settings, portC).pipe(Effect.provide(log.layer))
          yield* Effect.addFinalizer(() => c.stop)
          yield* Effect.sync(() => log.lines.some((l) => l.message.startsWith("cluster scheduler started"))).pipe(
            Effect.repeat({ until: (held) => held, schedule: Schedule.spaced("200 millis") }),
            Effect.timeout("60 seconds"),
            Effect.catchTag("TimeoutException", () => Effect.dieMessage("nobody took the scheduler over"))
          )
          const holder = log.lines.find((l) => l.message.startsWith("cluster scheduler started"))!.runner
          assert.strictEqual(holder, c.address)
          yield* Effect.sleep("6 seconds")
          const cutoff = Date.now() - 500
          yield* settled(cutoff)
          yield* Effect.all([b.stop, c.stop], { concurrency: 2 })
          const all = yield* runs
          const replies = yield* answers("ticker")
          console.log(
            `moved: killed ${killedAt % 100_000}, C joined ${joinedC % 100_000}: ${
              JSON.stringify(all.filter((r) => r.at > killedAt - 4000).map((r) => [r.at % 100_000, r.status, r.runner]))
            }`
          )
          // every fire time from the one A ran last on: completed once, or skipped as an overlap (logged)
          const overlaps = log.lines.filter((l) => l.message.startsWith("skipped a scheduled run")).map((l) =>
            l.scheduledAt
          )
          const due: Array<number> = []
          for (let t = Math.floor(killedAt / period) * period; t <= cutoff; t += period) due.push(t)
          assert.isAtLeast(due.filter((t) => t > killedAt && t < joinedC).length, 1, "no fire time came due before C")
          for (const t of due) {
            const completed = all.filter((r) => r.at === t && r.status !== "interrupted").length
            const skipped = overlaps.filter((o) => o === new Date(t).toISOString()).length
            assert.strictEqual(
              completed + skipped,
              1,
              `${new Date(t).toISOString()}: ran ${completed}, skipped ${skipped}; ${
                JSON.stringify(all.filter((r) => r.at === t))
              }; the engine's answer: ${JSON.stringify(replies.get(t) ?? "no message")}`
            )
          }
          assert.deepStrictEqual(completedTwice(all, "ticker"), [])
          // C sent the ones A could not
          assert.isTrue(log.lines.some((l) =>
            l.runner === c.address && l.message.startsWith("sending a fire time that came due while the scheduler")
          ))
        }).pipe(Effect.withConfigProvider(credentials), Logger.withMinimumLogLevel(LogLevel.Info), Effect.scoped),
      300_000
    )
  }
)
