// Start-up time of the installed `cos-retention`: the median wall time of `cos-retention --version`, `--help` and
// `validate --config examples/retention.yaml`, run from the tarballs installed with npm (scripts/pack-smoke.mjs
// --install), against `node -e 0` in the same run (the commands take turns, so load on the machine hits all alike).
// Target: `--version` within 6x of `node -e 0`.
//
//   node --conditions=source --import tsx bench/startup.ts [--runs 15] [--app DIR]
//
// `--app DIR` reuses a project where the tarballs are installed already (DIR/node_modules/.bin/cos-retention), e.g.
// one made by `node scripts/pack-smoke.mjs --install /tmp/cos-install` (then DIR is /tmp/cos-install/app); without
// it this script packs and installs into a temporary directory first (a few minutes: better-sqlite3 compiles).
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { flag, root, table } from "./purge-harness.js"

const runs = Number(flag("runs", "15"))
const target = 6

const installed = (): { readonly app: string; readonly cleanup: () => void } => {
  const given = flag("app", "")
  if (given !== "") return { app: Path.resolve(given), cleanup: () => {} }
  const dir = mkdtempSync(Path.join(Os.tmpdir(), "cos-retention-startup-"))
  const r = spawnSync(process.execPath, ["scripts/pack-smoke.mjs", "--install", dir], { cwd: root, stdio: "inherit" })
  if (r.status !== 0) throw new Error("scripts/pack-smoke.mjs --install failed")
  return { app: Path.join(dir, "app"), cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const main = () => {
  const { app, cleanup } = installed()
  try {
    const bin = Path.join(app, "node_modules", ".bin", "cos-retention")
    if (!existsSync(bin)) throw new Error(`${bin} does not exist: is the daemon tarball installed in ${app}?`)
    const config = Path.join(root, "examples", "retention.yaml")
    const commands: ReadonlyArray<{ readonly name: string; readonly cmd: string; readonly args: Array<string> }> = [
      { name: "node -e 0", cmd: process.execPath, args: ["-e", "0"] },
      { name: "cos-retention --version", cmd: bin, args: ["--version"] },
      { name: "cos-retention --help", cmd: bin, args: ["--help"] },
      {
        name: "cos-retention validate --config examples/retention.yaml",
        cmd: bin,
        args: ["validate", "--config", config]
      }
    ]
    const times = commands.map(() => [] as Array<number>)
    for (let i = 0; i < runs; i++) {
      commands.forEach((c, j) => {
        const t0 = performance.now()
        const r = spawnSync(c.cmd, c.args, { cwd: app, stdio: ["ignore", "pipe", "pipe"] })
        const ms = performance.now() - t0
        if (r.status !== 0) throw new Error(`${c.name} exited ${r.status}: ${r.stderr.toString()}`)
        times[j]!.push(ms)
      })
    }
    const base = median(times[0]!)
    console.log(
      `\n### start-up of the installed cos-retention (${runs} runs each, taking turns; ${Os.cpus().length} cores, ` +
        `load average ${Os.loadavg()[0]!.toFixed(1)})\n`
    )
    console.log(table(
      ["command", "median ms", "min ms", "max ms", "x node -e 0"],
      commands.map((c, j) => [
        c.name,
        median(times[j]!).toFixed(0),
        Math.min(...times[j]!).toFixed(0),
        Math.max(...times[j]!).toFixed(0),
        (median(times[j]!) / base).toFixed(1)
      ])
    ))
    const ratio = median(times[1]!) / base
    console.log(
      `\n--version: ${ratio.toFixed(1)}x node -e 0 (target: within ${target}x): ${ratio <= target ? "OK" : "TOO SLOW"}`
    )
    if (ratio > target) process.exitCode = 1
  } finally {
    cleanup()
  }
}

main()
