"""The event envelope on the wire: its lease epoch is a trailing field with a default, so events of
either shape decode on both sides."""

from __future__ import annotations

import msgspec

from shardrunner.bus import protocol as p
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

CONN = ConnKey("discord", 1, 5, 8)


class SixFields(msgspec.Struct, array_like=True):
    """The event as it was before the epoch (a bot or worker of the previous version)."""

    conn: ConnKey
    session: str
    seq: int
    name: str
    key: int | str | None
    data: bytes


def test_event_when_encoded_with_its_epoch_round_trips_in_a_batch() -> None:
    event = Event(CONN, "s1", 7, "MESSAGE_CREATE", 42, b"{}", 9)
    wire = msgspec.msgpack.encode(event)
    assert msgspec.msgpack.decode(wire)[-1] == 9, "the epoch travels last"
    assert msgspec.msgpack.decode(wire, type=Event) == event
    batch = p.decode(p.encode(p.Batch("g", 1, [event, Event(CONN, "s1", 8, "TYPING_START", None, b"")])))
    assert isinstance(batch, p.Batch)
    assert [(e.seq, e.epoch) for e in batch.events] == [(7, 9), (8, 0)]


def test_event_when_it_has_no_epoch_decodes_with_epoch_0_and_old_decoders_read_new_events() -> None:
    old = SixFields(CONN, "s1", 7, "MESSAGE_CREATE", 42, b"{}")
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(old), type=Event) == Event(
        CONN, "s1", 7, "MESSAGE_CREATE", 42, b"{}", 0
    )
    new = Event(CONN, "s1", 7, "MESSAGE_CREATE", 42, b"{}", 3)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(new), type=SixFields) == old
