/**
 * What the command prints through @effect/cli, made to read like this tool: no ANSI escapes unless the stream is a
 * terminal and `NO_COLOR` is unset (https://no-color.org), the real command path in usage lines
 * (`$ cos-retention purge`), repeatable options shown as optional (`[--include text]...`), and the library's bare
 * argument errors replaced by our sentences naming the flag and what it accepts.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

const subcommands = ["purge", "run", "once", "plan", "validate", "history", "demo"]

/** What a required option is, for "--x is required" messages. */
const required: Readonly<Record<string, string>> = {
  "--bucket": "the bucket, <BucketName>-<APPID> (e.g. examplebucket-1250000000)",
  "--region": "its region (e.g. ap-guangzhou)",
  "--prefix": "the key prefix to delete under (--prefix '' with --allow-whole-bucket means the whole bucket)",
  "--config": "the retention configuration file (YAML or JSON)"
}

const errors: ReadonlyArray<readonly [RegExp, (...m: Array<string>) => string]> = [
  [
    /^Expected to find option: '([^']+)'$/,
    (flag) => `${flag} is required: ${required[flag!] ?? "see --help"}`
  ],
  [
    /^Expected a value following option: '([^']+)'$/,
    (flag) => `${flag} needs a value${required[flag!] === undefined ? "" : `: ${required[flag!]}`}`
  ],
  [/^Path '(.*)' must exist$/, (path) => `--config: there is no file at ${path} (give a YAML or JSON configuration)`],
  [/^Received unknown argument: '(.*)'$/, (arg) => `unknown argument '${arg}' (--help lists the options)`]
]

const ansi = /\x1b\[[0-9;]*[A-Za-z]/g

/** Whether escapes may go to this stream: a terminal, and `NO_COLOR` unset or empty. */
export const colorFor = (stream: { readonly isTTY?: boolean | undefined }): boolean =>
  stream.isTTY === true && (process.env["NO_COLOR"] ?? "") === ""

/** Help and error text as this tool prints it. */
export const rewrite = (text: string, color: boolean): string => {
  let out = color ? text : text.replace(ansi, "")
  // Errors come one per line (several when several options are wrong).
  out = out.split("\n").map((line) => {
    const plain = line.replace(ansi, "").trim()
    for (const [re, message] of errors) {
      const m = re.exec(plain)
      if (m !== null) return message(...m.slice(1))
    }
    return line
  }).join("\n")
  // The library's type lines ("A user-defined piece of text.") say less than our descriptions.
  out = out.replace(/^  (?:A user-defined piece of text|An integer|A true or false value)\.\n\n/gm, "")
  out = out.replace(new RegExp(`^\\$ (${subcommands.join("|")})\\b`, "gm"), "$$ cos-retention $1")
  // A repeated option: @effect/cli writes `--include text...`, which reads as required.
  out = out.replace(/(?<!\[)(--[a-z-]+ [a-z]+)\.\.\./g, "[$1]...")
  return out
}

const mapText = (args: ReadonlyArray<any>, color: boolean) =>
  args.map((a) => (typeof a === "string" ? rewrite(a, color) : a))

/** Runs `self` with a Console that prints through {@link rewrite}. */
export const withToolOutput = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.console, (c) => {
    const out = () => colorFor(process.stdout)
    const err = () => colorFor(process.stderr)
    const console: Console.Console = {
      ...c,
      log: (...args) => c.log(...mapText(args, out())),
      info: (...args) => c.info(...mapText(args, out())),
      error: (...args) => c.error(...mapText(args, err())),
      warn: (...args) => c.warn(...mapText(args, err()))
    }
    return Effect.withConsole(self, console)
  })
