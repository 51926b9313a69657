/**
 * Option values as the user typed them. @effect/cli 0.77 trims some values (`--key=' a '` arrives as `" a"`,
 * repeated options lose their spaces), and a selector must reach the engine byte for byte: for those options the
 * command reads the raw value from `process.argv` with these helpers (both `--name value` and `--name=value`).
 */

/** The value of the last `--name` in argv, untouched; undefined when the option is absent. */
export const rawValue = (argv: ReadonlyArray<string>, name: string): string | undefined => {
  const flag = `--${name}`
  let value: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--") break
    if (a === flag && i + 1 < argv.length) value = argv[++i]!
    else if (a.startsWith(flag + "=")) value = a.slice(flag.length + 1)
  }
  return value
}

/** Whether `--name` appears in argv (with or without a value). */
export const given = (argv: ReadonlyArray<string>, name: string): boolean => {
  const flag = `--${name}`
  for (const a of argv) {
    if (a === "--") break
    if (a === flag || a.startsWith(flag + "=")) return true
  }
  return false
}

/**
 * The parsed value replaced by the raw one when argv holds it (the parsed value was trimmed), else the parsed value.
 */
export const untrimmed = (parsed: string, name: string, argv: ReadonlyArray<string> = process.argv): string => {
  const raw = rawValue(argv, name)
  return raw !== undefined && raw.trim() === parsed.trim() ? raw : parsed
}
