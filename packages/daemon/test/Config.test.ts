import { Deletion } from "@effect-cos/core"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Config from "../src/Config.js"
import * as Lifecycle from "../src/Lifecycle.js"

const example = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "../../../examples/retention.yaml")

/** A valid rule with `fields` changed (`undefined` removes a field). */
const rule = (fields: Record<string, unknown> = {}) =>
  Object.fromEntries(
    Object.entries({
      name: "expire-logs",
      bucket: "examplebucket-1250000000",
      prefix: "logs/",
      olderThan: "30d",
      schedule: "0 3 * * *",
      ...fields
    }).filter(([, v]) => v !== undefined)
  )

const decode = (doc: Record<string, unknown>) =>
  Config.decode({ cos: { region: "ap-beijing" }, ...doc }, { source: "retention.yaml", baseDir: "/etc/cos" })

const issues = (doc: Record<string, unknown>) => {
  const result = decode(doc)
  assert.isTrue(Either.isLeft(result), "expected the config to be rejected")
  return Either.isLeft(result) ? result.left.issues : []
}

/** The issues of a config whose third rule carries `fields`. */
const ruleIssues = (fields: Record<string, unknown>) =>
  issues({ rules: [rule({ name: "a" }), rule({ name: "b" }), rule({ name: "c", ...fields })] })

