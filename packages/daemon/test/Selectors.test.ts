/**
 * The options that select keys (`purge --prefix/--include/--exclude`) and rules (`once/plan --rule`) reach the engine
 * byte for byte, however they are written on the command line: `--x v`, `--x=v`, repeated, with leading or trailing
 * spaces, tabs, a lone space. Checked by what is left on the fake after each run.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { writeLocalConfig } from "./support/config.js"
import { cosRetention } from "./support/inProcess.js"

const bucket = CosFake.testBucket
const DAY = 86_400_000

interface Case {
  readonly name: string
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<string>
  /** What must be left of `keys` after the run. */
  readonly left: ReadonlyArray<string>
  /** The summary's prefix, when the case is about it. */
  readonly prefix?: string
}

const cases: ReadonlyArray<Case> = [
  {
    name: "--exclude with a trailing space protects that key, not the one without",
    keys: ["e1/trail", "e1/trail "],
    args: ["--prefix", "e1/", "--exclude", "e1/trail "],
    left: ["e1/trail "]
  },
  {
    name: "--exclude=value keeps its trailing space",
    keys: ["e2/trail", "e2/trail "],
    args: ["--prefix", "e2/", "--exclude=e2/trail "],
    left: ["e2/trail "]
  },
  {
    name: "repeated --exclude keeps every value whole: trailing space, leading tab, lone space after /",
    keys: ["e3/a", "e3/a ", "e3/\tb", "e3/b", "e3/ ", "e3/"],
    args: ["--prefix", "e3/", "--exclude", "e3/a ", "--exclude=e3/\tb", "--exclude", "e3/ "],
    left: ["e3/ ", "e3/\tb", "e3/a "]
  },
  {
    name: "--include with a trailing space selects only the key with it",
    keys: ["i1/a.tmp", "i1/a.tmp "],
    args: ["--prefix", "i1/", "--include", "i1/*.tmp "],
    left: ["i1/a.tmp"]
  },
  {
    name: "repeated --include, in both forms, with a leading space and a trailing tab",
    keys: ["i2/a", "i2/ a", "i2/\ta", "i2/a\t"],
    args: ["--prefix", "i2/", "--include=i2/ a", "--include", "i2/a\t"],
    left: ["i2/\ta", "i2/a"]
  },
  {
    name: "--prefix VALUE with a trailing space deletes only under that prefix",
    keys: ["v/dir/x", "v/dir /x"],
    args: ["--prefix", "v/dir "],
    left: ["v/dir/x"],
    prefix: "v/dir "
  },
  {
    name: "--prefix=VALUE with a trailing space deletes only under that prefix",
    keys: ["w/dir/x", "w/dir /x"],
    args: ["--prefix=w/dir "],
    left: ["w/dir/x"],
    prefix: "w/dir "
  },
  {
    name: "--prefix=VALUE with a leading tab",
    keys: ["\tq/x", "q/x"],
    args: ["--prefix=\tq/"],
    left: ["q/x"],
    prefix: "\tq/"
  },
  {
    name: "--include g/**/* selects what is under g/, never the key g itself",
    keys: ["g", "g/", "g/a", "g/a/b", "gx"],
    args: ["--prefix", "g", "--include", "g/**/*"],
    left: ["g", "gx"]
  },
  {
    name: "--exclude g2/**/* protects what is under g2/, and leaves the key g2 to the other selectors",
    keys: ["g2", "g2/", "g2/a"],
    args: ["--prefix", "g2", "--exclude", "g2/**/*"],
    left: ["g2/", "g2/a"]
  },
  {
    name: "a lone space as --prefix= and as --exclude",
    keys: [" ", " x", "x"],
    args: ["--prefix= ", "--exclude", " "],
    left: [" ", "x"],
    prefix: " "
  }
]

describe("selectors reach the engine byte for byte", () => {
  it.scopedLive("purge --prefix / --include / --exclude in every form", () =>
    Effect.gen(function*() {
      const server = yield* CosFakeServer.start({})
      const all = cases.flatMap((c) => c.keys)
      yield* Store.seed(server.fake.store, { bucket, count: all.length, keyFn: (i) => all[i]! })
      for (const c of cases) {
        const r = yield* cosRetention([
          "purge",
          "--bucket",
          bucket,
          "--region",
          CosFake.testRegion,
          "--endpoint",
          server.url,
          "--yes",
          "--json",
          ...c.args
        ])
        assert.strictEqual(r.code, 0, `${c.name}: ${r.stderr}`)
        const summary = JSON.parse(r.stdout.trim().split("\n").pop()!)
        if (c.prefix !== undefined) assert.strictEqual(summary.prefix, c.prefix, c.name)
        const present = new Set(yield* Store.keys(server.fake.store, bucket))
        assert.deepStrictEqual(c.keys.filter((k) => present.has(k)).sort(), [...c.left].sort(), c.name)
      }
    }), 30_000)

  it.scopedLive(
    "once / plan --rule names a rule exactly: a trailing space or tab names no rule",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        yield* Store.seed(server.fake.store, { bucket, count: 10, prefix: "r/", ageMs: 40 * DAY })
        const { path: config } = yield* writeLocalConfig(
          "rule",
          server.url,
          `  - name: expire-logs
    bucket: ${bucket}
    prefix: r/
    olderThan: 30d
    schedule: "0 3 * * *"
`
        )
        const left = () => Effect.map(Store.keys(server.fake.store, bucket, "r/"), (ks) => ks.length)
        for (const args of [["--rule", "expire-logs "], ["--rule=expire-logs "], ["--rule=expire-logs\t"]]) {
          for (const command of ["once", "plan"]) {
            const r = yield* cosRetention([command, "--config", config, ...args, "--log-format", "json"])
            assert.strictEqual(r.code, 2, `${command} ${JSON.stringify(args)}: ${r.stdout}`)
            assert.include(r.stderr, `no rule named ${JSON.stringify(args.at(-1)!.replace(/^--rule=/, ""))}`)
            assert.strictEqual(yield* left(), 10, `${command} ${JSON.stringify(args)} deleted nothing`)
          }
        }
        const plan = yield* cosRetention(["plan", "--config", config, "--rule=expire-logs", "--json"])
        assert.strictEqual(plan.code, 0, plan.stderr)
        assert.deepStrictEqual(JSON.parse(plan.stdout).map((r: any) => [r.rule, r.matched]), [["expire-logs", 10]])
        const once = yield* cosRetention(["once", "--config", config, "--rule=expire-logs", "--log-format", "json"])
        assert.strictEqual(once.code, 0, once.stderr)
        assert.strictEqual(yield* left(), 0)
      }),
    30_000
  )
})
