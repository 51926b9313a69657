/**
 * Options whose values select keys or rules (`purge --prefix/--include/--exclude`, `once/plan --rule`) reach the
 * command byte for byte, however they were written: `--x v`, `--x=v`, repeated, with leading or trailing spaces, tabs,
 * a lone space, an empty string, line breaks.
 *
 * @effect/cli 0.77.2 does not keep them so: it trims the argument before splitting `--x=v` (so `--prefix='v/dir '`
 * becomes `v/dir`, and `--x=` or a value with a line break is not split at all), and it trims every value of a
 * repeated option and drops the empty ones (so `--exclude 't/trail '` protected `t/trail`, not `t/trail `). So before
 * @effect/cli parses the command line, {@link protect} swaps each such value for a placeholder that nothing trims,
 * and the option ({@link text}, {@link repeatedText}) swaps it back.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"

/** Per subcommand, the options kept byte for byte. */
const selectors: Readonly<Record<string, ReadonlyArray<string>>> = {
  purge: ["prefix", "include", "exclude", "keys-from", "audit-log"],
  once: ["rule"],
  plan: ["rule"],
  audit: ["key", "prefix", "rule"]
}

const subcommands: ReadonlySet<string> = new Set([
  "purge",
  "run",
  "once",
  "plan",
  "validate",
  "history",
  "audit",
  "demo"
])

const nonce = Math.random().toString(36).slice(2, 10)
let next = 0
/** Placeholder -> the value as given. Entries live as long as the parse that made them ({@link protect}). */
const values = new Map<string, string>()

/**
 * The command line with each value of a verbatim option replaced by a placeholder (`--x=v` becomes `--x`, placeholder),
 * and a function that forgets the placeholders once the command is done. Option names are matched case-insensitively,
 * as @effect/cli matches them; nothing after `--` is touched.
 */
export const protect = (
  argv: ReadonlyArray<string>
): { readonly argv: Array<string>; readonly release: () => void } => {
  const out = argv.slice(0, 2)
  const made: Array<string> = []
  const placeholder = (value: string) => {
    const token = `cos-retention:verbatim:${nonce}:${next++}`
    values.set(token, value)
    made.push(token)
    return token
  }
  let names: ReadonlyArray<string> = []
  let i = 2
  for (; i < argv.length; i++) {
    const arg = argv[i]!
    out.push(arg)
    if (subcommands.has(arg)) {
      names = selectors[arg] ?? []
      i++
      break
    }
  }
  for (; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") {
      out.push(...argv.slice(i))
      break
    }
    const eq = arg.indexOf("=")
    const flag = (eq < 0 ? arg : arg.slice(0, eq)).toLowerCase()
    const name = names.find((n) => flag === `--${n}`)
    if (name === undefined) out.push(arg)
    else if (eq >= 0) out.push(`--${name}`, placeholder(arg.slice(eq + 1)))
    else if (i + 1 < argv.length) out.push(`--${name}`, placeholder(argv[++i]!))
    else out.push(arg)
  }
  return { argv: out, release: () => made.forEach((t) => values.delete(t)) }
}

const restore = (name: string) => (value: string): Effect.Effect<string, ValidationError.ValidationError> => {
  const original = values.get(value)
  return original !== undefined ? Effect.succeed(original) : Effect.fail(ValidationError.invalidValue(HelpDoc.p(
    `--${name}: its value could not be read exactly as written; give it as --${name} VALUE or --${name}=VALUE`
  )))
}

/** `Options.text(name)`, its value exactly as written. */
export const text = (name: string): Options.Options<string> => Options.text(name).pipe(Options.mapEffect(restore(name)))

/** `Options.text(name)` repeated, each value exactly as written (empty ones included). */
export const repeatedText = (name: string): Options.Options<Array<string>> =>
  Options.text(name).pipe(
    Options.repeated,
    Options.mapEffect((vs) => Effect.forEach(vs, restore(name)))
  )
