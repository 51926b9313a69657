/**
 * What the daemon is doing right now (readiness, next fire times, runs in progress), shared by the scheduler, the
 * runner and the HTTP status server. Durable history lives in State.
 */
import type { Deletion } from "@effect-cos/core"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"

export interface RuleLive {
  readonly nextFire?: Date | undefined
  /** The run in progress, if any, with its latest progress. */
  readonly current?:
    | { readonly runId: number; readonly startedAt: number; readonly progress?: Deletion.Progress | undefined }
    | undefined
  readonly skippedOverlaps: number
}

export class Status extends Effect.Service<Status>()("@effect-cos/daemon/Status", {
  effect: Effect.gen(function*() {
    const ready = yield* Ref.make(false)
    const rules = yield* Ref.make(new Map<string, RuleLive>())
    const update = (rule: string, f: (live: RuleLive) => RuleLive) =>
      Ref.update(rules, (map) => new Map(map).set(rule, f(map.get(rule) ?? { skippedOverlaps: 0 })))
    return {
      ready: Ref.get(ready),
      setReady: (value: boolean) => Ref.set(ready, value),
      rules: Ref.get(rules),
      rule: (name: string) => Effect.map(Ref.get(rules), (map) => map.get(name) ?? { skippedOverlaps: 0 }),
      update
    } as const
  })
}) {}
