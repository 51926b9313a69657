/**
 * What `bin.ts` runs for every command but `--version`: the CLI on Node's runtime, with our exit codes.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import { cli } from "./Cli.js"
import { recordSignals, teardown } from "./cli/common.js"

recordSignals()

// The runtime stops the command on the first SIGINT/SIGTERM and then stops listening, so a second one kills the
// process at once, without the summary. Ctrl-C under `pnpm cos-retention ...` delivers SIGINT twice (the terminal
// signals the whole foreground group, and pnpm forwards its own copy), so a repeat within a second is that echo and is
// ignored; a later one still ends the process at once, as a second Ctrl-C is meant to.
let firstSignalAt: number | undefined
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    const now = Date.now()
    if (firstSignalAt === undefined) firstSignalAt = now
    else if (now - firstSignalAt > 1000) process.exit(signal === "SIGINT" ? 130 : 143)
  })
}

cli(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disablePrettyLogger: true, disableErrorReporting: true, teardown })
)
