/**
 * Shared pieces of the cluster-mode tests and bench/cluster.ts: the engine with short intervals (in this process and,
 * through the environment, in child processes), the fake's credentials, and replicas started in this process.
 */
import { CosFake } from "@effect-cos/testkit"
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
import type * as Config from "../../src/Config.js"
import { Purger } from "../../src/Purger.js"
import * as StateStore from "../../src/StateStore.js"
import { freePort } from "./postgres.js"

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
