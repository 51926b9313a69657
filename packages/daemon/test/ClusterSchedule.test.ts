/**
 * The cluster scheduler's late fire times: a scheduler that takes over from a dead replica (once the engine lets the
 * dead holder's shard lock expire) sends the fire times that came due meanwhile, so that none of them is lost.
 */
import { assert, describe, it } from "@effect/vitest"
import { catchUpFire, lateFires } from "../src/Cluster.js"

const everyTwoSeconds = { schedule: "*/2 * * * * *", timezone: "UTC" }
const t = (s: number) => Date.UTC(2026, 11, 2, 1, 28, 0) + s * 1000

describe("cluster scheduler: fire times due while the scheduler moved", () => {
  it("sends every fire time after the rule's last run that came due while this replica was a member", () => {
    // the old scheduler sent :04 and died before :06; this replica joined long before and takes over at :09.2
    const late = lateFires(everyTwoSeconds, { joinedAt: t(-600), lastScheduledAt: t(4), now: t(9.2) })
    assert.deepStrictEqual(late, [t(6), t(8)])
  })

  it("nothing when the rule has run its latest fire time, or nothing came due", () => {
    assert.deepStrictEqual(lateFires(everyTwoSeconds, { joinedAt: t(-600), lastScheduledAt: t(8), now: t(9.2) }), [])
    assert.deepStrictEqual(lateFires(everyTwoSeconds, { joinedAt: t(9), lastScheduledAt: undefined, now: t(9.5) }), [])
  })

  it("fire times from before this replica joined follow catchUp, as after downtime: not sent here", () => {
    // every replica was down from :04 to :20; this one joined at :20.5 and holds the scheduler at :21.3
    const late = lateFires(everyTwoSeconds, { joinedAt: t(20.5), lastScheduledAt: t(4), now: t(21.3) })
    assert.deepStrictEqual(late, [])
    // a fire time that came due after it joined, before it held the scheduler, is sent
    assert.deepStrictEqual(lateFires(everyTwoSeconds, { joinedAt: t(20.5), lastScheduledAt: t(4), now: t(22.3) }), [
      t(22)
    ])
  })

  it("at most 100 of them, from the last 10 minutes, oldest first (a schedule every second after a long gap)", () => {
    const late = lateFires({ schedule: "* * * * * *", timezone: "UTC" }, {
      joinedAt: t(-3600),
      lastScheduledAt: t(-3000),
      now: t(0)
    })
    assert.strictEqual(late.length, 100)
    assert.strictEqual(late[0], t(-599))
  })

  it("catch-up: the last fire time due before this replica joined, when it is later than the rule's last run", () => {
    // every replica was down from :04.5 to :20.5: :06 ... :20 came due with none up; the last of them is caught up
    assert.strictEqual(catchUpFire(everyTwoSeconds, { joinedAt: t(20.5), lastStartedAt: t(4.1) }), t(20))
    // a daily rule (Asia/Shanghai): down over 03:00 local (19:00Z the day before), back at 05:00 local
    const daily = { schedule: "0 3 * * *", timezone: "Asia/Shanghai" }
    assert.strictEqual(
      catchUpFire(daily, {
        joinedAt: Date.parse("2026-12-02T21:00:00Z"),
        lastStartedAt: Date.parse("2026-12-01T19:00:01Z")
      }),
      Date.parse("2026-12-02T19:00:00Z")
    )
    // the rule ran after that fire time, or never ran: nothing
    assert.isUndefined(catchUpFire(everyTwoSeconds, { joinedAt: t(20.5), lastStartedAt: t(20.1) }))
    assert.isUndefined(catchUpFire(everyTwoSeconds, { joinedAt: t(20.5), lastStartedAt: undefined }))
  })
})
