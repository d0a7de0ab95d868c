"""The lifecycle fan-out: every listener gets every notice; one that raises is logged once."""

from __future__ import annotations

import logging

import pytest

from shardrunner.cluster.lifecycle import Fanout
from shardrunner.protocol import lifecycle
from shardrunner.protocol.lifecycle import Notice


def test_fanout_when_listeners_raise_each_is_logged_once_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fanout = Fanout("supervisor")
    heard: list[Notice] = []

    def first(notice: Notice) -> None:
        raise KeyError("first")

    def second(notice: Notice) -> None:
        raise ValueError("second")

    fanout.listeners.extend([first, heard.append, second])
    caplog.set_level(logging.ERROR, "shardrunner.lifecycle")
    for kind in (lifecycle.LEASE_TAKEN, lifecycle.LEASE_LOST, lifecycle.WORKER_CRASHED):
        fanout.emit(Notice(kind, None, {"block": 1}))
    assert [n.kind for n in heard] == [lifecycle.LEASE_TAKEN, lifecycle.LEASE_LOST, lifecycle.WORKER_CRASHED]
    assert fanout.errors == 6
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2
    assert "first" in logged[0]
    assert "second" in logged[1]
