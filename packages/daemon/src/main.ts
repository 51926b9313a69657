/**
 * What `bin.ts` runs for every command but `--version`: the CLI on Node's runtime, with our exit codes.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import { cli } from "./Cli.js"
import { recordSignals, teardown } from "./cli/common.js"

recordSignals()

cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true, teardown })
)
