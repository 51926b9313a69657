/**
 * The `cos-retention` command: `run` (the daemon), `once`, `plan`, `validate`, `history`, `audit`, `demo` (and `purge`).
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { audit } from "./cli/audit.js"
import { demo } from "./cli/demo.js"
import { history } from "./cli/history.js"
import { once } from "./cli/once.js"
import { withToolOutput } from "./cli/output.js"
import { plan } from "./cli/plan.js"
import { purge } from "./cli/purge.js"
import { run } from "./cli/run.js"
import { validate } from "./cli/validate.js"
import * as verbatim from "./cli/verbatim.js"

export const command = Command.make("cos-retention").pipe(
  Command.withDescription("Retention for Tencent COS: delete what rules select, on cron schedules, with an audit."),
  Command.withSubcommands([purge, run, once, plan, validate, history, audit, demo])
)

const runCommand = Command.run(command, { name: "cos-retention", version: "0.1.0" })

/** Runs the command line (`process.argv`); the options that select keys or rules are kept byte for byte. */
export const cli = (argv: ReadonlyArray<string>) =>
  Effect.suspend(() => {
    const protectedArgs = verbatim.protect(argv)
    return runCommand(protectedArgs.argv).pipe(
      withToolOutput,
      Effect.ensuring(Effect.sync(protectedArgs.release))
    )
  })
