"""Two Discord sets (4 shards and 8 shards) side by side: the session book, the pending grants and
the status keep them apart."""

from __future__ import annotations

import asyncio

from shardrunner.cluster import messages as m
from shardrunner.cluster import statefile
from shardrunner.cluster.supervisor.book import SessionBook
from shardrunner.cluster.supervisor.grants import IdentifyGrants
from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.identify.protocol import StartLimit
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from tests.cluster.supervisor.conftest import Make
from tests.cluster.supervisor.fakes import TOKEN, FakePlan, conns
from tests.fakes import FakeClock

FOUR, EIGHT = ConnKey("discord", 0, 1, 4), ConnKey("discord", 1, 1, 8)


def report(conn: ConnKey, session: str, seq: int) -> m.ConnReport:
    return m.ConnReport(conn, "ready", seq, session, "ws://r", 5, None, 1, 0, 1, None, keys=[conn.count])


def test_book_when_two_sets_share_shard_numbers_keeps_their_sessions_and_low_water_apart() -> None:
    book = SessionBook()
    book.on_report(
        0, m.Report([report(FOUR, "four", 40), report(EIGHT, "eight", 80)], low_water=[(EIGHT, 50)]), 0.0
    )
    assert book.snapshots[FOUR].session_id == "four"
    assert book.snapshots[EIGHT].session_id == "eight"
    assert book.keys == {FOUR: [4], EIGHT: [8]}
    # The rewind rule applies to the set whose group lags, not to its namesake in the other set.
    assert [(s.conn, s.seq) for s in book.resume_from([FOUR, EIGHT])] == [(FOUR, 40), (EIGHT, 49)]
    book.on_handed_off(
        [SessionSnapshot(conn=EIGHT, session_id="eight", seq=90, resume_url="ws://r", keys=[8])]
    )
    assert book.low_water == {}
    assert [(s.conn, s.seq) for s in book.resume_from([FOUR, EIGHT])] == [(FOUR, 40), (EIGHT, 90)]
    assert book.reports[EIGHT].state == "handed_off"
    assert book.reports[FOUR].state == "ready"


async def test_grants_when_two_sets_ask_for_the_same_shard_number_grant_each_of_them() -> None:
    clock = FakeClock()
    sent: list[tuple[bytes, m.Message]] = []
    queue = LocalIdentifyQueue(
        [StartLimit("discord.identify", 1, 1.0)], lambda c: ("discord.identify", 0), clock=clock
    )
    grants = IdentifyGrants(
        queue, lambda i, msg: sent.append((i, msg)) or True, first_identifies=2, opened_at=0
    )
    grants.request(b"0:1", FOUR)
    grants.request(b"1:2", EIGHT)
    grants.request(b"1:2", EIGHT)  # asked twice: queued once
    assert grants.pending == {FOUR: b"0:1", EIGHT: b"1:2"}
    await clock.settle()
    grants.sent(FOUR)
    grants.done(FOUR, ready=True)
    await clock.advance(1.1)
    assert sent == [(b"0:1", m.IdentifyGrant(FOUR)), (b"1:2", m.IdentifyGrant(EIGHT))]
    assert grants.pending == {}
    grants.close()
    await asyncio.sleep(0)


async def test_supervisor_when_running_a_4_and_an_8_shard_set_keeps_them_apart_end_to_end(rig: Make) -> None:
    both = conns(4) + conns(8, generation=1)
    r = await rig(plans=[FakePlan(both)], workers=3)
    await r.ready()
    assert sorted(r.link.grants) == sorted(both)
    assert len(r.sup.book.snapshots) == 12
    status = r.sup.status()
    assert [s.conn for s in status.shards] == [str(c) for c in both]
    assert [(s.shard, s.count, s.generation) for s in status.shards][3:5] == [(3, 4, 0), (0, 8, 1)]
    assert [w.conns for w in status.workers][1][:2] == ["discord:0/8@1", "discord:1/8@1"]
    r.sup.request_stop()
    assert await r.exit_code() == 0
    saved, why = statefile.load(r.run_dir, both, TOKEN, 60)
    assert why.startswith("resuming 12 saved sessions")
    assert statefile.load(r.run_dir, conns(8, generation=1), TOKEN, 60)[0] == saved[4:]
