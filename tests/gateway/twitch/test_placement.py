"""Where channels are read: the account limit, moderated channels, anonymous readers, connection
bounds, busy channels, backups on another reader, and the sentence when it cannot be done."""

from __future__ import annotations

import pytest

from shardrunner.gateway.twitch.placement import ANONYMOUS, Account, PlacementError, normalize, place


def chans(n: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


def test_place_when_one_account_reads_120_channels_and_anonymous_is_allowed_keeps_it_at_100() -> None:
    p = place(chans(120), [Account("bot")], anonymous=True, per_conn=50)
    assert p.channels_of("bot") == 100
    assert p.channels_of(ANONYMOUS) == 20
    assert [len(c.channels) for c in p.conns] == [50, 50, 20]
    assert all(len(r) == 1 for r in p.readers.values())
    assert sorted(p.readers) == chans(120)


def test_place_when_the_accounts_cannot_hold_the_channels_says_so() -> None:
    with pytest.raises(PlacementError, match="cannot hold 20 of the 220 channels"):
        place(chans(220), [Account("a"), Account("b")], anonymous=False)


def test_place_when_an_account_moderates_channels_they_do_not_count() -> None:
    moderated = frozenset(chans(30, "m"))
    p = place(chans(100) + sorted(moderated), [Account("bot", moderates=moderated)], anonymous=False)
    assert p.channels_of("bot") == 130


def test_place_when_channels_are_busy_gives_them_fewer_neighbours() -> None:
    rates = {"c0000": 250.0, "c0001": 150.0, "c0002": 100.0}
    p = place(chans(10), [Account("bot")], anonymous=False, per_conn=50, max_rate=200.0, rates=rates)
    by_channel = {name: conn.channels for conn in p.conns for name in conn.channels}
    assert by_channel["c0000"] == ("c0000",), "busier than a connection: alone"
    assert "c0002" not in by_channel["c0001"], "two that together pass the bound are apart"
    assert all(sum(rates.get(n, 0.0) for n in c.channels) <= 200.0 for c in p.conns if len(c.channels) > 1)


def test_place_with_backups_reads_each_channel_twice_by_two_readers_after_every_primary() -> None:
    p = place(chans(60), [Account("a"), Account("b")], anonymous=False, per_conn=50, backup=True)
    primaries = [c for c in p.conns if not c.backup]
    backups = [c for c in p.conns if c.backup]
    assert max(c.index for c in primaries) < min(c.index for c in backups)
    for name, indexes in p.readers.items():
        assert len(indexes) == 2, name
        first, second = (p.conns[i] for i in indexes)
        assert first.reader != second.reader, "another account reads the backup"
    assert p.channels_of("a") + p.channels_of("b") == 120


def test_place_with_backups_and_only_anonymous_readers_uses_two_anonymous_connections() -> None:
    p = place(chans(10), [], anonymous=True, backup=True)
    assert [(c.reader, c.backup) for c in p.conns] == [(ANONYMOUS, False), (ANONYMOUS, True)]


def test_place_when_given_the_same_input_gives_the_same_placement() -> None:
    args = (chans(150)[::-1], [Account("b"), Account("a")])
    assert place(*args, anonymous=True).conns == place(*args, anonymous=True).conns


def test_normalize_when_a_name_is_odd_refuses_it_in_one_sentence() -> None:
    assert normalize("#Some_Channel ") == "some_channel"
    for bad in ("", "#", "two words", "x" * 26, "é"):
        with pytest.raises(PlacementError, match="is not a Twitch channel name"):
            normalize(bad)
