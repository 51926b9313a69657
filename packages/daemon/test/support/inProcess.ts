/**
 * Runs `cos-retention <args>` in this process, through the same `cli` entry point as bin.ts: its exit code (as
 * bin.ts maps it), stdout and stderr. Runs must not overlap (console output is captured globally).
 */
import { CosFake } from "@effect-cos/testkit"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { vi } from "vitest"
import { cli } from "../../src/Cli.js"
import { teardown } from "../../src/cli/common.js"

export interface Output {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** The fake's credentials, as the environment would give them. */
export const fakeCredentials = ConfigProvider.fromMap(
  new Map([
    ["COS_SECRET_ID", CosFake.testCredentials.secretId],
    ["COS_SECRET_KEY", Redacted.value(CosFake.testCredentials.secretKey)]
  ])
)

/** `cos-retention <args>` in process; `provider` stands for the environment (default: the fake's credentials). */
export const cosRetention = (
  args: ReadonlyArray<string>,
  provider: ConfigProvider.ConfigProvider = fakeCredentials
): Effect.Effect<Output> =>
  Effect.gen(function*() {
    const out: Array<string> = []
    const err: Array<string> = []
    const log = vi.spyOn(console, "log").mockImplementation((...xs: Array<unknown>) => void out.push(xs.join(" ")))
    const error = vi.spyOn(console, "error").mockImplementation((...xs: Array<unknown>) => void err.push(xs.join(" ")))
    const exit = yield* cli(["node", "cos-retention", ...args]).pipe(
      Effect.provide(NodeContext.layer),
      Effect.withConfigProvider(provider),
      Effect.exit,
      Effect.ensuring(Effect.sync(() => {
        log.mockRestore()
        error.mockRestore()
      }))
    )
    let code = -1
    teardown(exit, (c) => (code = c))
    return { code, stdout: out.join("\n"), stderr: err.join("\n") }
  })

/** Subcommands run without `--log-format` here: their output is what the tests read. */
const withoutLogFormat: ReadonlySet<string> = new Set(["validate", "history"])

/** {@link cosRetention} with `--log-format json` added where the command is run with it, so log lines are JSON. */
export const cosRetentionJsonLogs = (...args: Array<string>): Effect.Effect<Output> =>
  cosRetention(withoutLogFormat.has(args[0]!) ? args : [...args, "--log-format", "json"])
