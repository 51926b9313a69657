/**
 * Candidates, the listed segments they belong to, and the checkpoint: it advances over finished segments, and then
 * into the first unfinished one as far as every candidate before it is settled (a key boundary, so that a key's
 * versions are never split by a checkpoint).
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
  /** Its candidates in listing order, once closed. */
  cands: ReadonlyArray<Cand> | undefined
  /** Candidates before this index are known settled (the checkpoint's scan within the segment). */
  at: number
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
  /** Set by `settle`. */
  settled: boolean
}

/** @internal */
export const openSeg = (lo: string, hi: string | undefined): Seg => ({
  lo,
  hi,
  pending: 0,
  closed: false,
  cands: undefined,
  at: 0
})

/**
 * Advances a checkpoint over the completed intervals that chain from the start, then into the interval that starts
 * there, if it is listed, up to its first candidate not yet settled.
 *
 * @internal
 */
export class Checkpoints {
  /** Every candidate up to here is settled, and the listing covered it (`undefined`: the end). */
  frontier: string | undefined
  reported: string | undefined
  private readonly done = new Map<string, Seg>()
  /** Closed intervals with candidates still pending, by `lo`. */
  private readonly open = new Map<string, Seg>()
  constructor(start: string) {
    this.frontier = start
  }
  complete(seg: Seg): void {
    this.open.delete(seg.lo)
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
  /** The listing handed over every candidate of `seg`, some of them still pending. */
  closed(seg: Seg): void {
    this.open.set(seg.lo, seg)
  }
  /**
   * The furthest position with every candidate at or before it settled: the frontier, or a key inside the interval
   * that starts there — the last key before its first pending candidate whose versions are all settled.
   */
  position(): string | undefined {
    const f = this.frontier
    if (f === undefined) return undefined
    const head = this.open.get(f)
    const cands = head?.cands
    if (cands === undefined) return f
    let i = head!.at
    while (i < cands.length && cands[i]!.settled) i++
    head!.at = i
    if (i === 0 || i === cands.length) return f
    const pending = cands[i]!.key
    let j = i - 1
    while (j >= 0 && cands[j]!.key === pending) j--
    return j < 0 ? f : cands[j]!.key
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
  c.settled = true
  const seg = c.seg
  if (seg !== undefined && --seg.pending === 0 && seg.closed) sink.checkpoints?.complete(seg)
}

/**
 * The listing handed over every candidate of `seg` (`cands`, in listing order): it completes now if none is
 * pending.
 *
 * @internal
 */
export const close = (sink: SegSink, seg: Seg, cands: ReadonlyArray<Cand>): void => {
  seg.closed = true
  if (seg.pending === 0) sink.checkpoints?.complete(seg)
  else if (sink.checkpoints !== undefined) {
    seg.cands = cands
    sink.checkpoints.closed(seg)
  }
}
