"""Placement rules (pure): targets by capacity, takeover by a standby, joining hosts, rebalancing."""

from __future__ import annotations

from dataclasses import dataclass, field

from shardrunner.cluster.hosts.directory import HostInfo
from shardrunner.cluster.hosts.leases import Holder, LastHolder
from shardrunner.cluster.hosts.placement import Decision, decide, targets


def test_placement_targets_when_split_follow_capacity_by_largest_remainder_ties_by_name() -> None:
    assert targets(10, []) == {}
    assert targets(10, [("b", 1), ("a", 3)]) == {"a": 8, "b": 2}  # 7.5 and 2.5: a by name
    assert targets(10, [("b", 3), ("a", 1)]) == {"a": 3, "b": 7}
    assert targets(32, [("c", 1), ("b", 1), ("a", 1)]) == {"a": 11, "b": 11, "c": 10}
    assert targets(2, [("a", 1), ("b", 1), ("c", 1)]) == {"a": 1, "b": 1, "c": 0}
    assert targets(7, [("a", 0), ("b", 1)]) == {"a": 4, "b": 3}, "a capacity below 1 counts as 1"
    assert sum(targets(1000, [("a", 3), ("b", 7), ("c", 11)]).values()) == 1000


@dataclass
class Host:
    name: str
    capacity: int = 1
    standby: bool = False
    settled: bool = True
    held: set[int] = field(default_factory=set)


class Cluster:
    """Leases and records as the hosts would see them in Redis, with claims taking free blocks only."""

    def __init__(self, blocks: int, *hosts: Host) -> None:
        self.blocks = blocks
        self.hosts = {h.name: h for h in hosts}
        self.epochs = dict.fromkeys(range(blocks), 0)
        self.last: dict[int, LastHolder] = {}

    def holders(self) -> dict[int, Holder]:
        return {i: Holder(h.name, self.epochs[i], 5.0) for h in self.hosts.values() for i in h.held}

    def live(self) -> list[HostInfo]:
        return [
            HostInfo(name=h.name, role="standby" if h.standby else "active", capacity=h.capacity)
            for h in sorted(self.hosts.values(), key=lambda h: h.name)
        ]

    def decide(self, name: str) -> Decision:
        host = self.hosts[name]
        holders = self.holders()
        last = {i: v for i, v in self.last.items() if i not in holders}
        return decide(
            me=name,
            standby=host.standby,
            settled=host.settled,
            blocks=self.blocks,
            held=set(host.held),
            holders=holders,
            last=last,
            live=self.live(),
            releasing=False,
        )

    def step(self, name: str) -> Decision:
        host, decision = self.hosts[name], self.decide(name)
        holders = self.holders()
        for i in decision.claim:
            if i not in holders:
                self.epochs[i] += 1
                host.held.add(i)
                self.last[i] = LastHolder(name, self.epochs[i], False)
        if host.held:
            host.standby = False
        for i in decision.release:
            host.held.discard(i)
            self.last[i] = LastHolder(name, self.epochs[i], True)
        return decision

    def settle(self, rounds: int = 200) -> int:
        """Every host decides in turn until a whole round changes nothing; the rounds it took."""
        for n in range(rounds):
            decisions = [self.step(name) for name in sorted(self.hosts)]
            if not any(d.claim or d.release for d in decisions):
                return n
        raise AssertionError("placement did not settle")

    def die(self, name: str) -> None:
        self.hosts.pop(name)

    def counts(self) -> dict[str, int]:
        return {name: len(h.held) for name, h in sorted(self.hosts.items())}

    def assert_every_block_held_once(self) -> None:
        owners = [i for h in self.hosts.values() for i in h.held]
        assert sorted(owners) == list(range(self.blocks))


def test_placement_when_hosts_start_together_they_split_the_blocks_after_settling() -> None:
    cluster = Cluster(32, Host("a", settled=False), Host("b"), Host("c"))
    assert cluster.decide("a") == Decision([], [], "settling: waiting for the other hosts to register")
    first = cluster.decide("b")
    assert first.claim == list(range(11))
    assert first.why == f"claiming 11 blocks ({', '.join(map(str, range(11)))}): target 11, holding 0"
    cluster.hosts["a"].settled = True
    cluster.settle()
    assert cluster.counts() == {"a": 11, "b": 11, "c": 10}
    cluster.assert_every_block_held_once()
    assert cluster.decide("a").why == "balanced: holding 11 of 11"


