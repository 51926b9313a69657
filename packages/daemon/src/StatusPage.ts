/**
 * The status page (`GET /` on the status server): one server-rendered HTML document, no external assets, so it works
 * offline on 127.0.0.1. Each rule with its schedule and next fire time in its time zone, a live view of a running
 * run (a small inline script polls `/status`), the last runs with their counts and errors, and in cluster mode the
 * runners. Every text that comes from the configuration, the bucket or COS (prefixes, keys, errors) is escaped.
 */
import type { RunRecord } from "./State.js"

export interface PageRule {
  readonly name: string
  readonly enabled: boolean
  readonly bucket: string
  readonly prefix: string
  readonly schedule: string
  readonly timezone: string
  readonly olderThan: string | null
  readonly dryRun: boolean
  readonly nextFire: Date | undefined
  readonly running:
    | {
      readonly runId: number
      readonly startedAt: number
      readonly progress:
        | {
          readonly listed: number
          readonly matched: number
          readonly deleted: number
          readonly failed: number
          readonly elapsedMs: number
        }
        | null
    }
    | null
  readonly lastSuccessAt: number | null
  readonly runs: ReadonlyArray<RunRecord>
}

export interface PageCluster {
  /** This replica's runner address. */
  readonly self: string
  /** The runners the engine has registered, with its health flag and their last heartbeat (epoch ms). */
  readonly runners: ReadonlyArray<
    { readonly address: string; readonly healthy: boolean; readonly lastSeenAt: number; readonly self: boolean }
  >
  /** The rules this replica holds now. */
  readonly held: ReadonlyArray<string>
  /** The chunks of split runs not finished yet, and who runs them. */
  readonly chunks: ReadonlyArray<
    {
      readonly rule: string
      readonly runId: number
      readonly chunk: number
      readonly chunks: number
      readonly status: string
      readonly runner: string | null
      readonly attempts: number
      readonly checkpoint: string | null
    }
  >
}

export interface PageModel {
  readonly now: number
  readonly ready: boolean
  readonly rules: ReadonlyArray<PageRule>
  /** Present in cluster mode only: the runners, and the rules this replica holds. */
  readonly cluster?: PageCluster | undefined
}

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : c === "\"" ? "&quot;" : "&#39;"
  )

const h = escapeHtml

/** A time in a time zone: `2026-03-02 03:00:00 Asia/Shanghai`. */
export const formatInZone = (ms: number, timeZone: string): string => {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23"
  }).formatToParts(new Date(ms))
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? ""
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}:${get("second")} ${timeZone}`
}

/** `3h 20m`, `45s`, `2d 4h`. */
export const formatSpan = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const hours = Math.floor(m / 60)
  if (hours < 48) return `${hours}h ${m % 60}m`
  return `${Math.floor(hours / 24)}d ${hours % 24}h`
}

const num = (n: number) => n.toLocaleString("en-US")
const utc = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC")

const statusClass = (status: string) =>
  status === "succeeded" ? "ok" : status === "running" ? "live" : status === "interrupted" ? "warn" : "bad"

const liveBlock = (rule: PageRule) => {
  const r = rule.running
  if (r === null) return ""
  const p = r.progress
  const rate = p !== null && p.elapsedMs > 0 ? Math.round(p.deleted / p.elapsedMs * 1000) : 0
  const cell = (field: string, label: string, value: string) =>
    `<div class="stat"><span class="v" data-live="${field}">${value}</span><span class="l">${label}</span></div>`
  return `<div class="live-run" data-live-rule="${h(rule.name)}">
  <div class="live-title"><span class="dot"></span>run #${r.runId} running since ${h(utc(r.startedAt))}</div>
  <div class="stats">${cell("listed", "listed", num(p?.listed ?? 0))}${
    cell("matched", "matched", num(p?.matched ?? 0))
  }${cell("deleted", "deleted", num(p?.deleted ?? 0))}${cell("rate", "keys/s", num(rate))}${
    cell("failed", "failed", num(p?.failed ?? 0))
  }</div>
