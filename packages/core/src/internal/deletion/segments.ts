/**
 * Candidates, the listed segments they belong to, and the checkpoint that advances over finished segments.
 *
 * A candidate is settled exactly once (deleted, failed, kept by keepLatest, or left alone after being ranked), and
 * `settle` is the one place that does it: the candidate's segment completes when its last candidate settles after
 * the listing closed it.
 *
 * @internal
 */

/** @internal */
export const enum Kind {
  Object = 0,
  Version = 1,
  Marker = 2
}

/**
 * A listed interval `(lo, hi]` of keys: once every candidate in it is handled, a checkpoint may pass `hi`.
 * `hi === undefined`: to the end of the listing.
 *
 * @internal
 */
export interface Seg {
  readonly lo: string
  hi: string | undefined
  /** Candidates not yet handled. */
  pending: number
  closed: boolean
}

/**
 * A key (or version) selected for deletion. Doubles as the ObjectIdentifier sent to COS.
 *
 * @internal
 */
export interface Cand {
  readonly key: string
  readonly versionId: string | undefined
  readonly size: number
  readonly lastModified: number
  readonly kind: Kind
  readonly seg: Seg | undefined
  /**
   * Passes `olderThan`. With `keepLatest`, candidates that pass every other filter are listed too (they count in
   * the ranking of the newest) but only aged ones are ever deleted; without it, every candidate is aged.
   */
  readonly aged: boolean
}

/** @internal */
export const openSeg = (lo: string, hi: string | undefined): Seg => ({ lo, hi, pending: 0, closed: false })

/**
 * Advances a checkpoint over the completed intervals that chain from the start.
 *
 * @internal
 */
export class Checkpoints {
  frontier: string | undefined
  reported: string | undefined
  private readonly done = new Map<string, Seg>()
  constructor(start: string) {
    this.frontier = start
  }
  complete(seg: Seg): void {
    this.done.set(seg.lo, seg)
    let f = this.frontier
    while (f !== undefined) {
      const s = this.done.get(f)
      if (s === undefined) break
      this.done.delete(f)
      f = s.hi
    }
    this.frontier = f
  }
}

/**
 * Where segments go when complete: the run's checkpoints, or nowhere.
 *
 * @internal
 */
export interface SegSink {
  readonly checkpoints: Checkpoints | undefined
}

/**
 * The one "settle a candidate" path: its segment loses a pending candidate and completes if closed.
 *
 * @internal
 */
export const settle = (sink: SegSink, c: Cand): void => {
  const seg = c.seg
  if (seg !== undefined && --seg.pending === 0 && seg.closed) sink.checkpoints?.complete(seg)
}

/**
 * The listing handed over every candidate of `seg`: it completes now if none is pending.
 *
 * @internal
 */
export const close = (sink: SegSink, seg: Seg): void => {
  seg.closed = true
  if (seg.pending === 0) sink.checkpoints?.complete(seg)
}
