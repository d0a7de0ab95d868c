"""The Twitch plan: the connection table from the settings, spare readers, senders, budgets, and
channels added and removed in place; never a token outside the part config."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from shardrunner.gateway.platform import KeyedPlan, PlatformError
from shardrunner.gateway.twitch.config import READ, SEND, PartConfig, budget_names
from shardrunner.gateway.twitch.discovery import discover_from
from shardrunner.gateway.twitch.plan import TwitchPlan
from shardrunner.protocol.keys import ConnKey
from shardrunner.settings import load_settings

SECRET = "s3cr3tt0k3n"


def plan(**kw: Any) -> TwitchPlan:
    base: dict[str, Any] = {
        "accounts": {},
        "channels": [f"c{i}" for i in range(120)],
        "url": "ws://x",
        "seed": 1,
    }
    return TwitchPlan(**{**base, **kw})


def test_plan_when_anonymous_places_channels_per_connection_then_spares_then_senders() -> None:
    p = plan(accounts={"bot": SECRET}, per_conn=50)
    roles = [(s.role, len(s.channels), s.spare) for s in p.specs]
    # The account holds 100 channels (its limit); anonymous readers take the other 20.
    readers = [r for r in roles if r[0] == READ and not r[2]]
    assert sum(n for _, n, _ in readers) == 120
    assert all(n <= 50 for _, n, _ in readers)
    assert [r for r in roles if r[2]] == [(READ, 0, True)] * 2  # at least 2 spares
    assert roles[-1] == (SEND, 0, False)
    assert p.conns == [ConnKey("twitch", 0, i, len(p.specs)) for i in range(len(p.specs))]
    assert p.sender_of() == p.conns[-1]
    assert p.sender_of("bot") == p.conns[-1]
    anonymous = [s.login for s in p.specs if s.login.startswith("justinfan")]
    assert len(set(anonymous)) == len(anonymous), "every anonymous connection is a login of its own"
    assert isinstance(p, KeyedPlan)
    assert p.limits == []
    assert {b.name for b in p.budgets} >= {"twitch.join", "twitch.login"}


def test_plan_when_shown_never_holds_the_token_but_its_part_config_does() -> None:
    p = plan(accounts={"bot": SECRET})
    assert SECRET not in repr(p)
    assert SECRET not in str(p.describe())
    part = PartConfig.decode(p.part_config())
    assert part.tokens == {"bot": SECRET}
    assert SECRET not in repr(part)
    assert p.describe()["senders"] == {"bot": str(p.conns[-1])}


def test_plan_when_accounts_cannot_hold_the_channels_says_so() -> None:
    with pytest.raises(PlatformError, match="cannot hold 20 of the 120 channels"):
        plan(accounts={"bot": SECRET}, anonymous=False)
    with pytest.raises(PlatformError, match="nothing to run"):
        plan(channels=[], accounts={}, spare=0)
    with pytest.raises(PlatformError, match="twitch-senders"):
        plan(accounts={"bot": SECRET}, senders=["other"])


def test_plan_when_channels_are_added_puts_them_where_there_is_room_then_on_spares() -> None:
    p = plan(channels=["a", "b"], per_conn=2, spare=1)
    assert [len(s.channels) for s in p.specs] == [2, 0]
    result = p.add_channels(["#C", "b"])
    assert result["added"] == ["c"]
    assert result["already"] == ["b"]
    assert p.specs[1].channels == ["c"]
    assert not p.specs[1].spare
    assert p.version == 1
    assert p.added == ["c"]
    with pytest.raises(PlatformError, match="no reading connection has room for #e"):
        p.add_channels(["d", "e"])
    assert (p.channels(), p.version) == (["a", "b", "c"], 1), "a refused add changes nothing"
    assert p.remove_channels(["a", "zzz"]) == {"removed": ["a"], "unknown": ["zzz"], "version": 2}
    assert p.removed == ["a"]
    p.add_channels(["d"])  # the room "a" left
    assert p.channels() == ["b", "c", "d"]


def test_plan_when_an_account_is_at_its_channel_limit_adds_elsewhere() -> None:
    p = plan(accounts={"bot": SECRET}, channels=[f"c{i}" for i in range(100)], anonymous=False, spare=1)
    with pytest.raises(PlatformError, match="room"):
        p.add_channels(["x"])
    moderated = plan(
        accounts={"bot": SECRET}, channels=[f"c{i}" for i in range(100)], anonymous=False, spare=1,
        moderates={"bot": ["x"]},
    )  # fmt: skip
    moderated.add_channels(["x"])  # a channel it moderates does not count
    assert "x" in moderated.channels()


def test_plan_when_backup_readers_reads_every_channel_twice_on_two_logins() -> None:
    p = plan(backup=True, spare=2)
    readers: dict[str, list[int]] = {}
    for i, spec in enumerate(p.specs):
        for ch in spec.channels:
            readers.setdefault(ch, []).append(i)
    assert all(len(r) == 2 and p.specs[r[0]].login != p.specs[r[1]].login for r in readers.values())
    assert p.marked == [c for c, s in zip(p.conns, p.specs, strict=True) if s.role == READ]
    placed = p.add_channels(["new"])["placed"]["new"]
    assert len(placed) == 2
    assert placed[0] != placed[1]


def test_plan_when_restored_places_afresh_with_the_kept_changes() -> None:
    p = plan(channels=["a", "b"], spare=0)
    p.restore(added=["c", "a"], removed=["b"])
    assert p.channels() == ["a", "c"]
    assert p.added == ["c"]
    assert p.removed == ["b"]


def test_budget_names_when_verified_uses_the_verified_budgets() -> None:
    assert budget_names("bot", ["bot"]) == ("twitch.join.verified", "twitch.login.verified")
    assert budget_names("bot", []) == ("twitch.join", "twitch.login")


async def test_discover_from_when_settings_name_files_reads_them(tmp_path: Any) -> None:
    (tmp_path / "ch.txt").write_text("# comment\nfoo\n#Bar\n\n")
    (tmp_path / "acc.txt").write_text(f"other:oauth:{SECRET}\n")
    settings = load_settings(
        {
            "twitch_channels": "baz",
            "twitch_channels_file": str(tmp_path / "ch.txt"),
            "twitch_accounts": f"bot:{SECRET}",
            "twitch_accounts_file": str(tmp_path / "acc.txt"),
            "twitch_moderates": "bot:#baz",
            "twitch_verified": "other",
        },
        {},
        None,
    )
    p = await discover_from(settings)
    assert p.channels() == ["bar", "baz", "foo"]
    part = PartConfig.decode(p.part_config())
    assert part.tokens == {"bot": SECRET, "other": SECRET}
    assert part.moderates == {"bot": ["baz"]}
    assert part.verified == ["other"]
    assert part.limits_of("other").join_count == 2000
    assert part.limits_of("bot").join_count == 20
    missing = SimpleNamespace(
        **{**{k: getattr(settings, k) for k in dir(settings) if k.startswith("twitch_")}}
    )
    missing.twitch_channels_file = str(tmp_path / "nope.txt")
    with pytest.raises(PlatformError, match="--twitch-channels-file: cannot read"):
        await discover_from(missing)


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_plan_when_backups_and_workers_puts_each_channels_two_readers_on_two_workers(workers: int) -> None:
    from shardrunner.cluster.plan import plan as ranges

    p = plan(backup=True, workers=workers, per_conn=30)
    worker_of = {c: w for w, part in enumerate(ranges(p.conns, workers)) for c in part}
    readers: dict[str, set[int]] = {}
    for conn, spec in zip(p.conns, p.specs, strict=True):
        for ch in spec.channels:
            readers.setdefault(ch, set()).add(worker_of[conn])
    assert len(readers) == 120
    assert all(len(w) == 2 for w in readers.values()), "a channel's readers share a worker"
    new = p.add_channels(["late"])["placed"]["late"]
    assert len({worker_of[ConnKey.parse(c)] for c in new}) == 2


def test_plan_when_restored_with_measured_rates_gives_busy_channels_fewer_neighbours() -> None:
    p = plan(channels=[f"c{i}" for i in range(10)], per_conn=10, max_rate=100.0, spare=1)
    assert [len(s.channels) for s in p.specs if s.role == READ] == [10, 0]
    p.restore([], [], {"c0": 90.0, "c1": 30.0})
    sizes = sorted(len(s.channels) for s in p.specs if s.role == READ and not s.spare)
    assert sizes == [1, 9], "the busiest channel gets a connection of its own"
    assert p.rates == {"c0": 90.0, "c1": 30.0}
