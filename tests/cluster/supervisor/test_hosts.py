"""The host agent's lifecycle notices (several hosts): a lost lease is said to the supervisor's
listeners, once per block."""

from __future__ import annotations

from types import SimpleNamespace

from shardrunner.cluster.lifecycle import Fanout
from shardrunner.cluster.supervisor.hosts import HostAgent
from shardrunner.protocol import lifecycle
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice


def test_host_agent_when_it_loses_blocks_says_lease_lost_for_each() -> None:
    heard: list[Notice] = []
    fanout = Fanout("supervisor")
    fanout.listeners.append(heard.append)
    woken: list[bool] = []
    # The agent without its coordinator: lose() touches only its tables and the supervisor's slots.
    agent = HostAgent.__new__(HostAgent)
    agent.sup = SimpleNamespace(slots=[], link=None, lifecycle=fanout, wake=lambda: woken.append(True))  # type: ignore[assignment]
    conns = [ConnKey("discord", 0, s, 4) for s in range(4)]
    agent.layout = SimpleNamespace(blocks={0: conns[:2], 1: conns[2:]})  # type: ignore[assignment]
    agent.held, agent.giving = {0: 3, 1: 5}, {}
    agent.epochs = {c: 3 for c in conns}
    agent.lose([0, 1], "its lease was taken by another host")
    assert heard == [
        Notice(lifecycle.LEASE_LOST, None, {"block": b, "reason": "its lease was taken by another host"})
        for b in (0, 1)
    ]
    assert (agent.held, agent.epochs, woken) == ({}, {}, [True])


def test_host_agent_when_counting_first_identifies_leaves_out_platforms_without_limits() -> None:
    # Twitch's connections never ask the identify gate: counting them held it shut for its 5 s.
    agent = HostAgent.__new__(HostAgent)
    plans = {"discord": SimpleNamespace(limits=[object()]), "twitch": SimpleNamespace(limits=[])}
    agent.sup = SimpleNamespace(plans=plans)  # type: ignore[assignment]
    assert agent._identifies(ConnKey("discord", 0, 1, 2))
    assert not agent._identifies(ConnKey("twitch", 0, 1, 2))
    assert not agent._identifies(ConnKey("other", 0, 0, 1))
