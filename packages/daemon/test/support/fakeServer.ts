/**
 * One socket fake COS (and a temporary directory) shared by a test file whose tests run `cos-retention` as child
 * processes: started and seeded before the file's tests, stopped and removed after them.
 */
import { CosFake, CosFakeServer, type Store } from "@effect-cos/testkit"
import { afterAll, beforeAll } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

export interface SharedFake {
  /** Set once the file's `beforeAll` ran. */
  readonly server: CosFakeServer.CosFakeServer
  /** A fresh temporary directory, removed after the file's tests. */
  readonly dir: string
}

/** Registers the file's `beforeAll` / `afterAll`; `seed` fills the store before any test runs. */
export const sharedFake = (
  name: string,
  options: CosFakeServer.Options,
  seed: (store: Store.Store) => ReadonlyArray<Effect.Effect<unknown>>
): SharedFake => {
  let scope: Scope.CloseableScope | undefined
  const shared = { server: undefined as unknown as CosFakeServer.CosFakeServer, dir: "" }
  beforeAll(async () => {
    scope = await Effect.runPromise(Scope.make())
    shared.server = await Effect.runPromise(Scope.extend(CosFakeServer.start(options), scope))
    await Effect.runPromise(Effect.all(seed(shared.server.fake.store)))
    shared.dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), `cos-retention-${name}-`))
  })
  afterAll(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
    if (shared.dir !== "") NodeFs.rmSync(shared.dir, { recursive: true, force: true })
  })
  return shared
}

/** The flags that aim `cos-retention purge` at the fake's test bucket. */
export const fakeTarget = (url: string): Array<string> => [
  "--bucket",
  CosFake.testBucket,
  "--region",
  CosFake.testRegion,
  "--endpoint",
  url
]
