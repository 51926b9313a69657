/**
 * The HTML status page at `GET /`, over HTTP: rules, next fire time in the rule's zone, last runs, the live view of a
 * running run, nothing external, and every key and error escaped.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { emptyCounts } from "../src/State.js"
import { escapeHtml, formatInZone, render } from "../src/StatusPage.js"
import { httpGet, startHttpStatus, statusSettings } from "./support/status.js"

const secret = "do-not-show-this-secret-key"
const hostile = `<script>alert(1)</script> & "double" 'single'`
const hostileKey = `logs/<img src=x onerror=alert(2)>&amp;"'.log`

const settings = statusSettings(secret, `logs/<b>&"'`)

describe("status page", () => {
  it("escapes every character HTML gives a meaning to", () => {
    assert.strictEqual(
      escapeHtml(hostile),
      "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;double&quot; &#39;single&#39;"
    )
    assert.strictEqual(
      formatInZone(Date.parse("2026-03-01T19:00:00Z"), "Asia/Shanghai"),
      "2026-03-02 03:00:00 Asia/Shanghai"
    )
    assert.strictEqual(
      formatInZone(Date.parse("2026-07-01T12:00:00Z"), "America/New_York"),
      "2026-07-01 08:00:00 America/New_York"
    )
  })

  it("in cluster mode lists the runners and the rules this replica holds, escaped; outside it shows none", () => {
    const now = Date.parse("2026-03-01T00:00:00Z")
    const rule = {
      name: `a&b`,
      enabled: true,
      bucket: "examplebucket-1250000000",
      prefix: "logs/",
      schedule: "0 3 * * *",
      timezone: "UTC",
      olderThan: "30d",
      dryRun: false,
      nextFire: undefined,
      running: null,
      lastSuccessAt: null,
      runs: [{
        ...emptyCounts,
        id: 7,
        rule: `a&b`,
        trigger: "schedule" as const,
        dryRun: false,
        startedAt: now - 60_000,
        endedAt: now - 1_000,
        status: "succeeded" as const,
        resumedFrom: null,
        scheduledAt: now - 60_000,
        runner: `10.0.0.2:34431'"`,
        error: null
      }]
    }
    const base = { now, ready: true, rules: [rule, { ...rule, name: `"c"` }] }
    const outside = render(base)
    assert.notInclude(outside, "cluster runners")
    assert.notInclude(outside, "held by")
    assert.notInclude(outside, "<th>runner</th>")
    const page = render({
      ...base,
      cluster: {
        self: `10.0.0.1:34431<script>`,
        held: [`a&b`],
        runners: [
          { address: `10.0.0.1:34431<script>`, healthy: true, lastSeenAt: now - 3_000, self: true },
          { address: `10.0.0.2:34431'"`, healthy: false, lastSeenAt: now - 125_000, self: false }
        ],
        chunks: [
          {
            rule: `a&b`,
            runId: 7,
            chunk: 0,
            chunks: 3,
            status: "running",
            runner: `10.0.0.2:34431'"`,
            attempts: 2,
            checkpoint: `logs/<x>\n`
          },
          { rule: `a&b`, runId: 7, chunk: 2, chunks: 3, status: "planned", runner: null, attempts: 0, checkpoint: null }
        ]
      }
    })
    assert.include(page, "cluster runners")
    assert.include(page, "<code>10.0.0.1:34431&lt;script&gt;</code> <span class=\"badge live\">this replica</span>")
    assert.include(page, "<code>10.0.0.2:34431&#39;&quot;</code></td><td><span class=\"badge bad\">unhealthy</span>")
    assert.include(page, "<td>3s ago</td><td>a&amp;b</td>")
    assert.include(page, "<td>2m 5s ago</td><td><span class=\"muted\">see its own status page</span>")
    // each rule says whether this replica holds it
    assert.include(page, "<h2>a&amp;b</h2>")
    assert.include(page, "<dt>held by</dt><dd>this replica (<code>10.0.0.1:34431&lt;script&gt;</code>)</dd>")
    assert.include(page, "<dt>held by</dt><dd><span class=\"muted\">another runner</span></dd>")
    // each run says which runner ran it
    assert.include(page, "<th>runner</th>")
    assert.include(page, "<td><code>10.0.0.2:34431&#39;&quot;</code></td>")
    // who runs what of a split run in progress: each unfinished chunk, its runner and checkpoint, escaped
    assert.include(page, "split runs in progress")
    assert.include(
      page,
      `<tr><td>a&amp;b</td><td>7</td><td>1 of 3</td><td><span class="badge live">running</span></td>` +
        `<td><code>10.0.0.2:34431&#39;&quot;</code></td><td>2</td><td><code>&quot;logs/&lt;x&gt;\\n&quot;</code></td></tr>`
    )
    assert.include(
      page,
      `<td>3 of 3</td><td><span class="badge muted">planned</span></td><td><span class="muted">none yet`
    )
    assert.strictEqual(page.match(/<script/g)?.length, 1)
    const idle = render({ ...base, cluster: { self: "h:1", held: [], runners: [], chunks: [] } })
    assert.include(idle, "no runner registered")
    assert.notInclude(idle, "split runs in progress")
  })

  it.scoped("GET / shows each rule, its next run, last runs and the live run, escaped, with nothing external", () =>
    Effect.gen(function*() {
      const { address, state, status } = yield* startHttpStatus(settings)
      yield* status.setReady(true)

      // a failed run whose error names a hostile key, then a succeeded one resumed after it, then one going on
      const failed = yield* state.startRun({ rule: "expire-logs", trigger: "schedule", dryRun: false })
      yield* state.finishRun(
        failed.id,
        "failed",
        { ...emptyCounts, listed: 10, matched: 3, deleted: 2, failed: 1 },
        `1 key could not be deleted (first: ${hostileKey}: AccessDenied ${hostile})`
      )
      const ok = yield* state.startRun({
        rule: "expire-logs",
        trigger: "resume",
        dryRun: false,
        resumedFrom: hostileKey
      })
      yield* state.finishRun(ok.id, "succeeded", { ...emptyCounts, listed: 1234567, matched: 4, deleted: 4 })
      const going = yield* state.startRun({ rule: "expire-logs", trigger: "schedule", dryRun: false })
      yield* state.recordIntent({ id: going.id, rule: "expire-logs", bucket: "examplebucket-1250000000" }, [
        { key: hostileKey },
        { key: "logs/b" }
      ])
      yield* status.update("expire-logs", (l) => ({
        ...l,
        nextFire: new Date("2026-03-01T19:00:00Z"),
        current: {
          runId: going.id,
          startedAt: going.startedAt,
          progress: { listed: 50000, matched: 42000, deleted: 21000, failed: 7, throttled: 0, elapsedMs: 2000 }
        }
      }))

      const page = yield* httpGet(address.port, "/")
      assert.strictEqual(page.status, 200)
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
      assert.include(page.headers.get("content-security-policy") ?? "", "default-src 'none'")
      const body = page.body

      // escaped: the hostile texts appear only as text
      assert.notInclude(body, "<script>alert")
      assert.notInclude(body, "<img")
      assert.notInclude(body, "<b>")
      assert.include(body, escapeHtml(hostile))
      assert.include(body, escapeHtml(hostileKey))
      assert.include(body, escapeHtml(JSON.stringify(`logs/<b>&"'`)))
      assert.strictEqual(body.match(/<script/g)?.length, 1, "only the page's own script")

      // rules, schedule, next fire in the rule's zone
      assert.include(body, "<h2>expire-logs</h2>")
      assert.include(body, "<h2>off</h2>")
      assert.include(body, "<code>0 3 * * *</code> in Asia/Shanghai")
      assert.include(body, "2026-03-02 03:00:00 Asia/Shanghai")
      // the last runs with counts and errors
      assert.include(body, `<span class="badge bad">failed</span>`)
      assert.include(body, `<span class="badge ok">succeeded</span>`)
      assert.include(body, "1,234,567")
      assert.include(body, "AccessDenied")
      // the live view: listed, deleted, rate, failures
      assert.include(body, `run #${going.id} running since`)
      for (const [field, value] of [["listed", "50,000"], ["deleted", "21,000"], ["rate", "10,500"], ["failed", "7"]]) {
        assert.include(body, `data-live="${field}">${value}<`)
      }
      // not in cluster mode: no runners section
      assert.notInclude(body, "cluster runners")
      // nothing external, no secret
      assert.notMatch(body, /(src|href)=["']?(https?:)?\/\//)
      assert.notInclude(body, secret)
      assert.notInclude(body, "AKIDshown")

      // the audit backlog (intents whose outcome is unknown) is a gauge
      const metrics = yield* httpGet(address.port, "/metrics")
      assert.include(metrics.body.split("\n"), `cos_retention_audit_pending_rows{rule="expire-logs"} 2`)
      assert.include(metrics.body.split("\n"), `cos_retention_audit_pending_rows{rule="off"} 0`)
    }))
})
