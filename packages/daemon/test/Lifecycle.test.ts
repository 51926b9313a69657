/**
 * `cos-retention plan` says per rule whether COS lifecycle could do the job server-side, and `plan --lifecycle` prints
 * the lifecycle configuration of those rules: from YAML rules, through the CLI.
 */
import { CosFake, CosFakeServer, Store } from "@effect-cos/testkit"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { cosRetention as inProcess } from "./support/inProcess.js"

/** `cos-retention <args> --log-format json` in process, with this process's environment (the rules name credentials). */
const cosRetention = (...args: Array<string>) => inProcess([...args, "--log-format", "json"], ConfigProvider.fromEnv())

const bucket = CosFake.testBucket

const rules = (endpoint: string) =>
  `cos:
  region: ${CosFake.testRegion}
  endpoint: ${endpoint}
  credentials: { secretId: ${CosFake.testCredentials.secretId}, secretKey: ${
    Redacted.value(CosFake.testCredentials.secretKey)
  } }
state: ":memory:"
rules:
  - name: logs
    bucket: ${bucket}
    prefix: "a&b<c>/\\"q'\\t\\r\\n/"
    olderThan: 30d
    schedule: "0 3 * * *"
  - name: old-versions
    bucket: ${bucket}
    prefix: v/
    versions: noncurrent
    olderThan: 2w
    schedule: "0 3 * * *"
  - name: markers
    bucket: ${bucket}
    prefix: ""
    allowWholeBucket: true
    versions: delete-markers
    schedule: "0 3 * * *"
  - name: globs
    bucket: ${bucket}
    prefix: logs/
    include: ["**/*.gz"]
    olderThan: 30d
    schedule: "0 3 * * *"
  - name: newest
    bucket: ${bucket}
    prefix: backups/
    keepLatest: 7
    minSize: 1KB
    olderThan: 2d
    schedule: "0 3 * * *"
  - name: hours
    bucket: ${bucket}
    prefix: tmp/
    olderThan: 36h
    schedule: "0 3 * * *"
  - name: purge-all
    bucket: ${bucket}
    prefix: all/
    versions: all
    olderThan: 30d
    schedule: "0 3 * * *"
  - name: elsewhere
    bucket: other-1250000000
    prefix: x/
    olderThan: 1d
    enabled: false
    schedule: "0 3 * * *"
`

describe("plan and COS lifecycle", () => {
  it.live(
    "plan --lifecycle prints the equivalent configuration, escaped; the others say why not",
    () =>
      Effect.gen(function*() {
        const server = yield* CosFakeServer.start({})
        yield* Store.seed(server.fake.store, { bucket, count: 3, prefix: "logs/" })
        const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "lifecycle-test-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true })))
        const config = NodePath.join(dir, "retention.yaml")
        NodeFs.writeFileSync(config, rules(server.url))

        const xml = yield* cosRetention("plan", "--config", config, "--lifecycle")
        assert.strictEqual(xml.code, 0, xml.stderr)
        assert.strictEqual(
          xml.stdout,
          [
            `<?xml version="1.0" encoding="UTF-8"?>`,
            `<LifecycleConfiguration>`,
            `  <Rule>`,
            `    <ID>logs</ID>`,
            `    <Filter><Prefix>a&amp;b&lt;c&gt;/&quot;q&apos;&#9;&#13;&#10;/</Prefix></Filter>`,
            `    <Status>Enabled</Status>`,
            `    <Expiration><Days>30</Days></Expiration>`,
            `  </Rule>`,
            `  <Rule>`,
            `    <ID>old-versions</ID>`,
            `    <Filter><Prefix>v/</Prefix></Filter>`,
            `    <Status>Enabled</Status>`,
            `    <NoncurrentVersionExpiration><NoncurrentDays>14</NoncurrentDays></NoncurrentVersionExpiration>`,
            `  </Rule>`,
            `  <Rule>`,
            `    <ID>markers</ID>`,
            `    <Filter><Prefix></Prefix></Filter>`,
            `    <Status>Enabled</Status>`,
            `    <Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>`,
            `  </Rule>`,
            `</LifecycleConfiguration>`
          ].join("\n")
        )
        assert.include(xml.stderr, "globs: not expressible as COS lifecycle: include/exclude globs")
        assert.include(xml.stderr, "newest: not expressible as COS lifecycle: keepLatest")
        assert.include(xml.stderr, "minSize/maxSize")
        assert.include(
          xml.stderr,
          "hours: not expressible as COS lifecycle: olderThan 36h is not a whole number of days"
        )
        assert.include(xml.stderr, "purge-all: not expressible as COS lifecycle: versions: all")
        assert.include(xml.stderr, "replaces the bucket's whole lifecycle configuration")

        // One configuration per bucket: rules of two buckets need a choice.
        const two = yield* cosRetention("plan", "--config", config, "--lifecycle", "--rule", "elsewhere")
        assert.strictEqual(two.code, 0, two.stderr)
        assert.include(two.stdout, "<ID>elsewhere</ID>")
        assert.include(two.stdout, "<Expiration><Days>1</Days></Expiration>")
        const none = yield* cosRetention("plan", "--config", config, "--lifecycle", "--rule", "globs")
        assert.strictEqual(none.code, 1)
        assert.include(none.stderr, "no selected rule can be done by COS lifecycle")

        // The plan itself says it per rule.
        const plan = yield* cosRetention("plan", "--config", config, "--json", "--rule", "globs")
        assert.strictEqual(plan.code, 0, plan.stderr)
        assert.deepStrictEqual(JSON.parse(plan.stdout)[0].lifecycle, {
          eligible: false,
          reasons: ["include/exclude globs (lifecycle filters by a plain prefix only)"]
        })
        const table = yield* cosRetention("plan", "--config", config, "--rule", "logs")
        assert.strictEqual(table.code, 0, table.stderr)
        assert.include(table.stdout, "logs: COS lifecycle could do this server-side (Expiration after 30 days")
      }).pipe(Effect.scoped),
    60_000
  )
})
