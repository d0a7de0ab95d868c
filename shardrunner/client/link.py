"""One worker connection of the client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import zmq

from shardrunner.bus import protocol as p
from shardrunner.curve import CurveKeys
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.client")


class Link:
    """One worker connection: a DEALER socket read from the event loop through its FD.

    ZeroMQ's FD is edge-triggered and only says "look at the socket": every message that is ready
    must be read at once, and a send may swallow the edge that announced incoming messages. So the
    link reads until nothing is left whenever the FD fires, and looks again after each send.
    """

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, conns: list[ConnKey],
                 on_message: Callable[[Link, p.BusMessage], None],
                 curve: CurveKeys | None = None) -> None:  # fmt: skip
        self.endpoint = endpoint
        #: The connections the worker runs, and the discovery answer they were read from (so an
        #: unchanged answer is not parsed again every second).
        self.conns = conns
        self.conn_names: list[str] = [str(c) for c in conns]
        self.sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
        # Long enough for the last Ack and Leave of close() to leave; a worker that is gone cannot
        # hold the bot up for longer.
        self.sock.setsockopt(zmq.LINGER, 500)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        if curve is not None and endpoint.startswith("tcp://"):
            curve.apply(self.sock)  # a worker on another host: its TCP bus is a CURVE server
        self.sock.connect(endpoint)
        self.acked = 0
        self.done = 0  # highest batch fully processed
        self.received = 0  # highest batch number received (numbers only grow from one worker)
        self.closed = False
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()
        self._fd = int(self.sock.getsockopt(zmq.FD))
        self._check_scheduled = False
        self._loop.add_reader(self._fd, self.read)

    def send(self, message: p.BusMessage) -> None:
        if self.closed:
            return
        with contextlib.suppress(zmq.ZMQError):
            self.sock.send(p.encode(message), flags=zmq.NOBLOCK)
        if not self._check_scheduled:
            self._check_scheduled = True
            self._loop.call_soon(self.read)

    def read(self) -> None:
        """Handle every message that is ready."""
        self._check_scheduled = False
        sock = self.sock
        while not self.closed:
            try:
                data = sock.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                log.warning("the link to %s failed; it is dropped until the next discovery", self.endpoint)
                return
            try:
                self._on_message(self, p.decode(data))
            except Exception:
                log.exception("a message from %s could not be handled", self.endpoint)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._loop.remove_reader(self._fd)
            self.sock.close()
