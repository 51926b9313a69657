/**
 * The cluster scheduler's late fire times: a scheduler that takes over from a dead replica (once the engine lets the
 * dead holder's shard lock expire) sends the fire times that came due meanwhile, so that none of them is lost; the
 * cluster's up period, from every replica's uptime row; and what a fire time cut by a downtime of the whole cluster
 * gets, as one daemon decides at start.
 */
import { assert, describe, it } from "@effect/vitest"
import { afterDowntime, catchUpFire, lateFires } from "../src/Cluster.js"
import { upSince } from "../src/ClusterUptime.js"

const everyTwoSeconds = { schedule: "*/2 * * * * *", timezone: "UTC" }
const t = (s: number) => Date.UTC(2026, 11, 2, 1, 28, 0) + s * 1000

describe("cluster scheduler: fire times due while the scheduler moved", () => {
  it("sends every fire time after the rule's last run that came due while the cluster was up", () => {
    // the old scheduler sent :04 and died before :06; the cluster has been up long before, this replica takes over
    // at :09.2
    const late = lateFires(everyTwoSeconds, { upSince: t(-600), lastScheduledAt: t(4), now: t(9.2) })
    assert.deepStrictEqual(late, [t(6), t(8)])
  })

  it("nothing when the rule has run its latest fire time, or nothing came due", () => {
    assert.deepStrictEqual(lateFires(everyTwoSeconds, { upSince: t(-600), lastScheduledAt: t(8), now: t(9.2) }), [])
    assert.deepStrictEqual(lateFires(everyTwoSeconds, { upSince: t(9), lastScheduledAt: undefined, now: t(9.5) }), [])
  })

  it("fire times from before the cluster's up period follow catchUp, as after downtime: not sent here", () => {
    // every replica was down from :04 to :20; the first came back at :20.5, this one holds the scheduler at :21.3
    const late = lateFires(everyTwoSeconds, { upSince: t(20.5), lastScheduledAt: t(4), now: t(21.3) })
    assert.deepStrictEqual(late, [])
    // a fire time that came due after the cluster came back, before this replica held the scheduler, is sent
    assert.deepStrictEqual(lateFires(everyTwoSeconds, { upSince: t(20.5), lastScheduledAt: t(4), now: t(22.3) }), [
      t(22)
    ])
  })

  it("at most 100 of them, from the last 10 minutes, oldest first (a schedule every second after a long gap)", () => {
    const late = lateFires({ schedule: "* * * * * *", timezone: "UTC" }, {
      upSince: t(-3600),
      lastScheduledAt: t(-3000),
      now: t(0)
    })
    assert.strictEqual(late.length, 100)
    assert.strictEqual(late[0], t(-599))
  })

  it("catch-up: the last fire time due before the cluster came back, when it is later than the rule's last run", () => {
    // every replica was down from :04.5 to :20.5: :06 ... :20 came due with none up; the last of them is caught up
    assert.strictEqual(catchUpFire(everyTwoSeconds, { upSince: t(20.5), lastStartedAt: t(4.1) }), t(20))
    // a daily rule (Asia/Shanghai): down over 03:00 local (19:00Z the day before), back at 05:00 local
    const daily = { schedule: "0 3 * * *", timezone: "Asia/Shanghai" }
    assert.strictEqual(
      catchUpFire(daily, {
        upSince: Date.parse("2026-12-02T21:00:00Z"),
        lastStartedAt: Date.parse("2026-12-01T19:00:01Z")
      }),
      Date.parse("2026-12-02T19:00:00Z")
    )
    // the rule ran after that fire time, or never ran: nothing
    assert.isUndefined(catchUpFire(everyTwoSeconds, { upSince: t(20.5), lastStartedAt: t(20.1) }))
    assert.isUndefined(catchUpFire(everyTwoSeconds, { upSince: t(20.5), lastStartedAt: undefined }))
  })

  it("the cluster's up period: the overlapping replicas' rows back from now, wherever the scheduler is", () => {
    const slack = 5000
    // A up from :00 (still beating), B from :30 to :50 (stopped), this replica from :55: up since :00
    assert.deepStrictEqual(
      upSince(
        [{ startedAt: t(0), seenAt: t(58), stopped: false }, {
          startedAt: t(30),
          seenAt: t(50),
          stopped: true
        }],
        { startedAt: t(55), now: t(60) },
        slack
      ),
      { since: t(0), downSince: undefined }
    )
    // every replica stopped at :20 (said so), this one back at :40: up since :40, down since :20
    const stopped = [{ startedAt: t(0), seenAt: t(20), stopped: true }, {
      startedAt: t(5),
      seenAt: t(19),
      stopped: true
    }]
    assert.deepStrictEqual(upSince(stopped, { startedAt: t(40), now: t(41) }, slack), {
      since: t(40),
      downSince: t(20)
    })
    // the last one SIGKILLed after a heartbeat at :20: it counts as up until :25 (the lock expiry), as the engine
    // keeps its shards that long; a replica back at :24 joins its period, one back at :26 starts a new one
    const killed = [{ startedAt: t(0), seenAt: t(20), stopped: false }]
    assert.strictEqual(upSince(killed, { startedAt: t(24), now: t(30) }, slack).since, t(0))
    assert.deepStrictEqual(upSince(killed, { startedAt: t(26), now: t(30) }, slack), {
      since: t(26),
      downSince: t(25)
    })
    // a chain: C (from :50) overlaps B (:30 to :52), which overlapped A (:00 to :35): up since :00
    assert.strictEqual(
      upSince(
        [
          { startedAt: t(30), seenAt: t(52), stopped: true },
          { startedAt: t(0), seenAt: t(35), stopped: true },
          { startedAt: t(-100), seenAt: t(-50), stopped: true }
        ],
        { startedAt: t(50), now: t(60) },
        slack
      ).since,
      t(0)
    )
  })

  it("a fire time cut by a downtime of the whole cluster: decided as one daemon decides at start", () => {
    const rule = { ...everyTwoSeconds, catchUp: false, dryRun: false }
    const catcher = { ...rule, catchUp: true }
    // every replica stopped at :05 while the run of :04 was going; back at :20.5
    const upSince = t(20.5)
    const cut = { scheduledAt: t(4), startedAt: t(4.1), status: "interrupted" }
    // its run left a checkpoint: it resumes (whatever catchUp says), and the catch-up is skipped
    for (const r of [rule, catcher]) {
      assert.strictEqual(afterDowntime(r, { scheduledAt: t(4), upSince, lastRun: cut, resumable: true }), "resume")
      assert.strictEqual(afterDowntime(r, { scheduledAt: t(20), upSince, lastRun: cut, resumable: true }), "skip")
    }
    // a run left `running` by a replica that was killed counts as cut too
    assert.strictEqual(
      afterDowntime(rule, { scheduledAt: t(4), upSince, lastRun: { ...cut, status: "running" }, resumable: true }),
      "resume"
    )
    // nothing to resume from: with catchUp false nothing runs, not even the fire time whose run was cut
    assert.strictEqual(afterDowntime(rule, { scheduledAt: t(4), upSince, lastRun: cut, resumable: false }), "skip")
    assert.strictEqual(afterDowntime(rule, { scheduledAt: t(20), upSince, lastRun: cut, resumable: false }), "skip")
    // with catchUp true the last fire time missed runs once, as the catch-up; the cut one does not
    assert.strictEqual(afterDowntime(catcher, { scheduledAt: t(4), upSince, lastRun: cut, resumable: false }), "skip")
    assert.strictEqual(
      afterDowntime(catcher, { scheduledAt: t(20), upSince, lastRun: cut, resumable: false }),
      "catch-up"
    )
    assert.strictEqual(afterDowntime(catcher, { scheduledAt: t(18), upSince, lastRun: cut, resumable: false }), "skip")
    // a dry-run rule never resumes
    assert.strictEqual(
      afterDowntime({ ...rule, dryRun: true }, { scheduledAt: t(4), upSince, lastRun: cut, resumable: true }),
      "skip"
    )
    // a fire time stored just before the downtime whose run never started: as the cut one
    const done = { scheduledAt: t(2), startedAt: t(2.1), status: "succeeded" }
    assert.strictEqual(afterDowntime(rule, { scheduledAt: t(4), upSince, lastRun: done, resumable: false }), "skip")
    assert.strictEqual(
      afterDowntime(catcher, { scheduledAt: t(20), upSince, lastRun: done, resumable: false }),
      "catch-up"
    )
  })
})
