"""The supervisor's budget grants on a fake clock: requests of several workers against one
account's budget, uses counted from their report, cancels, a refused request, and a worker gone
with granted uses (counted as written)."""

from __future__ import annotations

from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.budgets import BudgetGrants
from shardrunner.identify.budget import Budget, BudgetQueue
from tests.fakes import FakeClock

JOIN = Budget("twitch.join", 20, 10.0)
A, B = b"0:1", b"1:2"


class Sent:
    def __init__(self) -> None:
        self.out: list[tuple[bytes, m.Message]] = []
        self.gone: set[bytes] = set()

    def __call__(self, identity: bytes, message: m.Message) -> bool:
        if identity in self.gone:
            return False
        self.out.append((identity, message))
        return True

    def grants(self, identity: bytes) -> list[int]:
        return [
            x.request
            for who, x in self.out
            if who == identity and isinstance(x, m.BudgetGrant) and not x.refused
        ]


async def test_budget_grants_when_two_workers_ask_for_one_account_share_its_budget() -> None:
    clock, sent = FakeClock(), Sent()
    grants = BudgetGrants(BudgetQueue([JOIN], margin=0.0, clock=clock), sent)
    grants.request(A, m.BudgetRequest(1, "twitch.join", "bot", 15))
    await clock.settle()
    grants.request(B, m.BudgetRequest(1, "twitch.join", "bot", 10))
    await clock.settle()
    assert sent.grants(A) == [1]
    assert sent.grants(B) == [], "15 + 10 is over 20 in one window, across workers"
    grants.used(A, 1)
    await clock.advance(9.5)
    assert sent.grants(B) == []
    await clock.advance(1.0)
    assert sent.grants(B) == [1], "10 s after the first uses were written"
    grants.request(B, m.BudgetRequest(2, "twitch.join", "other", 20))
    await clock.settle()
    assert sent.grants(B) == [1, 2], "another account has a budget of its own"
    grants.close()


async def test_budget_grants_when_cancelled_gives_the_uses_back() -> None:
    clock, sent = FakeClock(), Sent()
    grants = BudgetGrants(BudgetQueue([JOIN], margin=0.0, clock=clock), sent)
    grants.request(A, m.BudgetRequest(1, "twitch.join", "bot", 20))
    grants.request(B, m.BudgetRequest(7, "twitch.join", "bot", 5))
    await clock.settle()
    grants.cancel(A, 1)  # granted, never written
    await clock.settle()
    assert sent.grants(B) == [7]
    grants.close()


async def test_budget_grants_when_a_worker_goes_counts_what_it_held_as_written() -> None:
    clock, sent = FakeClock(), Sent()
    grants = BudgetGrants(BudgetQueue([JOIN], margin=0.0, clock=clock), sent)
    grants.request(A, m.BudgetRequest(1, "twitch.join", "bot", 20))
    await clock.settle()
    grants.request(A, m.BudgetRequest(2, "twitch.join", "bot", 1))  # waits
    grants.request(B, m.BudgetRequest(1, "twitch.join", "bot", 1))
    await clock.advance(2.0)
    sent.gone.add(A)
    grants.forget(A)  # it may have written its 20 JOINs just before it died
    await clock.advance(9.75)
    assert sent.grants(B) == [], "the dead worker's 20 count for a window from when it went"
    await clock.advance(0.5)
    assert sent.grants(B) == [1]
    assert sent.grants(A) == [1], "its waiting request went to nobody"
    grants.close()


async def test_budget_grants_when_a_request_cannot_fit_or_is_unknown_refuses_it() -> None:
    clock, sent = FakeClock(), Sent()
    grants = BudgetGrants(BudgetQueue([JOIN], margin=0.0, clock=clock), sent)
    grants.request(A, m.BudgetRequest(1, "twitch.join", "bot", 21))
    grants.request(A, m.BudgetRequest(2, "twitch.login", "bot", 1))
    await clock.settle()
    refused = {x.request: x.refused for _, x in sent.out if isinstance(x, m.BudgetGrant)}
    assert refused[1] is not None
    assert "cannot fit a limit of 20" in refused[1]
    assert refused[2] == "unknown budget 'twitch.login'"
    grants.close()
