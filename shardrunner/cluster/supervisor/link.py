"""The supervisor's end of the worker link, behind a seam (tests use an in-memory one).

The real link is a ZeroMQ ROUTER bound at ``ipc://RUN_DIR/workers.sock``; a worker's DEALER
identifies itself as ``SLOT:GENERATION``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol, cast

import zmq
import zmq.asyncio

from shardrunner.cluster import messages as m
from shardrunner.curve import restrict_ipc

log = logging.getLogger("shardrunner.supervisor")


class WorkerLink(Protocol):
    """Messages to and from workers, addressed by worker identity."""

    @property
    def endpoint(self) -> str:
        """What a worker connects to."""

    def bind(self) -> None: ...

    def send(self, identity: bytes, message: m.Message) -> bool:
        """Send now; False if that worker is not connected (yet, or any more)."""

    async def recv(self) -> tuple[bytes, m.Message]:
        """The next message from any worker (undecodable ones are logged and skipped)."""

    def close(self) -> None: ...


def _retrieve_send_error(sent: asyncio.Future[Any]) -> None:
    if not sent.cancelled() and sent.exception() is not None:
        log.debug("a message to a worker was not sent: %s", sent.exception())


class ZmqWorkerLink:
    """The worker link over a ZeroMQ ROUTER socket."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str) -> None:
        self._ctx = ctx
        self._endpoint = endpoint
        self._sock: zmq.asyncio.Socket | None = None
        #: Messages from workers that were dropped, undecodable.
        self.undecodable = 0

    @property
    def endpoint(self) -> str:
        return self._endpoint

    def bind(self) -> None:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # No high-water mark: what goes to workers is bounded by the connection count (at 10,000
        # shards a window's identify grants alone passed the default 1,000), and a dropped grant
        # would leave its connection waiting for ever.
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.bind(self._endpoint)
        restrict_ipc(self._endpoint)
        self._sock = sock

    def send(self, identity: bytes, message: m.Message) -> bool:
        if self._sock is None:
            return False
        try:
            # The asyncio socket tries a non-blocking send at once and puts its error (an
            # unreachable worker, with ROUTER_MANDATORY) in the future rather than raising it.
            sent = cast(
                "asyncio.Future[Any]",
                self._sock.send_multipart([identity, m.encode(message)], flags=zmq.NOBLOCK),
            )
        except zmq.ZMQError:
            return False
        if sent.done():
            return sent.exception() is None
        sent.add_done_callback(_retrieve_send_error)
        return True

    async def recv(self) -> tuple[bytes, m.Message]:
        assert self._sock is not None
        while True:
            frames = await self._sock.recv_multipart()
            identity = frames[0]
            try:
                if len(frames) != 2:
                    raise ValueError(f"{len(frames) - 1} frames instead of one")
                return identity, m.decode(frames[1])
            except Exception as exc:
                # Dropped (a worker of another version, or a bug): the worker's pings and reports
                # go on, or its deadlines replace it.
                self.undecodable += 1
                log.warning(
                    "worker %s sent something undecodable (%s); dropped",
                    identity.decode(errors="replace"),
                    str(exc)[:200],
                )

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
