/**
 * Selection: listed candidates through keepLatest and the caps (`maxDeletes`, `maxDeleteSize`) into full batches, and the versions listing's
 * per-key state across pages, and incomplete uploads through `maxDeletes`. Synchronous loops over arrays, one call per
 * listed page.
 *
 * @internal
 */
import type { MultipartUpload, VersionEntry } from "../../CosClient.js"
import type * as Deletion from "../../Deletion.js"
import { insertNewestFirst, type KeepLatest, newer } from "./filters.js"
import type { Run } from "./run.js"
import { type Cand, close, Kind, openSeg, type Seg, settle } from "./segments.js"
import { label, uploadLabel } from "./tally.js"

/**
 * Turns pages of candidates into full batches.
 *
 * @internal
 */
export class Selector {
  private batch: Array<Cand> = []
  private sent = 0
  private sentBytes = 0
  constructor(
    private readonly run: Run,
    private readonly keep: KeepLatest | undefined
  ) {}

  /**
   * Accounts one selected candidate: counted as matched, then skipped (over a cap) or batched, so that in
   * the end `matched = deleted + failed + skipped`.
   */
  private take(c: Cand, out: Array<Array<Cand>>): void {
    const run = this.run
    const t = run.tally
    t.matched++
    t.matchedBytes += c.size
    if (c.kind === Kind.Object) t.objects++
    else if (c.kind === Kind.Version) t.versions++
    else t.deleteMarkers++
    const { maxDeleteSize, maxDeletes } = run.r
    if (run.capped === undefined) {
      if (maxDeletes !== undefined && this.sent >= maxDeletes) run.capped = "maxDeletes"
      // The key that would take the bytes sent past the cap is left, and so is everything after it: never exceeded.
      else if (maxDeleteSize !== undefined && this.sentBytes + c.size > maxDeleteSize) run.capped = "maxDeleteSize"
    }
    if (run.capped !== undefined) {
      t.skipped++
      t.capLeft++
      t.capLeftBytes += c.size
      return
    }
    this.sent++
    this.sentBytes += c.size
    if (t.sample.length < t.sampleSize) t.sample.push(label(c))
    if (run.r.dryRun) {
      settle(run, c)
      return
    }
    this.batch.push(c)
    if (this.batch.length >= run.r.batchSize) {
      out.push(this.batch)
      this.batch = []
    }
  }

  /** Offers candidates through keep-latest: the newest `count` per group are held back until the end. */
  private offer(c: Cand, out: Array<Array<Cand>>): void {
    const keep = this.keep
    if (keep === undefined) return this.take(c, out)
    const g = keep.group(c.key)
    let heap = keep.heaps.get(g)
    if (heap === undefined) {
      heap = []
      keep.heaps.set(g, heap)
    }
    // `heap` is sorted newest first and holds at most `count` candidates.
    if (heap.length < keep.count) {
      insertNewestFirst(heap, c)
      return
    }
    const oldest = heap[heap.length - 1]!
    if (newer(c, oldest)) {
      heap.pop()
      insertNewestFirst(heap, c)
      this.outranked(oldest, out)
    } else {
      this.outranked(c, out)
    }
  }

  /** Not among the newest `count`: deleted if it also passes `olderThan`, else left alone (not selected). */
  private outranked(c: Cand, out: Array<Array<Cand>>): void {
    if (c.aged) this.take(c, out)
    else settle(this.run, c)
  }

  /** Takes one listed portion: its candidates were counted into `seg.pending` by the source. */
  push(cands: ReadonlyArray<Cand>, seg: Seg | undefined): Array<Array<Cand>> {
    const out: Array<Array<Cand>> = []
    for (let i = 0; i < cands.length; i++) this.offer(cands[i]!, out)
    if (seg !== undefined) close(this.run, seg, cands)
    return out
  }

  /** End of the listing: kept candidates are handled; the last partial batch goes out (skipped at a stop). */
  finish(): Array<Array<Cand>> {
    const out: Array<Array<Cand>> = []
    if (this.keep !== undefined) {
      for (const heap of this.keep.heaps.values()) {
        for (const c of heap) {
          if (c.aged) this.run.tally.kept++
          settle(this.run, c)
        }
      }
      this.keep.heaps.clear()
    }
    if (this.batch.length > 0) {
      if (this.run.stopping) this.run.tally.skipped += this.batch.length
      else out.push(this.batch)
      this.batch = []
    }
    return out
  }
}

/**
 * Selects the versions of one listed range, page by page. A key's versions may span pages, and the next page is asked
 * for with the last version listed as `version-id-marker` (docs/protocol.md §3), so a key's versions are only
 * released for deletion once the range's listing has moved past the key: the marker version still exists when the
 * next page is requested. Segments (for checkpoints) end on key boundaries, at most one per page, and the range's
 * last one on the range's bound, where the next range's first one starts.
 *
 * @internal
 */
