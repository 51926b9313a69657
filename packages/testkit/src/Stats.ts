/**
 * What the fake observed: counters per operation and per status, and a bounded log of recent requests.
 *
 * @since 0.1.0
 */
import type { Operation } from "./Faults.js"

/**
 * One request as the fake saw it. `status` is the HTTP status, or `"reset"` / `"timeout"` for injected connection
 * faults.
 *
 * @since 0.1.0
 * @category models
 */
export interface LogEntry {
  /** 1-based request number. */
  readonly seq: number
  /** Clock time the request arrived, ms since the epoch. */
  readonly time: number
  readonly method: string
  readonly operation: Operation
  readonly bucket: string | undefined
  /** Object key for object operations. */
  readonly key: string | undefined
  /** Number of objects in a batch delete. */
  readonly keys: number | undefined
  readonly status: number | "reset" | "timeout"
  /** COS error code when the answer was an error. */
  readonly code: string | undefined
  readonly durationMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly requests: number
  readonly byOperation: Readonly<Record<string, number>>
  /** Keyed by status (`"200"`, `"503"`, `"reset"`, ...). */
  readonly byStatus: Readonly<Record<string, number>>
  /** Keyed by `operation status`, e.g. `"DeleteObjects 200"`. */
  readonly byOperationStatus: Readonly<Record<string, number>>
  /** Objects reported deleted by DELETE Object and batch deletes (Deleted entries). */
  readonly deletedKeys: number
  /** Per-key errors inside batch-delete replies. */
  readonly batchKeyErrors: number
  /** The most recent requests, oldest first (bounded). */
  readonly log: ReadonlyArray<LogEntry>
}