</div>`
}

const runsTable = (rule: PageRule, cluster: PageCluster | undefined) => {
  if (rule.runs.length === 0) return `<p class="muted">no runs yet</p>`
  const rows = rule.runs.map((stored) => {
    // the database has a running run's counts only at its end: show the live ones
    const p = rule.running?.runId === stored.id ? rule.running.progress : null
    const run = p === null
      ? stored
      : { ...stored, listed: p.listed, matched: p.matched, deleted: p.deleted, failed: p.failed }
    const live = (field: string, value: number) =>
      p === null ? num(value) : `<span data-live="${field}">${num(value)}</span>`
    return `<tr${p === null ? "" : ` data-live-rule="${h(rule.name)}"`}><td>#${run.id}</td><td>${
      h(utc(run.startedAt))
    }</td><td>${h(run.trigger)}${run.dryRun ? " (dry run)" : ""}</td>` +
      `<td><span class="badge ${statusClass(run.status)}">${h(run.status)}</span></td>` +
      `<td class="n">${live("listed", run.listed)}</td><td class="n">${live("matched", run.matched)}</td>` +
      `<td class="n">${live("deleted", run.deleted)}</td><td class="n">${live("failed", run.failed)}</td>` +
      `<td class="n">${run.endedAt === null ? "" : h(formatSpan(run.endedAt - run.startedAt))}</td>` +
      (cluster === undefined ? "" : `<td>${run.runner === null ? "" : `<code>${h(run.runner)}</code>`}</td>`) +
      `<td class="err">${run.error === null ? "" : h(run.error)}${
        run.resumedFrom === null ? "" : `<div class="muted">resumed after ${h(JSON.stringify(run.resumedFrom))}</div>`
      }</td></tr>`
  }).join("\n")
  return `<table><thead><tr><th>run</th><th>started</th><th>trigger</th><th>status</th><th class="n">listed</th>` +
    `<th class="n">matched</th><th class="n">deleted</th><th class="n">failed</th><th class="n">took</th>` +
    `${cluster === undefined ? "" : "<th>runner</th>"}<th>error</th>` +
    `</tr></thead><tbody>\n${rows}\n</tbody></table>`
}

const ruleSection = (rule: PageRule, now: number, cluster: PageCluster | undefined) => {
  const next = rule.nextFire === undefined
    ? rule.enabled ? "no future fire time" : "disabled"
    : `${h(formatInZone(rule.nextFire.getTime(), rule.timezone))} <span class="muted">(in ${
      h(formatSpan(rule.nextFire.getTime() - now))
    })</span>`
  const filters = [
    `prefix <code>${h(JSON.stringify(rule.prefix))}</code>`,
    rule.olderThan === null ? undefined : `older than ${h(rule.olderThan)}`,
    rule.dryRun ? "dry run" : undefined
  ].filter((x) => x !== undefined).join(" · ")
  return `<section class="rule${rule.enabled ? "" : " disabled"}">
<header><h2>${h(rule.name)}</h2>${rule.enabled ? "" : `<span class="badge warn">disabled</span>`}</header>
<dl>
  <dt>bucket</dt><dd><code>${h(rule.bucket)}</code></dd>
  <dt>selects</dt><dd>${filters}</dd>
  <dt>schedule</dt><dd><code>${h(rule.schedule)}</code> in ${h(rule.timezone)}</dd>
  <dt>next run</dt><dd>${next}</dd>${
    cluster === undefined ? "" : `\n  <dt>held by</dt><dd>${
      cluster.held.includes(rule.name)
        ? `this replica (<code>${h(cluster.self)}</code>)`
        : `<span class="muted">another runner</span>`
    }</dd>`
  }
  <dt>last success</dt><dd>${
    rule.lastSuccessAt === null
      ? `<span class="muted">never</span>`
      : `${h(utc(rule.lastSuccessAt))} <span class="muted">(${h(formatSpan(now - rule.lastSuccessAt))} ago)</span>`
  }</dd>
</dl>
${liveBlock(rule)}
<h3>last runs</h3>
${runsTable(rule, cluster)}
</section>`
}

const clusterSection = (model: PageModel) => {
  const cluster = model.cluster
  if (cluster === undefined) return ""
  const rows = cluster.runners.map((r) =>
    `<tr><td><code>${h(r.address)}</code>${r.self ? ` <span class="badge live">this replica</span>` : ""}</td>` +
    `<td><span class="badge ${r.healthy ? "ok" : "bad"}">${r.healthy ? "healthy" : "unhealthy"}</span></td>` +
    `<td>${h(formatSpan(model.now - r.lastSeenAt))} ago</td><td>${
      r.self
        ? cluster.held.length === 0 ? `<span class="muted">none</span>` : h(cluster.held.join(", "))
        : `<span class="muted">see its own status page</span>`
    }</td></tr>`
  ).join("\n")
  return `<section class="rule"><header><h2>cluster runners</h2></header>
${
    cluster.runners.length === 0
      ? `<p class="muted">no runner registered</p>`
      : `<table><thead><tr><th>runner</th><th>health</th><th>last seen</th><th>rules held</th></tr></thead><tbody>
${rows}
</tbody></table>`
  }
