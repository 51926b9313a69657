/**
 * `cos-retention purge --audit-log FILE`: one JSON line per deleted key (or version), one per failed key with its
 * code, and nothing else. Lines are appended (an existing log is never truncated) with a synchronous write per batch
 * of outcomes, so what COS confirmed is in the file before the next batch is handled, and a signal (the run then stops
 * gracefully) or a crash after that loses nothing; the file is fsynced and closed when the run ends.
 */
import type { Deletion } from "@effect-cos/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"

export interface AuditLog {
  readonly deleted: (deleted: ReadonlyArray<Deletion.Deleted>) => Effect.Effect<void>
  readonly failed: (failures: ReadonlyArray<Deletion.Failure>) => Effect.Effect<void>
}

export const deletedLine = (bucket: string, d: Deletion.Deleted, time: string): string =>
  JSON.stringify({
    key: d.key,
    versionId: d.versionId ?? null,
    outcome: d.deleteMarkerCreated ? "delete-marker-created" : "deleted",
    size: d.size ?? null,
    bucket,
    time
  })

export const failedLine = (bucket: string, f: Deletion.Failure, time: string): string =>
  JSON.stringify({
    key: f.key,
    versionId: f.versionId ?? null,
    outcome: "failed",
    code: f.code,
    message: f.message,
    bucket,
    time
  })

/** Opens (creating or appending to) the log; fails with the reason if it cannot be opened for writing. */
export const open = (path: string, bucket: string): Effect.Effect<AuditLog, string, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.try({
        try: () => NodeFs.openSync(path, "a", 0o600),
        catch: (e) => `--audit-log ${path}: cannot open it for writing: ${(e as Error).message}`
      }),
      (fd) =>
        Effect.sync(() => {
          try {
            NodeFs.fsyncSync(fd)
          } finally {
            NodeFs.closeSync(fd)
          }
        })
    ),
    (fd) => {
      const write = (lines: Array<string>) =>
        Effect.sync(() => {
          if (lines.length > 0) NodeFs.writeSync(fd, lines.join("\n") + "\n")
        })
      return {
        deleted: (deleted) =>
          Effect.suspend(() => {
            const time = new Date().toISOString()
            return write(deleted.map((d) => deletedLine(bucket, d, time)))
          }),
        failed: (failures) =>
          Effect.suspend(() => {
            const time = new Date().toISOString()
            return write(failures.map((f) => failedLine(bucket, f, time)))
          })
      }
    }
  )
