/**
 * The `cos-retention` command: `run` (the daemon), `once`, `plan`, `validate`, `history`, `audit`, `demo` (and `purge`).
 *
 * Each subcommand is imported only when it is the one asked for (`cos-retention validate ...` never loads the
 * deletion engine, the SQLite driver or the testkit); anything else (`--help`, an unknown word, options before the
 * subcommand) loads them all.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { withToolOutput } from "./cli/output.js"
import * as verbatim from "./cli/verbatim.js"
import { version } from "./version.js"

const subcommands = {
  purge: () => import("./cli/purge.js").then((m) => m.purge),
  run: () => import("./cli/run.js").then((m) => m.run),
  once: () => import("./cli/once.js").then((m) => m.once),
  plan: () => import("./cli/plan.js").then((m) => m.plan),
  validate: () => import("./cli/validate.js").then((m) => m.validate),
  history: () => import("./cli/history.js").then((m) => m.history),
  audit: () => import("./cli/audit.js").then((m) => m.audit),
  demo: () => import("./cli/demo.js").then((m) => m.demo)
}

type Name = keyof typeof subcommands
type Subcommand = Awaited<ReturnType<(typeof subcommands)[Name]>>

const isName = (word: string | undefined): word is Name => word !== undefined && Object.hasOwn(subcommands, word)

const make = (children: readonly [Subcommand, ...Array<Subcommand>]) =>
  Command.make("cos-retention").pipe(
    Command.withDescription("Retention for Tencent COS: delete what rules select, on cron schedules, with an audit."),
    Command.withSubcommands(children)
  )

/** The whole command tree (every subcommand loaded). */
export const command = async () => {
  const [first, ...rest] = await Promise.all(Object.values(subcommands).map((load) => load()))
  return make([first!, ...rest])
}

/**
 * Runs the CLI on these arguments (`process.argv`), loading only the subcommand they name; the options that select
 * keys or rules are kept byte for byte (cli/verbatim.ts).
 */
export const cli = (argv: ReadonlyArray<string>) =>
  Effect.suspend(() => {
    const protectedArgs = verbatim.protect(argv)
    const args = protectedArgs.argv
    return Effect.flatMap(
      Effect.promise(() => {
        const word = args[2]
        return isName(word) ? subcommands[word]().then((c) => make([c])) : command()
      }),
      (tree) => Command.run(tree, { name: "cos-retention", version })(args)
    ).pipe(
      withToolOutput,
      Effect.ensuring(Effect.sync(protectedArgs.release))
    )
  })
