"""What a worker reports of its connections twice a second (``ConnReport``): the neutral counters,
the routing keys when they changed, and what the platform shows beyond them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shardrunner.cluster import messages as m
from shardrunner.gateway.connection import ConnState, GatewayConnection
from shardrunner.protocol.keys import ConnKey

if TYPE_CHECKING:
    from shardrunner.cluster.worker.conns import Entry

log = logging.getLogger("shardrunner.worker")


def conn_reports(entries: Mapping[ConnKey, Entry], withheld: Mapping[ConnKey, int]) -> list[m.ConnReport]:
    """Every entry's report (and each entry remembers which keys it reported)."""
    out = []
    for key, e in entries.items():
        conn, c = e.conn, e.conn.counters
        changed = e.keys_sent != c.keys_version
        e.keys_sent = c.keys_version
        state = ConnState.RECONNECTING if e.restarting else conn.state
        out.append(
            m.ConnReport(
                conn=key,
                state=state.value,
                seq=conn.seq,
                session_id=conn.session_id,
                resume_url=conn.resume_url,
                events_in=c.events_in,
                heartbeat_latency=c.heartbeat_latency,
                key_count=c.key_count,
                resumes=c.resumes,
                identifies=c.identifies,
                last_resume_at=c.last_resume_at,
                crashes=e.crashes,
                last_error=e.last_error,
                keys=sorted(c.keys) if changed else None,
                keys_pending=c.keys_pending,
                withheld=withheld.get(key, 0),
                detail=_detail(conn),
                bytes_in=c.bytes_in,
                reconnects=c.reconnects,
                decode_errors=c.decode_errors,
            )
        )
    return out


def _detail(conn: GatewayConnection) -> dict[str, Any] | None:
    """What the platform shows of a connection beyond the neutral counters (Twitch: its role,
    login, channels and failed channels), for ``status``."""
    describe = getattr(conn, "describe", None)
    if not callable(describe):
        return None
    try:
        detail: dict[str, Any] = describe()
    except Exception:
        log.exception("%s: describe() raised", conn.conn)
        return None
    return detail