def test_placement_when_a_4th_host_joins_the_others_release_one_at_a_time_until_balanced() -> None:
    cluster = Cluster(32, Host("a"), Host("b"), Host("c"))
    cluster.settle()
    cluster.hosts["d"] = Host("d")
    first = cluster.decide("a")
    assert first.release == [max(cluster.hosts["a"].held)]
    assert first.why == "releasing block 10: over target (11 of 8)"
    cluster.step("a")
    assert cluster.decide("b").release == [], "a block is free: no second release before it is taken"
    assert "1 free blocks to be taken first" in cluster.decide("b").why
    assert cluster.decide("d").claim == first.release, "the released block"
    cluster.settle()
    assert cluster.counts() == {"a": 8, "b": 8, "c": 8, "d": 8}
    cluster.assert_every_block_held_once()


def test_placement_when_capacities_differ_blocks_follow_them() -> None:
    cluster = Cluster(16, Host("a", capacity=1), Host("b", capacity=3))
    cluster.settle()
    assert cluster.counts() == {"a": 4, "b": 12}
    cluster.hosts["c"] = Host("c", capacity=4)
    cluster.settle()
    assert cluster.counts() == {"a": 2, "b": 6, "c": 8}
    cluster.assert_every_block_held_once()


def test_placement_when_an_active_host_dies_the_first_standby_takes_over_and_the_second_waits() -> None:
    cluster = Cluster(8, Host("a"), Host("b"), Host("s2", standby=True), Host("s1", standby=True))
    cluster.settle()
    assert cluster.counts() == {"a": 4, "b": 4, "s1": 0, "s2": 0}
    dead = set(cluster.hosts["b"].held)
    cluster.die("b")
    assert cluster.decide("a").claim == [], "orphaned blocks are the standby's"
    assert "standby s1 takes the orphaned blocks" in cluster.decide("a").why
    assert cluster.decide("s2").why == "standby: s1 is the first standby"
    takeover = cluster.step("s1")
    assert takeover.claim == sorted(dead)
    assert takeover.why == "claiming 4 blocks (4, 5, 6, 7) orphaned of b (standby takeover)"
    assert not cluster.hosts["s1"].standby
    cluster.settle()
    assert cluster.counts() == {"a": 4, "s1": 4, "s2": 0}
    cluster.die("s1")  # the second standby takes what is orphaned later
    assert cluster.step("s2").claim == [4, 5, 6, 7]
    cluster.assert_every_block_held_once()


def test_placement_when_no_standby_is_live_active_hosts_take_orphaned_blocks() -> None:
    cluster = Cluster(9, Host("a"), Host("b"), Host("c"))
    cluster.settle()
    cluster.die("c")
    decision = cluster.decide("a")
    assert decision.claim == [6, 7], "a's target is 5 (4.5, the tie by name)"
    assert "2 orphaned of c (no standby live)" in decision.why
    cluster.settle()
    assert cluster.counts() == {"a": 5, "b": 4}
    cluster.assert_every_block_held_once()


def test_placement_when_releasing_releases_nothing_more_but_still_claims() -> None:
    live = [HostInfo(name="a"), HostInfo(name="b")]

    def of_a(
        held: set[int], holders: dict[int, Holder], last: dict[int, LastHolder], releasing: bool
    ) -> Decision:
        return decide(
            me="a",
            standby=False,
            settled=True,
            blocks=4,
            held=held,
            holders=holders,
            last=last,
            live=live,
            releasing=releasing,
        )

    holders = {i: Holder("a", 1, 5.0) for i in range(4)}
    over = of_a({0, 1, 2, 3}, holders, {}, releasing=True)
    assert over == Decision([], [], "over target (4 of 2): a handoff is under way")
    assert of_a({0, 1, 2, 3}, holders, {}, releasing=False).release == [3]
    holders = {0: Holder("a", 1, 5.0), 1: Holder("b", 1, 5.0), 2: Holder("b", 1, 5.0)}
    assert of_a({0}, holders, {3: LastHolder("b", 1, released=True)}, releasing=True).claim == [3]


def test_decide_when_no_active_host_is_live_makes_the_standby_take_every_free_block() -> None:
    from shardrunner.cluster.hosts.directory import HostInfo
    from shardrunner.cluster.hosts.leases import LastHolder

    last = {i: LastHolder("a", 1, released=True) for i in range(4)}
    live = [HostInfo(name="s", role="standby", capacity=2)]
    d = decide(
        me="s",
        standby=True,
        settled=True,
        blocks=4,
        held=set(),
        holders={},
        last=last,
        live=live,
        releasing=False,
    )
    assert d.claim == [0, 1, 2, 3]
    live.append(HostInfo(name="a", role="active", capacity=2))
    d = decide(
        me="s",
        standby=True,
        settled=True,
        blocks=4,
        held=set(),
        holders={},
        last=last,
        live=live,
        releasing=False,
    )
    assert d.claim == [], "released blocks go to the live active host's target"
