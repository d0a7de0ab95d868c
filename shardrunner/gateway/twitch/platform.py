"""Twitch chat as a worker runs it: the connections of its part, and changes of their channels.

:class:`TwitchPlatform` builds a :class:`~.reader.TwitchReader` for each reading connection of the
part and a :class:`~.sender.TwitchSender` for each sending one, from the table of the part config
(:mod:`.config`). A routing key (a channel) owns no connection by formula: a command addressed by
key goes to the default account's sending connection. :meth:`reconfigure` hands a changed table's
channels to the running readers, which join and part under the budgets.
"""

from __future__ import annotations

from collections.abc import Mapping

from shardrunner.gateway.connection import GatewayConnection, Sink, StartHook
from shardrunner.gateway.twitch.config import READ, SEND, PartConfig, budget_names
from shardrunner.gateway.twitch.link import TwitchLink
from shardrunner.gateway.twitch.plan import NAME
from shardrunner.gateway.twitch.reader import Budgets, TwitchReader
from shardrunner.identify.protocol import IdentifyQueue
from shardrunner.protocol import lifecycle
from shardrunner.protocol.envelope import RoutingKey, SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice


class TwitchPlatform:
    """Twitch as a worker runs it (a :class:`~shardrunner.gateway.platform.Platform`)."""

    name = NAME
    #: A controller's change of the logins' capabilities (set by the worker; see ``Startable``).
    start_hook: StartHook | None = None

    def __init__(self) -> None:
        self._part: PartConfig | None = None

    def build(
        self,
        conns: list[ConnKey],
        config: bytes,
        snapshots: Mapping[ConnKey, SessionSnapshot],
        sink: Sink,
        identify: IdentifyQueue,
        budgets: Budgets | None = None,
    ) -> list[GatewayConnection]:
        if budgets is None:
            raise ValueError("Twitch connections need the cluster's budgets")
        part = self._part = PartConfig.decode(config)
        out: list[GatewayConnection] = []
        for conn in conns:
            spec = part.conns[conn.shard]
            join, login = budget_names(spec.login, part.verified)
            url = part.backup_url if spec.backup and part.backup_url else part.url
            token = part.tokens.get(spec.login)
            if spec.role == READ:
                out.append(
                    TwitchReader(
                        conn,
                        login=spec.login,
                        token=token,
                        channels=list(spec.channels),
                        url=url,
                        sink=sink,
                        budgets=budgets,
                        join_budget=join,
                        login_budget=login,
                        backup=spec.backup,
                    )
                )
            elif spec.role == SEND:
                from shardrunner.gateway.twitch.sender import TwitchSender

                out.append(
                    TwitchSender(
                        conn,
                        login=spec.login,
                        token=token or "",
                        url=part.url,
                        sink=sink,
                        budgets=budgets,
                        limits=part.limits_of(spec.login),
                        moderates=frozenset(part.moderates.get(spec.login, ())),
                        queue_size=part.send_queue,
                        bypass_duplicates=part.bypass_duplicates,
                        login_budget=login,
                    )
                )
            else:
                raise ValueError(f"{conn}: unknown Twitch connection role {spec.role!r}")
        for link in out:
            if isinstance(link, TwitchLink):
                link.start_hook = self.start_hook
        return out

    def reconfigure(self, config: bytes, running: Mapping[ConnKey, GatewayConnection]) -> None:
        """A changed table: each running reader gets its channels (it joins and parts).

        A channel that leaves one running reader for another is a move (``channel_moved``, said by
        the reader it goes to; a move to or from another worker's reader is not seen here)."""
        part = self._part = PartConfig.decode(config)
        readers = {c: r for c, r in running.items() if isinstance(r, TwitchReader)}
        before = _holders(readers)
        for conn, connection in readers.items():
            spec = part.conns[conn.shard] if conn.shard < len(part.conns) else None
            if spec is not None and spec.role == READ:
                connection.set_channels(list(spec.channels))
        for channel, now in _holders(readers).items():
            had = before.get(channel, set())
            # Readers that lost it and readers that gained it, paired in order (a backup reader
            # reads the same channels: only a change of hands is a move).
            for old, new in zip(sorted(had - now), sorted(now - had), strict=False):
                fields = {"channel": channel, "from": str(old), "to": str(new)}
                readers[new].notify(Notice(lifecycle.CHANNEL_MOVED, new, fields))

    def owner(self, key: RoutingKey, conns: list[ConnKey]) -> ConnKey | None:
        """The default account's sending connection, if it is among ``conns``."""
        part = self._part
        if part is None:
            return None
        for conn in conns:
            if conn.shard < len(part.conns) and part.conns[conn.shard].role == SEND:
                return conn
        return None


def _holders(readers: Mapping[ConnKey, TwitchReader]) -> dict[str, set[ConnKey]]:
    """channel -> the readers that want it."""
    out: dict[str, set[ConnKey]] = {}
    for conn, reader in readers.items():
        for channel in reader.wanted:
            out.setdefault(channel, set()).add(conn)
    return out
