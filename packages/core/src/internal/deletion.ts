/**
 * The deletion engine, along its data flow (internal/deletion/):
 * options -> sources (listing, or a caller's keys) -> selection (filters, keep-latest, maxDeletes, segments) ->
 * batches (send, apply outcomes, under the governor, one retry path) -> tally (counts, summary, progress), one run
 * state with a single phase, wired in purge.ts.
 *
 * @internal
 */
export { matcher } from "./deletion/filters.js"
export { runOptionBounds, versionsModes } from "./deletion/options.js"
export { deleteKeys, purge } from "./deletion/purge.js"
export { deletedKeys, failedKeys, throttledRequests } from "./deletion/tally.js"
