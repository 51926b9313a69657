/**
 * Runs the `cos-retention` command as a child process (from source, like `pnpm cos-retention`), for the tests that
 * need a real process: signals, exit codes.
 */
import { CosFake } from "@effect-cos/testkit"
import * as Redacted from "effect/Redacted"
import { type ChildProcess, spawn } from "node:child_process"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

export const repo = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "../../../..")
export const credentialsEnv = {
  COS_SECRET_ID: CosFake.testCredentials.secretId,
  COS_SECRET_KEY: Redacted.value(CosFake.testCredentials.secretKey)
}

export interface Child {
  readonly exit: Promise<number | null>
  readonly lines: Array<Record<string, any>>
  readonly waitFor: (predicate: (line: Record<string, any>) => boolean) => Promise<void>
  readonly kill: (signal: NodeJS.Signals) => void
}

/** Runs `cos-retention <args>` as a child process with the fake's credentials; collects its JSON log lines. */
export const cosRetention = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string> | undefined } = {}
): Child => {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "packages/daemon/src/bin.ts", ...args, "--log-format", "json"],
    {
      cwd: repo,
      env: { ...process.env, ...credentialsEnv, ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    }
  )
  const lines: Array<Record<string, any>> = []
  const waiters: Array<() => void> = []
  let buffer = ""
  child.stderr.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("utf8")
    let i
    while ((i = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, i)
      buffer = buffer.slice(i + 1)
      try {
        lines.push(JSON.parse(line))
      } catch {
        lines.push({ message: line })
      }
      waiters.forEach((w) => w())
    }
  })
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return {
    exit,
    lines,
    waitFor: (predicate) =>
      new Promise<void>((resolve, reject) => {
        const check = () => lines.some(predicate) && resolve()
        waiters.push(check)
        check()
        exit.then(() => reject(new Error(`exited before the expected log line:\n${JSON.stringify(lines, null, 1)}`)))
      }),
    kill: (signal) => child.kill(signal)
  }
}

export interface Output {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `cos-retention <args>` from source as a child process and collects what it prints, as text. `env` is its whole
 * environment (default this process's); `stdin` what it reads: a file descriptor, or text written then closed
 * (default none); `onSpawn` is given the process (to signal it).
 */
export const runCli = (
  args: ReadonlyArray<string>,
  options: {
    readonly env?: Record<string, string | undefined> | undefined
    readonly stdin?: string | Buffer | number | undefined
    readonly onSpawn?: ((child: ChildProcess) => void) | undefined
  } = {}
): Promise<Output> =>
  new Promise<Output>((resolve, reject) => {
    const stdin = options.stdin
    const child = spawn(process.execPath, [
      "--conditions=source",
      "--import",
      "tsx",
      "packages/daemon/src/bin.ts",
      ...args
    ], {
      cwd: repo,
      env: options.env ?? process.env,
      stdio: [stdin === undefined ? "ignore" : typeof stdin === "number" ? stdin : "pipe", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d) => (stdout += d))
    child.stderr!.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
    if (stdin !== undefined && typeof stdin !== "number") child.stdin!.end(stdin)
    options.onSpawn?.(child)
  })
