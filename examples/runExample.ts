/**
 * Runs an example against a real COS (or any endpoint) configured by the environment: COS_REGION, COS_BUCKET,
 * COS_SECRET_ID, COS_SECRET_KEY, optional COS_SECURITY_TOKEN and COS_ENDPOINT (e.g. `http://127.0.0.1:9000` for
 * `pnpm cos-fake`). The result is printed as JSON on stdout.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { pathToFileURL } from "node:url"
import { CosClient, type CosError } from "../packages/core/src/index.js"

/** Whether the module with this `import.meta.url` is the script node was started with. */
export const isMain = (metaUrl: string): boolean =>
  process.argv[1] !== undefined && metaUrl === pathToFileURL(process.argv[1]).href

/** The client of `CosClient.layerConfig()` over undici. */
export const envClient: Layer.Layer<
  CosClient.CosClient,
  CosError.CosInvalidRequest | CosError.CosCredentialsError
> = CosClient.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))

/** Runs `program` with the environment's client and prints its result. */
export const runExample = <A, E>(program: Effect.Effect<A, E, CosClient.CosClient>): void =>
  program.pipe(
    Effect.tap((a) => Effect.sync(() => console.log(JSON.stringify(a, null, 2)))),
    Effect.provide(envClient),
    NodeRuntime.runMain
  )

/** The command-line arguments after the script, or a usage error. */
export const args = (usage: string, count: number): ReadonlyArray<string> => {
  const rest = process.argv.slice(2)
  if (rest.length < count) {
    console.error(`usage: ${usage}`)
    process.exit(2)
  }
  return rest
}
