import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as NodeFs from "node:fs"
import * as NodeNet from "node:net"
import { PgServer, type PgServerInfo } from "./support/postgres.js"

const refused = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = NodeNet.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
    socket.once("error", () => resume(Effect.succeed(true)))
  })

describe("the throwaway Postgres of the tests", () => {
  it.live("starts on 127.0.0.1, answers, survives a crash-restart, and leaves nothing behind", () =>
    Effect.gen(function*() {
      let seen: PgServerInfo | undefined
      yield* Effect.gen(function*() {
        const pg = yield* PgServer
        seen = pg
        assert.strictEqual(pg.host, "127.0.0.1")
        assert.match(yield* pg.psql("SHOW fsync"), /^off/)
        const url = yield* pg.createDatabase("t1")
        assert.strictEqual(url, `postgres://postgres@127.0.0.1:${pg.port}/t1`)
        yield* pg.psql("CREATE TABLE x (a int); INSERT INTO x VALUES (1)", "t1")
        yield* pg.restart
        assert.strictEqual((yield* pg.psql("SELECT count(*) FROM x", "t1")).trim(), "1")
        console.log(`throwaway Postgres started in ${pg.startMs} ms`)
      }).pipe(Effect.provide(Layer.fresh(PgServer.Default)))
      assert.isFalse(NodeFs.existsSync(seen!.dir))
      assert.isTrue(yield* refused(seen!.port))
    }))
})
