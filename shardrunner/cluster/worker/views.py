"""The worker's seams: what it asks of its bus, how the identify and budget relays reach the
supervisor (messages into the worker's outbox), and its connections described for people."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from shardrunner.bus import protocol as bp
from shardrunner.cluster import messages as m
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey, describe_conns


class RouterView(Protocol):
    """What the worker asks of the bus router, instead of reading its insides."""

    @property
    def withheld(self) -> Mapping[ConnKey, int]: ...
    @property
    def filtered(self) -> int: ...
    @property
    def rejected(self) -> int: ...

    def low_water(self) -> dict[tuple[ConnKey, str], int]: ...

    def group_stats(self) -> list[bp.GroupStats]: ...

    def set_delivery(self, modes: Mapping[ConnKey, bp.Delivery], window: float | None = None) -> None: ...

    def undelivered(self) -> int: ...


class Bus(Protocol):
    """The worker's bus endpoint (:class:`~shardrunner.bus.server.BusServer`)."""

    @property
    def router(self) -> RouterView: ...

    def publish(self, event: Event) -> None: ...

    async def drain(
        self, timeout: float, *, absent: bool = False, conns: Collection[ConnKey] | None = None
    ) -> bool: ...

    def fence(self, until: float) -> None: ...

    async def run(self) -> None: ...

    def close(self) -> None: ...


class SupervisorLink:
    """The relay's view of the supervisor link: identify messages into the outbox."""

    __slots__ = ("_post",)

    def __init__(self, post: Callable[[m.Message], None]) -> None:
        self._post = post

    def request(self, conn: ConnKey, *, near: bool = False) -> None:
        self._post(m.IdentifyRequest(conn, near))

    def sent(self, conn: ConnKey) -> None:
        self._post(m.IdentifySent(conn))

    def done(self, conn: ConnKey, *, ready: bool) -> None:
        self._post(m.IdentifyDone(conn, ready))


class BudgetLink:
    """The budget relay's view of the supervisor link: budget messages into the outbox."""

    __slots__ = ("_post",)

    def __init__(self, post: Callable[[m.Message], None]) -> None:
        self._post = post

    def request(self, request: int, name: str, key: str, n: int) -> None:
        self._post(m.BudgetRequest(request, name, key, n))

    def used(self, request: int) -> None:
        self._post(m.BudgetUsed(request))

    def cancel(self, request: int) -> None:
        self._post(m.BudgetCancel(request))


def describe(conns: list[ConnKey]) -> str:
    """The connections for people: ``discord:0-3/8, discord:0-1/4@1``."""
    return describe_conns(conns)


def describe_modes(modes: Mapping[ConnKey, bp.Delivery]) -> str:
    """Delivery modes for people: ``hold discord:0-7/8@1; live discord:0-3/4``."""
    by_mode: dict[bp.Delivery, list[ConnKey]] = {}
    for conn, mode in modes.items():
        by_mode.setdefault(bp.Delivery(mode), []).append(conn)
    return "; ".join(f"{mode.value} {describe(conns)}" for mode, conns in sorted(by_mode.items()))


def drop(event: Event) -> None:
    """The sink of a worker without a bus (tests): events go nowhere."""
