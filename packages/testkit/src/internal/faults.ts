import type * as Faults from "../Faults.js"
import type * as Stats from "../Stats.js"

/** mulberry32: small, seedable, good enough for fault dice. */
export const makeRng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class TokenBucket {
  tokens: number
  last: number
  constructor(readonly rate: number, readonly capacity: number, now: number) {
    this.tokens = capacity
    this.last = now
  }
  refill(now: number) {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.rate) / 1000)
      this.last = now
    }
  }
  /** Whether `cost` can be taken now (a cost above capacity needs a full bucket and leaves debt). */
  canTake(cost: number, now: number): boolean {
    this.refill(now)
    return this.tokens >= Math.min(cost, this.capacity)
  }
  take(cost: number) {
    this.tokens -= cost
  }
}

interface BucketQuotas {
  list: TokenBucket | undefined
  batch: TokenBucket | undefined
  write: TokenBucket | undefined
  read: TokenBucket | undefined
}

export interface Decision {
  readonly fault: Faults.Fault | undefined
  readonly latencyMs: number
}

export class FaultState {
  config: Faults.Config = {}
  rng: () => number = makeRng(42)
  requests = 0
  private script: Array<{ s: Faults.Scripted; remaining: number }> = []
  private quotas = new Map<string, BucketQuotas>()

  constructor(config: Faults.Config) {
    this.set(config)
  }

  set(config: Faults.Config) {
    this.config = config
    this.rng = makeRng(config.seed ?? 42)
    this.script = (config.script ?? []).map((s) => ({ s, remaining: s._tag === "FailNext" ? s.count : 1 }))
    this.quotas.clear()
  }

  addScript(s: Faults.Scripted) {
    this.script.push({ s, remaining: s._tag === "FailNext" ? s.count : 1 })
  }

  private effective(op: Faults.Operation): Faults.OperationFaults {
    const all = this.config.all
    const specific = this.config.operations?.[op]
    if (specific === undefined) return all ?? {}
    if (all === undefined) return specific
    return { ...all, ...specific }
  }

  /** Numbers the request and decides its scripted or random fault and its latency. */
  decide(op: Faults.Operation): Decision {
    const n = ++this.requests
    let fault: Faults.Fault | undefined
    for (const entry of this.script) {
      if (entry.remaining <= 0) continue
      const s = entry.s
      if (s._tag === "FailRequest" ? s.n === n : s.operation === "*" || s.operation === op) {
        entry.remaining--
        fault = s.fault
        break
      }
    }
    const f = this.effective(op)
    if (fault === undefined) {
      const hasRates = (f.slowDownRate ?? 0) + (f.internalErrorRate ?? 0) + (f.resetRate ?? 0) + (f.timeoutRate ?? 0)
      if (hasRates > 0) {
        const u = this.rng()
        let acc = f.slowDownRate ?? 0
        if (u < acc) fault = "SlowDown"
        else if (u < (acc += f.internalErrorRate ?? 0)) fault = "InternalError"
        else if (u < (acc += f.resetRate ?? 0)) fault = "Reset"
        else if (u < (acc += f.timeoutRate ?? 0)) fault = "Timeout"
      }
    }
    const jitter = f.jitterMs ?? 0
    const latencyMs = (f.latencyMs ?? 0) + (jitter > 0 ? this.rng() * jitter : 0)
    return { fault, latencyMs }
  }

  batchKeyError(): boolean {
    const r = this.config.batchKeyErrorRate ?? 0
    return r > 0 && this.rng() < r
  }

  private bucketQuotas(bucket: string, now: number): BucketQuotas | undefined {
    const q = this.config.quotas
    if (q === undefined) return undefined
    let b = this.quotas.get(bucket)
    if (b === undefined) {
      const burst = q.burstSeconds ?? 1
      const tb = (rate: number | undefined) =>
        rate === undefined ? undefined : new TokenBucket(rate, Math.max(1, rate * burst), now)
      b = {
        list: tb(q.listPerSecond),
        batch: tb(q.batchDeletePerSecond),
        write: tb(q.writeKeysPerSecond),
        read: tb(q.readPerSecond)
      }
      this.quotas.set(bucket, b)
    }
    return b
  }

  /** Takes the quota a request needs; false (and nothing taken) when it must be answered with SlowDown. */
  admit(bucket: string, op: Faults.Operation, keys: number, now: number): boolean {
    const b = this.bucketQuotas(bucket, now)
    if (b === undefined) return true
    const needs: Array<[TokenBucket, number]> = []
    if (
      (op === "ListObjects" || op === "ListObjectVersions" || op === "ListMultipartUploads" || op === "ListParts") &&
      b.list
    ) needs.push([b.list, 1])
    if (op === "DeleteObjects" && b.batch) needs.push([b.batch, 1])
    if (
      (op === "DeleteObjects" || op === "PutObject" || op === "DeleteObject" || op === "CreateMultipartUpload" ||
        op === "UploadPart" || op === "CompleteMultipartUpload" || op === "AbortMultipartUpload") && b.write
    ) {
      needs.push([b.write, op === "DeleteObjects" ? keys : 1])
    }
    if ((op === "GetObject" || op === "HeadObject") && b.read) needs.push([b.read, 1])
    for (const [tb, cost] of needs) if (!tb.canTake(cost, now)) return false
    for (const [tb, cost] of needs) tb.take(cost)
    return true
  }
}

export class StatsState {
  requests = 0
  byOperation = new Map<string, number>()
  byStatus = new Map<string, number>()
  byOperationStatus = new Map<string, number>()
  deletedKeys = 0
  batchKeyErrors = 0
  private ring: Array<Stats.LogEntry | undefined>
  private next = 0
  constructor(readonly capacity: number) {
    this.ring = new Array(capacity)
  }

  record(entry: Stats.LogEntry) {
    this.requests++
    const st = String(entry.status)
    this.byOperation.set(entry.operation, (this.byOperation.get(entry.operation) ?? 0) + 1)
    this.byStatus.set(st, (this.byStatus.get(st) ?? 0) + 1)
    const os = `${entry.operation} ${st}`
    this.byOperationStatus.set(os, (this.byOperationStatus.get(os) ?? 0) + 1)
    if (this.capacity > 0) {
      this.ring[this.next] = entry
      this.next = (this.next + 1) % this.capacity
    }
  }

  reset() {
    this.requests = 0
    this.byOperation.clear()
    this.byStatus.clear()
    this.byOperationStatus.clear()
    this.deletedKeys = 0
    this.batchKeyErrors = 0
    this.ring = new Array(this.capacity)
    this.next = 0
  }

  snapshot(): Stats.Snapshot {
    const log: Array<Stats.LogEntry> = []
    for (let i = 0; i < this.capacity; i++) {
      const e = this.ring[(this.next + i) % this.capacity]
      if (e !== undefined) log.push(e)
    }
    return {
      requests: this.requests,
      byOperation: Object.fromEntries(this.byOperation),
      byStatus: Object.fromEntries(this.byStatus),
      byOperationStatus: Object.fromEntries(this.byOperationStatus),
      deletedKeys: this.deletedKeys,
      batchKeyErrors: this.batchKeyErrors,
      log
    }
  }
}
