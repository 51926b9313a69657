/**
 * Shared pieces of the cluster-mode tests and bench/cluster.ts: the engine with short intervals (in this process and,
 * through the environment, in child processes), the fake's credentials, replicas started in this process or as child
 * processes, and the set-up every cluster test writes: a database and a fake, its seeded keys, the configuration, a
 * fire time sent as the scheduler would, and waiting for a condition (runs, counts) with a bound.
 */
import { CosFake, CosFakeServer } from "@effect-cos/testkit"
import * as ShardId from "@effect/cluster/ShardId"
import * as Sharding from "@effect/cluster/Sharding"
import * as SqlClient from "@effect/sql/SqlClient"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Cluster from "../../src/Cluster.js"
import * as Config from "../../src/Config.js"
import { Purger } from "../../src/Purger.js"
import * as StateStore from "../../src/StateStore.js"
import { cosRetention } from "./child.js"
import { writeConfig } from "./config.js"
import { freePort, PgServer } from "./postgres.js"

export const day = 86_400_000

export { keyCount, seedKeys } from "./seed.js"

/** The same short intervals for a replica run as a child process (the engine reads them from the environment). */
export const fastEnv = {
  SHARDS_PER_GROUP: "12",
  SHARD_LOCK_REFRESH_INTERVAL: "1500 millis",
  SHARD_LOCK_EXPIRATION: "5 seconds",
  ENTITY_MESSAGE_POLL_INTERVAL: "250 millis",
  ENTITY_REPLY_POLL_INTERVAL: "100 millis",
  REFRESH_ASSIGNMENTS_INTERVAL: "250 millis",
  RUNNER_HEALTH_CHECK_INTERVAL: "1 second",
  SEND_RETRY_INTERVAL: "100 millis"
}

/**
 * The engine with short intervals: a dead runner's shards move within a few seconds. Not shorter: the engine gives a
 * lock refresh as long as its interval, and on a loaded machine a refresh that times out costs the runner its shards.
 */
export const fast = {
  shardsPerGroup: 12,
  shardLockRefreshInterval: Duration.millis(1500),
  shardLockExpiration: Duration.seconds(5),
  entityMessagePollInterval: Duration.millis(250),
  entityReplyPollInterval: Duration.millis(100),
  refreshAssignmentsInterval: Duration.millis(250),
  runnerHealthCheckInterval: Duration.seconds(1),
  sendRetryInterval: Duration.millis(100)
}

export const credentials = ConfigProvider.fromMap(
  new Map([
    ["COS_SECRET_ID", CosFake.testCredentials.secretId],
    ["COS_SECRET_KEY", Redacted.value(CosFake.testCredentials.secretKey)]
  ])
)

export interface InProcessRunner {
  readonly port: number
  readonly address: string
  readonly context: Context.Context<Layer.Layer.Success<ReturnType<typeof Cluster.layerWith>>>
  readonly stop: Effect.Effect<void>
}

/** Starts one runner (a replica) in this process (on a free port, or the one given); `stop` stops it. */
export const startRunner = (settings: Config.RetentionConfig, atPort?: number) =>
  Effect.gen(function*() {
    const port = atPort ?? (yield* freePort)
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Cluster.layerWith(settings, Purger.Default, { runnerAddress: { host: "127.0.0.1", port }, sharding: fast }),
      scope
    )
    const runner: InProcessRunner = { port, address: `127.0.0.1:${port}`, context, stop: Scope.close(scope, Exit.void) }
    return runner
  })

/** Waits until the runners hold every shard between them, each at least one, none twice, for a second. */
export const waitForSpread = (runners: ReadonlyArray<InProcessRunner>, shards = fast.shardsPerGroup) =>
  Effect.gen(function*() {
    let since: number | undefined
    const held = Effect.forEach(runners, (r) =>
      Effect.map(Sharding.Sharding, (s) => {
        const mine: Array<number> = []
        for (let i = 1; i <= shards; i++) if (s.hasShardId(ShardId.make("default", i))) mine.push(i)
        return mine
      }).pipe(Effect.provide(r.context)))
    yield* held.pipe(
      Effect.filterOrFail((lists) => {
        const all = lists.flat()
        const ok = lists.every((l) => l.length > 0) && all.length === shards && new Set(all).size === shards
        if (!ok) since = undefined
        else since ??= Date.now()
        return since !== undefined && Date.now() - since >= 1000
      }),
      Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 600 }),
      Effect.orDieWith(() => new Error("the runners did not share the shards out within 60 s"))
    )
  })

