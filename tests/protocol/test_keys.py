"""ConnKey: one key type for a connection, printed, parsed, hashed, ordered, and sent as an array."""

from __future__ import annotations

import msgspec
import pytest

from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey


def test_conn_key_when_printed_and_parsed_round_trips() -> None:
    first, second = ConnKey("discord", 0, 3, 8), ConnKey("discord", 1, 3, 16)
    assert (str(first), str(second)) == ("discord:3/8", "discord:3/16@1")
    assert ConnKey.parse(str(first)) == first
    assert ConnKey.parse(str(second)) == second


@pytest.mark.parametrize("text", ["3/8", "discord:8/8", "discord:3", "Discord:3/8", "discord:3/8@x", ""])
def test_conn_key_when_parsing_something_else_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"connection key|below the count"):
        ConnKey.parse(text)


def test_conn_key_when_two_sets_share_shard_ids_they_stay_apart_in_tables() -> None:
    old = [ConnKey("discord", 0, i, 4) for i in range(4)]
    new = [ConnKey("discord", 1, i, 8) for i in range(8)]
    table = {k: str(k) for k in old + new}
    assert len(table) == 12
    assert ConnKey("discord", 0, 2, 4) in table
    assert sorted(new + old) == old + new  # the older set first, then by shard
    assert not old[0].same_set(new[0])
    assert old[0].same_set(old[3])


def test_conn_key_when_an_event_is_encoded_travels_as_a_four_element_array() -> None:
    event = Event(ConnKey("discord", 1, 5, 8), "s1", 7, "MESSAGE_CREATE", 42, b"{}")
    wire = msgspec.msgpack.encode(event)
    assert msgspec.msgpack.decode(wire)[0] == ["discord", 1, 5, 8]
    assert msgspec.msgpack.decode(wire, type=Event) == event
