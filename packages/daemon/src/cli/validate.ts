/**
 * `cos-retention validate --config F`: checks the configuration, every enabled rule's credentials and the state
 * location (exit 2 with every problem) and shows each rule's next fire time. Writes nothing.
 */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { credentialProblems } from "../Purger.js"
import { nextFire } from "../Scheduler.js"
import * as StateFile from "../StateFile.js"
import { configOption, ExitCode, loadConfig, table } from "./common.js"

export const validate = Command.make("validate", { config: configOption }, ({ config }) =>
  Effect.gen(function*() {
    const settings = yield* loadConfig(config)
    // what `run` would refuse after the configuration: every enabled rule's credentials, and the state location
    const problems = [
      ...yield* credentialProblems(
        settings.rules.map((rule, index) => ({ rule, index })).filter(({ rule }) => rule.enabled)
      )
    ]
    try {
      StateFile.inspect(settings.state)
    } catch (e) {
      if (!(e instanceof StateFile.StateError)) throw e
      problems.push(e.line)
    }
    if (problems.length > 0) {
      yield* Console.error(
        `${config}: ${problems.length} problem${problems.length === 1 ? "" : "s"}\n` +
          problems.map((p) => `  ${p}`).join("\n") + "\nnothing was started"
      )
      return yield* new ExitCode({ code: 2 })
    }
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
          r.newerThanText === undefined ? undefined : `newer than ${r.newerThanText}`,
          r.keepLatest === undefined
            ? undefined
            : `keep latest ${r.keepLatest.count}${r.keepLatest.groupBy === undefined ? "" : " per group"}`
        ].filter((x) => x !== undefined).join(", "),
        `${r.schedule} (${r.timezone})`,
        r.enabled ? (nextFire(r, now)?.toISOString() ?? "never") : "-"
      ])
    ))
  })).pipe(Command.withDescription("Check the configuration and show each rule's next fire time."))
