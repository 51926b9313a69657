// Runs the whole test suite (type check, lint, vitest) and prints the plain closing line "N passed, N failed".
import { spawnSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"

const run = (cmd, args) => spawnSync(cmd, args, { stdio: "inherit", shell: false }).status ?? 1
const extra = process.argv.slice(2)
// The Postgres-backed tests start a throwaway server from Debian's binaries: installed first where missing.
if (run("bash", ["scripts/ensure-postgres.sh"]) !== 0) {
  console.log("Postgres is missing: the Postgres-backed tests will fail")
}
let failedSteps = 0
if (extra.length === 0) {
  console.log("> tsc -b")
  if (run("pnpm", ["exec", "tsc", "-b"]) !== 0) failedSteps++
  console.log("> eslint")
  if (
    run("pnpm", ["exec", "eslint", "--no-error-on-unmatched-pattern", "packages", "bench", "examples", "scripts"]) !== 0
  ) failedSteps++
}
const out = ".vitest-results.json"
rmSync(out, { force: true })
const status = run("pnpm", [
  "exec",
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile=${out}`,
  ...extra
])
let passed = 0
let failed = 0
try {
  const r = JSON.parse(readFileSync(out, "utf8"))
  passed = r.numPassedTests
  failed = r.numFailedTests
  for (const f of r.testResults ?? []) if (f.status === "failed" && (f.assertionResults ?? []).length === 0) failed++
} catch {
  failed++
}
// .ci/run runs scripts/pack-smoke.mjs first and passes its exit status on: a failure there counts here too.
const smoke = process.env["PACK_SMOKE_STATUS"]
if (smoke !== undefined && smoke !== "0") {
  console.log(`scripts/pack-smoke.mjs failed (exit ${smoke})`)
  failedSteps++
}
if (failedSteps > 0) console.log(`${failedSteps} check step(s) failed (tsc/eslint/pack-smoke)`)
failed += failedSteps
console.log(`${passed} passed, ${failed} failed`)
process.exit(status !== 0 || failed > 0 ? 1 : 0)