/** The Postgres state a `state:` URL names; throws for anything else (these tests need Postgres). */
export const postgresStore = (url: string) => {
  const store = Either.getOrThrow(StateStore.fromSetting(url, "/"))
  if (store._tag !== "postgres") throw new Error(`not a Postgres URL: ${url}`)
  return store
}

/** A SqlClient on the state database at `url`, open for the scope (as another process would connect). */
export const stateSql = (url: string) =>
  Effect.map(
    Layer.build(Layer.orDie(StateStore.layerPostgres(postgresStore(url)))),
    (context) => Context.get(context, SqlClient.SqlClient)
  )

/** A new database on the test's Postgres and a fake COS (stopped with the scope) for one cluster test. */
export const setUp = (database: string, fake: CosFakeServer.Options = {}) =>
  Effect.gen(function*() {
    const pg = yield* PgServer
    const url = yield* pg.createDatabase(database)
    const server = yield* CosFakeServer.start(fake)
    return { pg, url, server }
  })

/** `psql` output as rows of fields (`|`-separated), without the empty lines. */
export const rows = (out: string) => out.trim().split("\n").filter((l) => l !== "").map((l) => l.split("|"))

/** A query on `database` of the test's Postgres, as rows of fields. */
export const queryOn = (database: string) => (sql: string) =>
  Effect.flatMap(PgServer, (pg) => pg.psql(sql, database)).pipe(Effect.map(rows))

/**
 * Cluster settings as the tests decode them: the fake at `endpoint`, the state on Postgres at `state`, a 2 s grace
 * period and no HTTP server unless `http` says otherwise; each rule in the test bucket, older than 30 days, with the
 * fields given.
 */
export const clusterSettings = (
  state: string,
  endpoint: string,
  rules: ReadonlyArray<Record<string, unknown>>,
  http: Record<string, unknown> = { enabled: false }
) =>
  Either.getOrThrow(Config.decode({
    cos: { region: CosFake.testRegion, endpoint },
    state,
    http,
    gracePeriod: "2s",
    rules: rules.map((rule) => ({ bucket: CosFake.testBucket, olderThan: "30d", ...rule }))
  }, { source: "test", baseDir: "/" }))

/**
 * Writes the `retention.yaml` a replica run as a child process reads: the fake at `endpoint`, the state at `state`,
 * a 2 s grace period, `http` (YAML; default no HTTP server), then `rules`, the YAML lines under `rules:`.
 */
export const writeClusterConfig = (
  name: string,
  options: { readonly endpoint: string; readonly state: string; readonly rules: string; readonly http?: string }
) =>
  writeConfig(
    name,
    () =>
      `cos: { region: ${CosFake.testRegion}, endpoint: "${options.endpoint}" }
state: ${options.state}
http: ${options.http ?? "{ enabled: false }"}
gracePeriod: 2s
rules:
${options.rules}`
  )

/** Starts `cos-retention run --config <config>` as a child process with the short intervals; SIGKILLed at the end. */
export const startChildReplica = (config: string) =>
  Effect.gen(function*() {
    const port = yield* freePort
    const address = `127.0.0.1:${port}`
    const child = cosRetention(["run", "--config", config, "--runner-address", address], { env: fastEnv })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
    return { child, address }
  })

/** Sends one fire time of `rule` through `runner`, as the cluster's scheduler would. */
export const fire = (runner: InProcessRunner, scheduledAt: number, rule = "logs") =>
  Effect.gen(function*() {
    const client = yield* Cluster.RuleEntity.client
    yield* client(rule).fire(new Cluster.Fire({ scheduledAt, trigger: "schedule" }), { discard: true })
  }).pipe(Effect.provide(runner.context))

/**
 * Runs `check` every `every` until what it gives satisfies `until`. Past `within` the test dies with
 * `message` (computed then, so it can show the latest log lines), or without one fails with the timeout.
 */
export const waitUntil = <A, E, R>(
  check: Effect.Effect<A, E, R>,
  until: (a: A) => boolean,
  options: {
    readonly every: Duration.DurationInput
    readonly within: Duration.DurationInput
    readonly message?: (() => string) | undefined
  }
) => {
  const waited = check.pipe(
    Effect.repeat({ until, schedule: Schedule.spaced(options.every) }),
    Effect.timeout(options.within),
    Effect.asVoid
  )
  const message = options.message
  return message === undefined
    ? waited
    : waited.pipe(Effect.catchTag("TimeoutException", () => Effect.dieMessage(message())))
}