describe("Config", () => {
  it("decodes a valid file with defaults", () => {
    const result = Config.parse(
      `
cos:
  region: ap-beijing
  endpoint: http://127.0.0.1:9000
state: ./state/retention.db
http: { port: 0 }
rules:
  - name: expire-logs
    bucket: examplebucket-1250000000
    prefix: logs/
    olderThan: 30d
    schedule: "0 3 * * *"
    timezone: Asia/Shanghai
  - name: keep-backups
    bucket: examplebucket-1250000000
    prefix: backups/
    keepLatest: { count: 3, groupBy: "^backups/([^/]+)/" }
    schedule: "*/15 * * * *"
    versions: all
    minSize: 1KiB
    maxSize: 2GB
`,
      { source: "retention.yaml", baseDir: "/etc/cos" }
    )
    assert.isTrue(Either.isRight(result))
    if (Either.isLeft(result)) return
    const config = result.right
    assert.strictEqual(config.state, "/etc/cos/state/retention.db")
    assert.deepStrictEqual(config.http, { enabled: true, host: "127.0.0.1", port: 0 })
    const [logs, backups] = config.rules
    assert.strictEqual(logs!.timezone, "Asia/Shanghai")
    assert.strictEqual(Duration.toMillis(logs!.olderThan!), 30 * 86_400_000)
    assert.strictEqual(logs!.endpoint, "http://127.0.0.1:9000")
    assert.strictEqual(logs!.versions, "current")
    assert.strictEqual(logs!.credentials.secretKeyEnv, "COS_SECRET_KEY")
    assert.isFalse(logs!.catchUp)
    assert.isTrue(logs!.enabled)
    assert.strictEqual(backups!.timezone, "UTC")
    assert.deepStrictEqual(backups!.keepLatest, { count: 3, groupBy: "^backups/([^/]+)/" })
    assert.strictEqual(backups!.minSize, 1024)
    assert.strictEqual(backups!.maxSize, 2_000_000_000)
    assert.deepStrictEqual(config.warnings, [])
  })

  it("names the path and the problem of each bad field", () => {
    const cases: Array<[Record<string, unknown>, string | Array<string>]> = [
      [
        { schedule: "61 * * * *" },
        `rules[2].schedule: "61 * * * *" is not a valid cron expression (Invalid value for minute: 61)`
      ],
      [
        { timezone: "Mars/Olympus" },
        `rules[2].timezone: "Mars/Olympus" is not a known IANA time zone (e.g. UTC, Asia/Shanghai)`
      ],
      [
        { olderThan: "30 dayz" },
        `rules[2].olderThan: "30 dayz" is not a valid duration (examples: 30d, 12h, 90m, 45s, 2w, 1h30m, 1.5h, 7 days)`
      ],
      [
        { olderThan: 30 },
        `rules[2].olderThan: 30 has no unit: write a duration such as 30d, 30h or 30s (examples: 30d, 12h, 90m, 45s, 2w, 1h30m, 1.5h, 7 days)`
      ],
      [
        { include: ["[abc"] },
        `rules[2].include[0]: "[abc" is not a valid glob: Missing closing: "]" - use "\\\\]" to match literal characters`
      ],
      [{ exclude: [""] }, `rules[2].exclude[0]: "" is not a valid glob: an empty glob matches nothing`],
      [
        { bucket: "Example_Bucket" },
        `rules[2].bucket: "Example_Bucket" is not a valid bucket (expected <name>-<APPID>, e.g. examplebucket-1250000000)`
      ],
      [{ region: "AP Beijing" }, `rules[2].region: "AP Beijing" is not a valid region (e.g. ap-beijing)`],
      [
        { endpoint: "ftp://x" },
        `rules[2].endpoint: "ftp://x" is not a valid endpoint (expected an http:// or https:// URL)`
      ],
      [
        { versions: "everything" },
        `rules[2].versions: "everything" is not a versions mode (expected current, all, noncurrent or delete-markers)`
      ],
      [{ keepLatest: 0 }, `rules[2].keepLatest: 0 is not a positive whole number`],
      [
        { keepLatest: { count: 2, groupBy: "(" } },
        `rules[2].keepLatest.groupBy: "(" is not a valid regular expression: Invalid regular expression: /(/: Unterminated group`
      ],
      [{ keepLatest: { cnt: 2 } }, [
        `rules[2].keepLatest.cnt: is not a known field`,
        `rules[2].keepLatest.count: is required`
      ]],
      [{ minSize: "10XB" }, `rules[2].minSize: "10XB" is not a valid size (examples: 1024, 10KB, 5MiB, 2GB)`],
      [{ minSize: "2MB", maxSize: "1MB" }, `rules[2].minSize: 2000000 bytes is more than maxSize (1000000 bytes)`],
      [{ maxDeletes: -1 }, `rules[2].maxDeletes: -1 is not a whole number >= 0`],
      [{ concurrency: 2.5 }, `rules[2].concurrency: 2.5 is not a positive whole number`],
      [{ listConcurrency: 0 }, `rules[2].listConcurrency: 0 is not a positive whole number`],
      [{ batchSize: 5000 }, `rules[2].batchSize: 5000 is over 1000, the most one batch delete takes`],
      [{ catchUp: "yes" }, `rules[2].catchUp: Expected boolean, actual "yes"`],
      [{ enabled: 1 }, `rules[2].enabled: Expected boolean, actual 1`],
      [{ dryRun: "true" }, `rules[2].dryRun: Expected boolean, actual "true"`],
      [
        { credentials: { secretKeyEnv: "MY-KEY" } },
        `rules[2].credentials.secretKeyEnv: "MY-KEY" is not a valid environment variable name`
      ],
      [{ name: "a" }, `rules[2].name: "a" is already the name of rules[0]; rule names must be unique`],
      [
        { name: "bad name" },
        `rules[2].name: "bad name" is not a valid rule name (letters, digits, '-', '_' and '.'; it names metrics and log lines)`
      ],
      [
        { prefix: "" },
        `rules[2].prefix: an empty prefix selects the whole bucket; set allowWholeBucket: true if that is intended`
      ],
      [{ olderThan: undefined }, `rules[2]: a rule needs olderThan or keepLatest (or versions: delete-markers)`],
      [{ shedule: "0 3 * * *" }, `rules[2].shedule: is not a known field`],
      [{ schedule: undefined }, `rules[2].schedule: is required`]
    ]
    for (const [fields, expected] of cases) {
      assert.deepStrictEqual(
        ruleIssues(fields),
        typeof expected === "string" ? [expected] : expected,
        JSON.stringify(fields)
      )
    }
  })

  it("reports every problem at once, rule by rule", () => {
    assert.deepStrictEqual(
      issues({
        cos: {},
        http: { port: 70000 },
        rules: [rule({ schedule: "bogus", olderThan: "1y" }), rule({ name: "other", prefix: "" })]
      }),
      [
        `http.port: 70000 is not a TCP port (0-65535)`,
        `rules[0].schedule: "bogus" is not a valid cron expression (invalid configuration format ('bogus'), exactly five, six, or seven space separated parts are required.)`,
        `rules[0].olderThan: "1y" is not a valid duration (examples: 30d, 12h, 90m, 45s, 2w, 1h30m, 1.5h, 7 days)`,
        `rules[0].region: no region (set cos.region or rules[0].region)`,
        `rules[1].region: no region (set cos.region or rules[1].region)`,
        `rules[1].prefix: an empty prefix selects the whole bucket; set allowWholeBucket: true if that is intended`
      ]
    )
  })

  it("allows the whole bucket only when asked, and versions: delete-markers without an age", () => {
    const result = decode({
      rules: [
        rule({ prefix: "", allowWholeBucket: true }),
        rule({ name: "markers", olderThan: undefined, versions: "delete-markers" })
      ]
    })
    assert.isTrue(Either.isRight(result))
  })

  it("accepts secrets written in the file, with a warning that does not show them", () => {
    const result = decode({
      rules: [rule({ credentials: { secretId: "AKIDexample", secretKey: "s3cr3t-value" } })]
    })
    assert.isTrue(Either.isRight(result))
    if (Either.isLeft(result)) return
    assert.deepStrictEqual(result.right.warnings, [
      "rules[0].credentials.secretKey: a secret is written in the config file; prefer secretKeyEnv"
    ])
    const credentials = result.right.rules[0]!.credentials
    assert.strictEqual(Redacted.value(credentials.secretKey!), "s3cr3t-value")
    assert.notInclude(JSON.stringify(result.right), "s3cr3t-value")
    assert.notInclude(String(credentials.secretKey), "s3cr3t-value")
  })

  it("reports YAML syntax errors with their line", () => {
    const result = Config.parse("rules:\n  - name: [a\n", { source: "x.yaml", baseDir: "/" })
    assert.isTrue(Either.isLeft(result))
    if (Either.isRight(result)) return
    assert.match(result.left.issues[0]!, /^syntax: .* at line \d+, column \d+/)
    assert.match(result.left.message, /^x\.yaml: 1 problem\n/)
  })

  it("accepts examples/retention.yaml as documented", () => {
    const result = Config.parse(NodeFs.readFileSync(example, "utf8"), { source: example, baseDir: "/etc/cos" })
    assert.isTrue(Either.isRight(result), Either.isLeft(result) ? result.left.message : "")
    if (Either.isLeft(result)) return
    assert.deepStrictEqual(result.right.warnings, [])
    assert.deepStrictEqual(result.right.rules.map((r) => r.name), [
      "expire-logs",
      "rotate-backups",
      "prune-old-versions",
      "abort-stale-uploads",
      "tmp-uploads"
    ])
    assert.strictEqual(result.right.rules[3]!.target, "incompleteUploads")
    assert.strictEqual(result.right.rules[0]!.target, "objects")
    assert.strictEqual(result.right.rules[2]!.credentials.secretKeyEnv, "ARCHIVE_SECRET_KEY")
    assert.strictEqual(result.right.rules[2]!.region, "ap-shanghai")
  })

  it("parses durations and sizes", () => {
    assert.strictEqual(Config.parseDuration("1h30m"), 5_400_000)
    assert.strictEqual(Config.parseDuration("2w"), 14 * 86_400_000)
    // One reading with the CLI and the library: the CLI's decimals and Effect's "7 days" mean the same here.
    assert.strictEqual(Config.parseDuration("1.5h"), 5_400_000)
    assert.strictEqual(Config.parseDuration("7 days"), 7 * 86_400_000)
    assert.isUndefined(Config.parseDuration("-1d"))
    assert.strictEqual(Config.parseSize("5MiB"), 5 * 1024 * 1024)
    assert.strictEqual(Config.parseSize(10), 10)
    assert.isUndefined(Config.parseSize("5 parsecs"))
  })

  it("newerThan and maxDeleteSize: decoded, and bad values named with what is accepted", () => {
    const ok = decode({ rules: [rule({ olderThan: "7 days", newerThan: "30d", maxDeleteSize: "5MB" })] })
    assert.isTrue(Either.isRight(ok))
    if (Either.isRight(ok)) {
      const r = ok.right.rules[0]!
      assert.strictEqual(Duration.toMillis(r.newerThan!), 30 * 86_400_000)
      assert.strictEqual(Duration.toMillis(r.olderThan!), 7 * 86_400_000)
      assert.strictEqual(r.maxDeleteSize, 5_000_000)
      // COS lifecycle would expire everything past olderThan, the young end of the window and over the cap too.
      const verdict = Lifecycle.verdict(r)
      assert.isFalse(verdict.eligible)
      if (!verdict.eligible) {
        assert.isTrue(verdict.reasons.some((x) => x.startsWith("newerThan")), verdict.reasons.join("; "))
        assert.isTrue(verdict.reasons.some((x) => x.startsWith("maxDeleteSize")), verdict.reasons.join("; "))
      }
    }
    const empty = ruleIssues({ olderThan: "30d", newerThan: "7d" }).join("\n")
    assert.include(empty, "rules[2].newerThan: 7d must reach further back than olderThan (30d)")
    assert.include(ruleIssues({ newerThan: "last week" }).join("\n"), "rules[2].newerThan")
    assert.include(ruleIssues({ newerThan: "2026-01-31" }).join("\n"), "is a date; a rule runs on a schedule")
    for (const bad of [-5, "-5MB", "5 parsecs", 1.5]) {
      assert.include(ruleIssues({ maxDeleteSize: bad }).join("\n"), "rules[2].maxDeleteSize", String(bad))
    }
    assert.include(
      ruleIssues({ target: "incomplete-uploads", olderThan: "7d", maxDeleteSize: "5MB" }).join("\n"),
      "rules[2].maxDeleteSize: does not apply to target: incomplete-uploads"
    )
  })
})

