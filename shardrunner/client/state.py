"""The state a bot that starts late needs: :meth:`StateRequests.fetch_state`.

A bot that joins after its connections started has missed what built the platform's view of
them (Discord: READY and the GUILD_CREATEs). Workers whose platform keeps it (Discord with
``state_cache``) answer a :class:`~shardrunner.bus.protocol.StateRequest` with those events; they
are not a batch: not acknowledged, not deduplicated, and live events keep flowing meanwhile.

Ordering with the live stream: each answer carries, per connection, the ``(session, seq)`` it
reflects (:attr:`StateRequests.state_marks`). A live event of that session at or below that seq is
already in the state; an adapter decides what to do with it (the discord.py one does not parse the
structural ones again, and parses every other: see docs/adapters.md).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Protocol

from shardrunner.bus import protocol as p
from shardrunner.client.errors import ClientError
from shardrunner.client.events import ClientEvent
from shardrunner.client.link import Link
from shardrunner.protocol.keys import ConnKey


class _Answer:
    """One worker's answer as its messages come."""

    __slots__ = ("done", "events", "marks")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.events: list[ClientEvent] = []
        self.marks: list[p.StateMark] = []
        self.done: asyncio.Future[None] = loop.create_future()


class _Links(Protocol):
    @property
    def _links(self) -> dict[str, Link]: ...
    @property
    def _requests(self) -> itertools.count[int]: ...
    @property
    def _state_answers(self) -> dict[int, _Answer]: ...
    @property
    def state_marks(self) -> dict[ConnKey, tuple[str, int]]: ...


class StateRequests:
    """The state side of :class:`~shardrunner.client.Client`."""

    __slots__ = ()

    async def fetch_state(
        self: _Links, platform: str = "discord", timeout: float = 30.0
    ) -> list[ClientEvent]:
        """For every connection of ``platform`` the client knows (every worker), the events that
        rebuild a consumer's view of it, in order (Discord: READY, one GUILD_CREATE per guild,
        then the structural events since), connection after connection.

        :attr:`state_marks` gets, per connection whose worker keeps state, the ``(session, seq)``
        its events reflect (``("", 0)``: kept, but no READY seen: not yet, or a session the worker
        resumed without having seen its READY). A connection whose worker keeps none (Discord
        without ``state_cache``) gives no events and no mark. Raises :class:`ClientError` when a
        worker does not answer in time.
        """
        links = [link for link in self._links.values() if not link.closed]
        if not links:
            raise ClientError("no running worker is known: start() the client first")
        loop = asyncio.get_running_loop()
        asked: list[tuple[int, Link, _Answer]] = []
        for link in links:
            request = next(self._requests)
            answer = self._state_answers[request] = _Answer(loop)
            asked.append((request, link, answer))
            link.send(p.StateRequest(request, platform))
        deadline = time.monotonic() + timeout
        events: list[ClientEvent] = []
        try:
            for _, link, answer in asked:
                left = max(0.0, deadline - time.monotonic())
                try:
                    await asyncio.wait_for(asyncio.shield(answer.done), left)
                except TimeoutError:
                    raise ClientError(
                        f"the worker at {link.endpoint} did not answer the state request within {timeout:g} s"
                    ) from None
                events.extend(answer.events)
                for mark in answer.marks:
                    self.state_marks[mark.conn] = (mark.session, mark.seq)
        finally:
            for request, _, _ in asked:
                self._state_answers.pop(request, None)
        return events

    def _on_state(self: _Links, message: p.State) -> None:
        answer = self._state_answers.get(message.request)
        if answer is None or answer.done.done():
            return
        answer.events.extend(ClientEvent(e, False) for e in message.events)
        if message.last:
            answer.marks = message.marks
            answer.done.set_result(None)
