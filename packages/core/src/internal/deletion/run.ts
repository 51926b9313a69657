/**
 * One run's state: its client, governor and resolved options, its tally, its checkpoints, and one phase field
 * (running, or stopping with the reason and the error that ended it) read by every part of the run.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type { CosClient as Client } from "../../CosClient.js"
import type { CosError } from "../../CosError.js"
import type * as Deletion from "../../Deletion.js"
import type * as Governor from "../../Governor.js"
import type { Resolved } from "./options.js"
import { Checkpoints } from "./segments.js"
import { Tally } from "./tally.js"

/**
 * Why a run stops before the end of its listing: a stop signal or the caller's interruption (`interrupted`), or an
 * error after which going on is pointless (`failed`: a listing failure after retries, a 403, no such bucket).
 *
 * @internal
 */
export type StopReason = "interrupted" | "failed"

/** @internal */
export type Phase =
  | { readonly _tag: "Running" }
  | { readonly _tag: "Stopping"; readonly reason: StopReason; readonly error: unknown }

const running: Phase = { _tag: "Running" }

/** @internal */
export class Run {
  readonly tally: Tally
  phase: Phase = running
  /**
   * Set by the selection once a cap was reached (`maxDeletes` keys taken, or the next key would take the bytes past
   * `maxDeleteSize`): what is left is skipped, what was taken is sent.
   */
  capped: "maxDeletes" | "maxDeleteSize" | undefined = undefined
  /** Completes when the run starts stopping. */
  readonly stopped: Deferred.Deferred<void>
  readonly checkpoints: Checkpoints | undefined
  private readonly checkpointLock = Effect.unsafeMakeSemaphore(1)

  /** Hands the failures since the last call to the caller's `onFailed`, if any. */
  readonly reportFailures: Effect.Effect<void> = Effect.suspend(() => {
    const hook = this.r.options.onFailed
    if (hook === undefined) return Effect.void
    const failures = this.tally.takeUnreported()
    return failures.length === 0 ? Effect.void : hook(failures)
  })

  constructor(
    readonly client: Client,
    readonly governor: Governor.Governor,
    readonly r: Resolved,
    stopped: Deferred.Deferred<void>,
    startAfter: string | undefined,
    withCheckpoints: boolean
  ) {
    this.tally = new Tally(r.sampleSize, r.options.onFailed !== undefined)
    this.stopped = stopped
    this.checkpoints = withCheckpoints && r.options.onCheckpoint !== undefined
      ? new Checkpoints(startAfter ?? "")
      : undefined
  }

  get stopping(): boolean {
    return this.phase._tag === "Stopping"
  }

  /** The error that ended the run, if one did. */
  get error(): unknown {
    return this.phase._tag === "Stopping" ? this.phase.error : undefined
  }

  /**
   * What the summary says about an early stop: the cap wins, as it explains the skipped keys; else the reason the
   * run started stopping (`failed` when an error ended it, not `interrupted`).
   */
  get stoppedBy(): Deletion.Summary["stoppedBy"] {
    return this.capped !== undefined ? this.capped : this.phase._tag === "Stopping" ? this.phase.reason : undefined
  }

  /** Starts stopping (once): no more listing, batches not yet sent are skipped, batches in flight finish. */
  requestStop(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.phase._tag === "Running") this.phase = { _tag: "Stopping", reason: "interrupted", error: undefined }
      return Deferred.succeed(this.stopped, undefined)
    })
  }

  /**
   * Stops because of `error`; the first error is the one the run fails with, and the first reason to stop is the
   * one the summary gives (a stop signal, then an error: still `interrupted`, and the run fails with the error).
   */
  fail(error: CosError | unknown): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.phase._tag === "Running") this.phase = { _tag: "Stopping", reason: "failed", error }
      else if (this.phase.error === undefined) this.phase = { _tag: "Stopping", reason: this.phase.reason, error }
      return Deferred.succeed(this.stopped, undefined)
    })
  }

  /** Reports the checkpoint if it moved; serialised so reports never go backwards. */
  readonly reportCheckpoint: Effect.Effect<void> = Effect.suspend(() => {
    const cp = this.checkpoints
    const hook = this.r.options.onCheckpoint
    if (cp === undefined || hook === undefined || cp.position() === cp.reported) return Effect.void
    return this.checkpointLock.withPermits(1)(Effect.suspend(() => {
      const f = cp.position()
      if (f === undefined || f === "" || f === cp.reported) return Effect.void
      cp.reported = f
      return hook(f)
    }))
  })

  readonly markRequest: Effect.Effect<void> = Effect.map(Clock.currentTimeMillis, (now) => this.tally.requestSent(now))
  readonly markDone: Effect.Effect<void> = Effect.map(Clock.currentTimeMillis, (now) => this.tally.requestDone(now))
}