describe("Config: values written in the wrong form are named with the form that works", () => {
  it("a bare number as a duration, one string as a glob list, a schedule that never fires", () => {
    const bareAge = ruleIssues({ olderThan: 30 }).join("\n")
    assert.include(bareAge, "rules[2].olderThan: 30 has no unit: write a duration such as 30d, 30h or 30s")
    const bareGrace = issues({ gracePeriod: 20, rules: [rule({})] }).join("\n")
    assert.include(bareGrace, "gracePeriod: 20 has no unit")
    const oneGlob = ruleIssues({ include: "**/*.log", exclude: { a: 1 } }).join("\n")
    assert.include(oneGlob, `rules[2].include: expected a list of globs, got one string: write ["**/*.log"]`)
    assert.include(oneGlob, `rules[2].exclude: expected a list of globs, got {"a":1}`)
    // a bad element in a list is still named by its index
    assert.include(ruleIssues({ exclude: ["ok/**", "t/[z-a]"] }).join("\n"), `rules[2].exclude[1]: "t/[z-a]"`)
    // February 31st: croner accepts the pattern, and the rule would never run
    assert.include(
      ruleIssues({ schedule: "0 3 31 2 *" }).join("\n"),
      `rules[2].schedule: "0 3 31 2 *" is not a valid cron expression (it never fires: no date matches it)`
    )
    assert.isTrue(Either.isRight(decode({ rules: [rule({ schedule: "0 3 29 2 *", include: ["**/*.log"] })] })))
  })

  it("concurrency, listConcurrency and batchSize: the ranges the engine accepts, refused above them", () => {
    const { batchSize, concurrency, listConcurrency } = Deletion.runOptionBounds
    const at = { concurrency: concurrency.max, listConcurrency: listConcurrency.max, batchSize: batchSize.max }
    assert.isTrue(Either.isRight(decode({ rules: [rule(at)] })))
    const over = ruleIssues({
      concurrency: concurrency.max + 1,
      listConcurrency: listConcurrency.max + 1,
      batchSize: batchSize.max + 1
    }).join("\n")
    assert.include(over, `rules[2].concurrency: ${concurrency.max + 1} is over ${concurrency.max}`)
    assert.include(over, `rules[2].listConcurrency: ${listConcurrency.max + 1} is over ${listConcurrency.max}`)
    assert.include(over, `rules[2].batchSize: ${batchSize.max + 1} is over ${batchSize.max}`)
  })
})

