/**
 * `cos-retention validate --config F`: checks the configuration (exit 2 with every problem, by path) and shows each
 * rule's next fire time.
 */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { nextFire } from "../Scheduler.js"
import { configOption, loadConfig, table } from "./common.js"

export const validate = Command.make("validate", { config: configOption }, ({ config }) =>
  Effect.gen(function*() {
    const settings = yield* loadConfig(config)
    const now = new Date()
    yield* Console.log(`${config}: valid, ${settings.rules.length} rule(s); state ${settings.state}`)
    yield* Console.log(table(
      ["rule", "enabled", "bucket/prefix", "selects", "schedule", "next fire (UTC)"],
      settings.rules.map((r) => [
        r.name,
        r.enabled ? (r.dryRun ? "dry run" : "yes") : "no",
        `${r.bucket}/${r.prefix}`,
        [
          r.target === "incompleteUploads" ? "incomplete uploads" : undefined,
          r.versions === "current" ? undefined : `versions: ${r.versions}`,
          r.olderThanText === undefined ? undefined : `older than ${r.olderThanText}`,
          r.keepLatest === undefined
            ? undefined
            : `keep latest ${r.keepLatest.count}${r.keepLatest.groupBy === undefined ? "" : " per group"}`
        ].filter((x) => x !== undefined).join(", "),
        `${r.schedule} (${r.timezone})`,
        r.enabled ? (nextFire(r, now)?.toISOString() ?? "never") : "-"
      ])
    ))
  })).pipe(Command.withDescription("Check the configuration and show each rule's next fire time."))
