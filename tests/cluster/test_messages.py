"""The supervisor-worker messages: what a reshard adds travels intact and old shapes still decode."""

from __future__ import annotations

import msgspec
import pytest

from shardrunner.bus.protocol import Delivery
from shardrunner.cluster import messages as m
from shardrunner.protocol.keys import ConnKey

OLD = ConnKey("discord", 0, 3, 4)
NEW = ConnKey("discord", 1, 5, 8)


@pytest.mark.parametrize(
    "message",
    [
        m.SetDelivery(7, [(OLD, Delivery.DEDUPE), (NEW, Delivery.HOLD)]),
        m.DeliverySet(7),
        m.Finish(drain_timeout=12.5),
        m.Finished(undelivered=3),
        m.BudgetRequest(4, "twitch.join", "bot", 10),
        m.BudgetGrant(4),
        m.BudgetGrant(5, refused="21 uses at once cannot fit a limit of 20"),
        m.BudgetUsed(4),
        m.BudgetCancel(6),
        m.Assign(
            parts=[m.PlatformPart("discord", [NEW], b"token inside")],
            delivery=[(NEW, Delivery.HOLD)],
            delivery_version=2,
        ),
        m.Report(
            [m.ConnReport(NEW, "ready", 9, "s", "wss://r", 9, 0.1, 2, 0, 1, None, keys_pending=1, withheld=8)]
        ),
    ],
    ids=lambda message: type(message).__name__,
)
def test_messages_when_encoded_and_decoded_come_back_equal(message: m.Message) -> None:
    assert m.decode(m.encode(message)) == message


def test_messages_when_a_delivery_mode_travels_it_is_its_name_and_decodes_to_the_enum() -> None:
    raw = msgspec.msgpack.decode(m.encode(m.SetDelivery(1, [(NEW, Delivery.MUTE)])))
    assert raw["delivery"] == [[["discord", 1, 5, 8], "mute"]]
    decoded = m.decode(m.encode(m.SetDelivery(1, [(NEW, Delivery.MUTE)])))
    assert isinstance(decoded, m.SetDelivery)
    assert decoded.delivery[0][1] is Delivery.MUTE


def test_messages_when_sent_without_the_reshard_fields_decode_with_their_defaults() -> None:
    """A report of a worker that knows nothing of reshards (fewer array elements), an assignment
    without modes: everything is live, nothing pending or withheld."""
    report = m.ConnReport(OLD, "ready", 9, "s", "wss://r", 9, 0.1, 2, 0, 1, None, keys=[1, 2])
    short = msgspec.msgpack.encode(msgspec.structs.astuple(report)[:-2])
    assert msgspec.msgpack.decode(short, type=m.ConnReport) == report
    assert (report.keys_pending, report.withheld) == (0, 0)
    assign = m.decode(msgspec.msgpack.encode({"type": "assign", "parts": []}))
    assert isinstance(assign, m.Assign)
    assert (assign.delivery, assign.delivery_version) == ([], 0)


def test_assign_repr_when_it_carries_modes_still_never_shows_the_config() -> None:
    assign = m.Assign(
        parts=[m.PlatformPart("discord", [OLD, NEW], b"Bot sekrit-token")],
        delivery=[(NEW, Delivery.HOLD)],
        delivery_version=4,
    )
    text = repr(assign)
    assert "sekrit" not in text
    assert "delivery=1@4" in text
