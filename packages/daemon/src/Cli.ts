/**
 * The `cos-retention` command: `run` (the daemon), `once`, `plan`, `validate`, `history`, `audit`, `demo` (and `purge`).
 */
import * as Command from "@effect/cli/Command"
import { audit } from "./cli/audit.js"
import { demo } from "./cli/demo.js"
import { history } from "./cli/history.js"
import { once } from "./cli/once.js"
import { plan } from "./cli/plan.js"
import { purge } from "./cli/purge.js"
import { run } from "./cli/run.js"
import { validate } from "./cli/validate.js"

export const command = Command.make("cos-retention").pipe(
  Command.withDescription("Retention for Tencent COS: delete what rules select, on cron schedules, with an audit."),
  Command.withSubcommands([purge, run, once, plan, validate, history, audit, demo])
)

export const cli = Command.run(command, { name: "cos-retention", version: "0.1.0" })