describe("Config: safety (issue 9)", () => {
  it("YAML globs match code points exactly as the library does: astral characters and combining marks", () => {
    const globs = ["t/keep?", "t/[\u{1F600}]x", "t/[\u{1F600}-\u{1F64F}]", "t/caf??"]
    const result = decode({ rules: [rule({ prefix: "t/", exclude: globs })] })
    assert.isTrue(Either.isRight(result), JSON.stringify(Either.isLeft(result) ? result.left.issues : []))
    if (Either.isLeft(result)) return
    const m = Deletion.matcher({ prefix: "t/", exclude: result.right.rules[0]!.exclude }, 0)
    for (const key of ["t/keep\u{1F600}", "t/\u{1F600}x", "t/\u{1F601}", "t/cafe\u0301"]) {
      assert.isFalse(m.key(key), `the rule's exclude protects ${key}`)
    }
    assert.isTrue(m.key("t/keep\u{1F600}\u{1F600}"))
    // A glob the engine cannot compile is refused here, not read as matching nothing.
    const problems = ruleIssues({ exclude: ["t/[z-a]", "t/a{"] })
    assert.include(problems.join("\n"), `rules[2].exclude[0]: "t/[z-a]" is not a valid glob`)
    assert.include(problems.join("\n"), `rules[2].exclude[1]: "t/a{" is not a valid glob`)
  })

  it("a YAML include `logs/**/*` selects what is under logs/, never the key logs itself", () => {
    const result = decode({ rules: [rule({ prefix: "logs", include: ["logs/**/*"] })] })
    assert.isTrue(Either.isRight(result), JSON.stringify(Either.isLeft(result) ? result.left.issues : []))
    if (Either.isLeft(result)) return
    const m = Deletion.matcher({ prefix: "logs", include: result.right.rules[0]!.include }, 0)
    assert.isFalse(m.key("logs"))
    assert.isFalse(m.key("logs.gz"))
    assert.isTrue(m.key("logs/"))
    assert.isTrue(m.key("logs/2026/a\n.gz"))
  })

  it("olderThan: 0s (or 0m, 0d) does not count as an age filter for the delete-everything guard", () => {
    for (const olderThan of ["0s", "0m", "0d", "0ms", "0h0m"]) {
      const problems = ruleIssues({ olderThan })
      assert.include(
        problems.join("\n"),
        `rules[2]: a rule needs olderThan or keepLatest (or versions: delete-markers)`,
        olderThan
      )
    }
    assert.isTrue(Either.isRight(decode({ rules: [rule({ olderThan: "1s" })] })))
    assert.isTrue(Either.isRight(decode({ rules: [rule({ olderThan: "0s", keepLatest: 3 })] })))
  })

  it("a secret of the wrong type is never echoed in the error", () => {
    const secret = "s3cr3t-Value-9f8e7d"
    for (
      const credentials of [
        { secretKey: [secret] },
        { secretKey: { value: secret } },
        { securityToken: [secret] },
        { secretKey: 12345678 },
        { secretId: [secret] }
      ]
    ) {
      const problems = ruleIssues({ credentials }).join("\n")
      const field = Object.keys(credentials)[0]!
      assert.include(problems, `rules[2].credentials.${field}:`)
      assert.notInclude(problems, secret)
      assert.notInclude(problems, "12345678")
    }
    const top = issues({ cos: { region: "ap-beijing", credentials: { secretKey: [secret] } }, rules: [rule()] })
    assert.include(top.join("\n"), "cos.credentials.secretKey:")
    assert.notInclude(top.join("\n"), secret)
  })
})