${chunksTable(cluster)}
</section>`
}

/** Who runs what of the split runs in progress (`parallelism: N`): one row per chunk not finished yet. */
const chunksTable = (cluster: PageCluster) => {
  if (cluster.chunks.length === 0) return ""
  const rows = cluster.chunks.map((c) =>
    `<tr><td>${h(c.rule)}</td><td>${c.runId}</td><td>${c.chunk + 1} of ${c.chunks}</td>` +
    `<td><span class="badge ${c.status === "running" ? "live" : "muted"}">${h(c.status)}</span></td>` +
    `<td>${c.runner === null ? `<span class="muted">none yet</span>` : `<code>${h(c.runner)}</code>`}</td>` +
    `<td>${c.attempts}</td><td>${c.checkpoint === null ? "" : `<code>${h(JSON.stringify(c.checkpoint))}</code>`}</td>` +
    `</tr>`
  ).join("\n")
  return `<h3>split runs in progress</h3>
<table><thead><tr><th>rule</th><th>run</th><th>chunk</th><th>status</th><th>runner</th><th>attempts</th>` +
    `<th>checkpoint</th></tr></thead><tbody>
${rows}
</tbody></table>`
}

// Polls /status every 2 s: updates the numbers of running runs, and reloads the page when a run starts or ends.
const script = `(() => {
  const fmt = (n) => Number(n).toLocaleString("en-US");
  const shown = new Set(Array.from(document.querySelectorAll(".live-run")).map((e) => e.dataset.liveRule));
  const tick = async () => {
    try {
      const res = await fetch("status", { cache: "no-store" });
      const body = await res.json();
      const running = new Set(body.rules.filter((r) => r.running).map((r) => r.name));
      if (running.size !== shown.size || Array.from(running).some((n) => !shown.has(n))) return location.reload();
      for (const r of body.rules) {
        const boxes = Array.from(document.querySelectorAll("[data-live-rule]")).filter((e) => e.dataset.liveRule === r.name);
        const p = r.running && r.running.progress;
        if (!p) continue;
        const set = (k, v) => boxes.forEach((b) => b.querySelectorAll('[data-live="' + k + '"]').forEach((el) => (el.textContent = v)));
        set("listed", fmt(p.listed)); set("matched", fmt(p.matched)); set("deleted", fmt(p.deleted));
        set("failed", fmt(p.failed)); set("rate", fmt(p.elapsedMs > 0 ? Math.round(p.deleted / p.elapsedMs * 1000) : 0));
      }
    } catch (e) {}
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
})();`

const style = `
:root { color-scheme: light; --fg: #1d2430; --muted: #6b7585; --line: #e3e7ee; --bg: #f6f8fb; --card: #fff;
  --ok: #1a7f37; --bad: #c62828; --warn: #9a6700; --live: #0b63c5; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 40px; }
.top { display: flex; align-items: baseline; gap: 12px; margin-bottom: 18px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 16px; margin: 0; }
h3 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 18px 0 6px; }
.muted { color: var(--muted); }
code { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; background: #f0f2f6;
  padding: 1px 5px; border-radius: 4px; word-break: break-all; }
section.rule { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
  margin-bottom: 16px; }
section.disabled { opacity: .7; }
section header { display: flex; align-items: center; gap: 10px; margin-bottom: 10px; }
dl { display: grid; grid-template-columns: 110px 1fr; gap: 4px 12px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.err { color: var(--bad); max-width: 380px; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  background: #eef1f5; }
.badge.ok { color: var(--ok); background: #e6f4ea; }
.badge.bad { color: var(--bad); background: #fdecea; }
.badge.warn { color: var(--warn); background: #fff4d6; }
.badge.live { color: var(--live); background: #e5f0fc; }
.live-run { margin-top: 12px; border: 1px solid #cfe0f5; background: #f3f8fe; border-radius: 6px; padding: 10px 12px; }
.live-title { font-weight: 600; color: var(--live); display: flex; align-items: center; gap: 8px; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: var(--live); animation: pulse 1.2s infinite; }
@keyframes pulse { 50% { opacity: .25; } }
.stats { display: flex; gap: 28px; margin-top: 8px; }
.stat { display: flex; flex-direction: column; }
.stat .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.stat .l { color: var(--muted); font-size: 12px; }
footer { color: var(--muted); font-size: 12px; margin-top: 8px; }
footer a { color: inherit; }
`

/** The whole page. */
export const render = (model: PageModel): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cos-retention status</title>
<noscript><meta http-equiv="refresh" content="10"></noscript>
<style>${style}</style>
</head>
<body>
<main>
<div class="top"><h1>cos-retention</h1><span class="badge ${model.ready ? "ok" : "warn"}">${
    model.ready ? "ready" : "starting"
  }</span><span class="muted">${model.rules.length} rule${model.rules.length === 1 ? "" : "s"} · ${
    h(utc(model.now))
  }</span></div>
${model.rules.map((r) => ruleSection(r, model.now, model.cluster)).join("\n")}
${clusterSection(model)}
<footer>Also: <a href="status">/status</a> (JSON) · <a href="metrics">/metrics</a> (Prometheus) ·
<a href="healthz">/healthz</a> · <a href="readyz">/readyz</a></footer>
</main>
<script>${script}</script>
</body>
</html>
`