export class VersionsSelector {
  private key: string | undefined = undefined
  private prevLastModified: Date | undefined = undefined
  private hasVersions = false
  /**
   * Selected entries of the current key with whether they pass `olderThan` (in delete-markers mode: its markers,
   * decided at the end of the key).
   */
  private entries: Array<{ readonly v: VersionEntry; readonly aged: boolean }> = []
  private seg: Seg
  constructor(
    private readonly mode: Deletion.VersionsMode,
    /** Every filter (but `olderThan` when `keepLatest` ranks entries regardless of age). */
    private readonly match: Deletion.Matcher,
    /** Every filter. */
    private readonly aged: Deletion.Matcher,
    /** Where the range starts (exclusive). */
    lo: string
  ) {
    this.seg = openSeg(lo, undefined)
  }

  /** The current key is complete: its selected entries become candidates of the open segment. */
  private endKey(out: Array<Cand>): void {
    const seg = this.seg
    const ctx = this.mode === "delete-markers" ? { keyHasVersions: this.hasVersions } : undefined
    for (const e of this.entries) {
      const v = e.v
      if (ctx !== undefined && !this.match.version(v, ctx)) continue
      seg.pending++
      out.push({
        key: v.key,
        // An empty VersionId: versioning was never enabled (docs/protocol.md §3), the key has this one version, and a
        // plain delete removes it; `versionId=` (empty) would address no version and delete nothing.
        versionId: v.versionId === "" ? undefined : v.versionId,
        size: v._tag === "Version" ? v.size : 0,
        lastModified: v.lastModified.getTime(),
        kind: v._tag === "Version" ? Kind.Version : Kind.Marker,
        seg,
        aged: ctx !== undefined ? this.aged.version(v, ctx) : e.aged,
        settled: false
      })
    }
    this.entries = []
  }

  /**
   * The candidates of the keys this page completed, with their segment (if any key was completed). The range's last
   * page (`last`) completes every key and the segment, up to the range's bound `hi`.
   */
  page(
    entries: ReadonlyArray<VersionEntry>,
    last: boolean,
    hi: string | undefined
  ): { cands: Array<Cand>; seg: Seg } | undefined {
    const out: Array<Cand> = []
    let completed: string | undefined
    for (const v of entries) {
      if (v.key !== this.key) {
        if (this.key !== undefined) {
          this.endKey(out)
          completed = this.key
        }
        this.key = v.key
        this.prevLastModified = undefined
        this.hasVersions = false
      }
      if (v._tag === "Version") this.hasVersions = true
      switch (this.mode) {
        case "all":
          if (this.match.version(v)) this.entries.push({ v, aged: this.aged.version(v) })
          break
        case "noncurrent": {
          const ctx = { noncurrentSince: this.prevLastModified }
          if (this.match.version(v, ctx)) this.entries.push({ v, aged: this.aged.version(v, ctx) })
          break
        }
        case "delete-markers":
          if (v._tag === "DeleteMarker") this.entries.push({ v, aged: false })
          break
        case "current":
          break
      }
      this.prevLastModified = v.lastModified
    }
    const seg = this.seg
    if (last) {
      if (this.key !== undefined) this.endKey(out)
      seg.hi = hi
      return { cands: out, seg }
    }
    if (completed === undefined) return undefined
    seg.hi = completed
    this.seg = openSeg(completed, undefined)
    return { cands: out, seg }
  }
}

/**
 * Selects listed incomplete uploads for abort: each is counted as matched (and in `breakdown.objects`), then skipped
 * (over `maxDeletes`) or taken, so that `matched = deleted + failed + skipped` counts uploads. A dry run takes none.
 *
 * @internal
 */
export class UploadsSelector {
  private sent = 0
  constructor(private readonly run: Run) {}

  /** The uploads of one listed page to abort. */
  push(uploads: ReadonlyArray<MultipartUpload>): Array<MultipartUpload> {
    const run = this.run
    const t = run.tally
    const maxDeletes = run.r.maxDeletes
    const out: Array<MultipartUpload> = []
    for (let i = 0; i < uploads.length; i++) {
      const u = uploads[i]!
      t.matched++
      t.objects++
      if (run.capped !== undefined || (maxDeletes !== undefined && this.sent >= maxDeletes)) {
        run.capped = "maxDeletes"
        t.skipped++
        t.capLeft++
        continue
      }
      this.sent++
      if (t.sample.length < t.sampleSize) t.sample.push(uploadLabel(u))
      if (!run.r.dryRun) out.push(u)
    }
    return out
  }
}
