// The status page in a real browser: starts the daemon in this process over the testkit's in-memory COS (slowed to
// 300 ms a request so a run is still going), with three rules — one that succeeded, one that failed (its bucket does
// not exist), one running — then opens http://127.0.0.1:<port>/ in Debian's headless chromium through playwright-core
// and saves docs/status.png (the screenshot docs/daemon.md shows).
//
//   apt-get update && apt-get install -y chromium
//   node --conditions=source --import tsx scripts/status-screenshot.ts [--out docs/status.png] [--port 19464]
//
// Not part of CI: it needs the chromium Debian package (not installed by `pnpm install`) and takes about 10-20 s.
// The page itself is tested over HTTP in packages/daemon/test/StatusPage.test.ts.
import * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { chromium } from "playwright-core"
import * as Config from "../packages/daemon/src/Config.js"
import * as Daemon from "../packages/daemon/src/Daemon.js"
import { Purger } from "../packages/daemon/src/Purger.js"
import { Scheduler } from "../packages/daemon/src/Scheduler.js"
import { Status } from "../packages/daemon/src/Status.js"
import { CosFake, Store } from "../packages/testkit/src/index.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const flag = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback
}
const out = Path.resolve(root, flag("out", "docs/status.png"))
const port = Number(flag("port", "19464"))
const DAY = 86_400_000
const bucket = CosFake.testBucket

const rule = (name: string, fields: Record<string, unknown>) => ({
  name,
  bucket,
  schedule: "0 3 * * *",
  ...fields
})

const config = (() => {
  const result = Config.decode(
    {
      cos: {
        region: CosFake.testRegion,
        credentials: {
          secretId: CosFake.testCredentials.secretId,
          secretKey: Redacted.value(CosFake.testCredentials.secretKey)
        }
      },
      state: ":memory:",
      http: { port },
      rules: [
        rule("expire-logs", {
          prefix: "logs/",
          olderThan: "30d",
          schedule: "0 3 * * *",
          timezone: "Asia/Shanghai",
          listConcurrency: 1,
          concurrency: 2
        }),
        rule("tmp-uploads", { prefix: "tmp/", olderThan: "1d", schedule: "*/30 * * * *", timezone: "Europe/Berlin" }),
        rule("old-archive", {
          bucket: "missingbucket-1250000000",
          prefix: "archive/<2020>/",
          olderThan: "365d",
          schedule: "0 4 * * 0",
          timezone: "America/New_York"
        }),
        rule("scratch", { prefix: "scratch/", olderThan: "7d", schedule: "0 5 * * *", enabled: false })
      ]
    },
    { source: "scripts/status-screenshot.ts", baseDir: root }
  )
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
})()

const program = Effect.gen(function*() {
  const fake = yield* CosFake.make({
    faults: { all: { latencyMs: 300 } }
  })
  yield* Store.seed(fake.store, { bucket, count: 40_000, prefix: "logs/app-", ageMs: () => 45 * DAY, size: 2048 })
  yield* Store.seed(fake.store, { bucket, count: 1_200, prefix: "tmp/", ageMs: () => 2 * DAY, size: 512 })
  const purger = Purger.layerHttp(Layer.succeed(HttpClient.HttpClient, CosFake.httpClient(fake)))
  const context = yield* Layer.build(Layer.merge(Daemon.layerWith(config, purger), Status.Default))
  const scheduler = Context.get(context, Scheduler)
  const byName = (name: string) => config.rules.find((r) => r.name === name)!
  yield* scheduler.fire(byName("tmp-uploads"), "once")
  yield* scheduler.fire(byName("old-archive"), "once")
  yield* Effect.sleep("3 seconds")
  yield* scheduler.fire(byName("expire-logs"), "schedule")
  yield* Effect.sleep("5 seconds")

  const profile = mkdtempSync(Path.join(tmpdir(), "cos-status-chromium-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(profile, { recursive: true, force: true })))
  // a fresh profile directory (playwright passes it as --user-data-dir)
  const browser = yield* Effect.acquireRelease(
    Effect.promise(() =>
      chromium.launchPersistentContext(profile, {
        executablePath: "/usr/bin/chromium",
        headless: true,
        viewport: { width: 1180, height: 900 },
        deviceScaleFactor: 1,
        args: [
          "--no-sandbox",
          "--disable-gpu",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--no-first-run"
        ]
      })
    ),
    (b) => Effect.promise(() => b.close())
  )
  yield* Effect.promise(async () => {
    const page = browser.pages()[0] ?? await browser.newPage()
    await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: "load" })
    await page.waitForSelector(".live-run")
    // one poll of /status by the page's own script, so the live numbers are the script's
    await page.waitForTimeout(2500)
    await page.screenshot({ path: out, fullPage: true })
  })
  process.stdout.write(`wrote ${Path.relative(root, out)}\n`)
})

const scope = Effect.runSync(Scope.make())
Effect.runPromise(Scope.extend(program, scope)).then(
  () => Effect.runPromise(Scope.close(scope, Exit.void)).then(() => process.exit(0)),
  (e) => {
    process.stderr.write(`${e}\n`)
    return Effect.runPromise(Scope.close(scope, Exit.void)).then(() => process.exit(1))
  }
)
