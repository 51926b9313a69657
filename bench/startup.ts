// Start-up cost of the built `cos-retention`: wall time and CPU (user + sys, from GNU time) of `--version`, `--help`,
// `validate --config examples/retention.yaml` and a tiny purge (100 keys on the fake COS, its own process), against
// `node -e 0` in the same run (the commands take turns, so load on the machine hits all alike). Medians of `--runs`.
// Targets: `--version` within 6x of `node -e 0` (wall time), every command within 12x of its CPU time (before the
// bundle: about 20x for `--help`, `validate` and the purge).
//
//   pnpm build && node --conditions=source --import tsx bench/startup.ts [--runs 11]
//     [--binary packages/daemon/dist/bin.js] [--install]
//
// The binary is executed directly, so with the V8 flags of its first line. `--binary P` measures another one, e.g. an
// installed project's node_modules/.bin/cos-retention (`node scripts/pack-smoke.mjs --install /tmp/cos-install`, then
// `--binary /tmp/cos-install/alone/node_modules/.bin/cos-retention`); `--install` packs and installs the tarballs into
// a temporary directory first and measures that (a few minutes: better-sqlite3 compiles).
import { spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fakeCredentials, fakePurgeArgs, flag, root, startFake, table } from "./purge-harness.js"

const runs = Number(flag("runs", "11"))
const versionTarget = 6
const cpuTarget = 12
const tinyKeys = 100

const binaryToMeasure = (): { readonly bin: string; readonly cleanup: () => void } => {
  if (!process.argv.includes("--install")) {
    const bin = Path.resolve(root, flag("binary", "packages/daemon/dist/bin.js"))
    if (!existsSync(bin)) throw new Error(`${bin} does not exist: run \`pnpm build\` first`)
    return { bin, cleanup: () => {} }
  }
  const dir = mkdtempSync(Path.join(Os.tmpdir(), "cos-retention-startup-"))
  const r = spawnSync(process.execPath, ["scripts/pack-smoke.mjs", "--install", dir], { cwd: root, stdio: "inherit" })
  if (r.status !== 0) throw new Error("scripts/pack-smoke.mjs --install failed")
  return {
    bin: Path.join(dir, "alone", "node_modules", ".bin", "cos-retention"),
    cleanup: () => rmSync(dir, { recursive: true, force: true })
  }
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

interface Sample {
  readonly wallMs: number
  readonly cpuS: number
  readonly maxRssMb: number
}

/** One run under GNU time (exit code 0 expected). */
const measure = (cmd: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Sample => {
  const t0 = performance.now()
  const r = spawnSync("/usr/bin/time", ["-f", "rusage %U %S %M", cmd, ...args], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"]
  })
  const wallMs = performance.now() - t0
  const stderr = r.stderr.toString()
  const usage = /rusage ([\d.]+) ([\d.]+) (\d+)/.exec(stderr)
  if (r.status !== 0 || usage === null) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stdout.toString()}\n${stderr}`)
  }
  return { wallMs, cpuS: Number(usage[1]) + Number(usage[2]), maxRssMb: Number(usage[3]) / 1024 }
}

const main = async () => {
  const { bin, cleanup } = binaryToMeasure()
  // 100 keys per purge run: tiny/00.., tiny/01.., ... (the fake pads the index to 4 digits)
  const fake = await startFake(["--seed", String(tinyKeys * 100), "--seed-prefix", "tiny/"])
  try {
    const config = Path.join(root, "examples", "retention.yaml")
    const env = {
      ...process.env,
      COS_SECRET_ID: fakeCredentials.secretId,
      COS_SECRET_KEY: fakeCredentials.secretKey,
      ARCHIVE_SECRET_ID: fakeCredentials.secretId,
      ARCHIVE_SECRET_KEY: fakeCredentials.secretKey
    }
    const purge = (i: number) => [
      ...fakePurgeArgs(fake.url),
      "--prefix",
      `tiny/${String(i % 100).padStart(2, "0")}`,
      "--yes",
      "--json"
    ]
    const commands: ReadonlyArray<
      { readonly name: string; readonly cmd: string; readonly args: (i: number) => Array<string> }
    > = [
      { name: "node -e 0", cmd: process.execPath, args: () => ["-e", "0"] },
      { name: "cos-retention --version", cmd: bin, args: () => ["--version"] },
      { name: "cos-retention --help", cmd: bin, args: () => ["--help"] },
      {
        name: "cos-retention validate --config examples/retention.yaml",
        cmd: bin,
        args: () => ["validate", "--config", config]
      },
      { name: `cos-retention purge (${tinyKeys} keys on the fake)`, cmd: bin, args: purge }
    ]
    const samples = commands.map(() => [] as Array<Sample>)
    for (let i = 0; i < runs; i++) {
      commands.forEach((c, j) => samples[j]!.push(measure(c.cmd, c.args(i), env)))
    }
    const base = median(samples[0]!.map((s) => s.wallMs))
    console.log(
      `\n### start-up of ${Path.relative(root, bin) || bin} (${runs} runs each, taking turns; ${Os.cpus().length} ` +
        `cores, load average ${Os.loadavg()[0]!.toFixed(1)})\n`
    )
    console.log(table(
      ["command", "median wall ms", "min wall ms", "x node -e 0", "median CPU s", "median peak RSS MB"],
      commands.map((c, j) => {
        const wall = samples[j]!.map((s) => s.wallMs)
        return [
          c.name,
          median(wall).toFixed(0),
          Math.min(...wall).toFixed(0),
          (median(wall) / base).toFixed(1),
          median(samples[j]!.map((s) => s.cpuS)).toFixed(2),
          median(samples[j]!.map((s) => s.maxRssMb)).toFixed(0)
        ]
      })
    ))
    const ratio = median(samples[1]!.map((s) => s.wallMs)) / base
    const baseCpu = median(samples[0]!.map((s) => s.cpuS))
    const slowest = Math.max(...samples.slice(1).map((xs) => median(xs.map((s) => s.cpuS))))
    const ok = ratio <= versionTarget && slowest <= cpuTarget * baseCpu
    console.log(
      `\n--version: ${ratio.toFixed(1)}x node -e 0 (target: within ${versionTarget}x); slowest command ` +
        `${slowest.toFixed(2)} s of CPU, ${
          (slowest / baseCpu).toFixed(1)
        }x node -e 0 (target: within ${cpuTarget}x): ` +
        (ok ? "OK" : "TOO SLOW")
    )
    if (!ok) process.exitCode = 1
  } finally {
    await fake.stop()
    cleanup()
  }
}

await main()
