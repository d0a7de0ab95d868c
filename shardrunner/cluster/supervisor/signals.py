"""Signals during start-up: the supervisor's handlers only enqueue, and a stop must not wait for
discovery to finish (a container stopped while it starts)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any


async def unless_stopped(work: Coroutine[Any, Any, None], signals: asyncio.Queue[int]) -> bool:
    """Run ``work``; False if SIGINT or SIGTERM arrived first (``work`` is then cancelled).

    A SIGHUP (reload) before there is anything to reload is put back on the queue for the loop.
    Exceptions of ``work`` propagate.
    """
    working = asyncio.ensure_future(work)
    held: list[int] = []
    try:
        while not working.done():
            signalled = asyncio.ensure_future(signals.get())
            await asyncio.wait({working, signalled}, return_when=asyncio.FIRST_COMPLETED)
            if not signalled.done():
                signalled.cancel()
                break
            if signalled.result() != signal.SIGHUP:
                working.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await working
                return False
            held.append(signalled.result())
    finally:
        for sig in held:
            signals.put_nowait(sig)
    working.result()
    return True
