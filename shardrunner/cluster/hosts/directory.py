"""The directory of live hosts: each host's record in Redis, refreshed every heartbeat.

A record is ``host:{name}`` = JSON :class:`HostInfo` with a TTL (3 heartbeats: a host that stops
refreshing drops out of the directory on its own), and its name in the set ``hosts``. Placement reads
the live hosts from it; a bot's ``endpoints`` answer lists every host's workers and control endpoint
from it. Redis down raises :class:`~shardrunner.identify.coordinator.CoordinatorDown`.
"""

from __future__ import annotations

import msgspec

from shardrunner.identify.coordinator import Coordinator


class BusWorker(msgspec.Struct):
    """A worker's bus endpoint and the connections it serves (str of each ConnKey)."""

    endpoint: str
    conns: list[str]
    slot: int = 0
    generation: int = 0
    #: The bus's TCP endpoint for bots on other machines (CURVE), or "".
    tcp: str = ""


class HostInfo(msgspec.Struct, kw_only=True):
    """One host as the cluster sees it."""

    name: str
    #: "active" (runs blocks, or would) or "standby" (workers booted, holding nothing).
    role: str = "active"
    #: Its ``--workers``: placement gives it blocks in proportion.
    capacity: int = 1
    #: Its control endpoint on TCP ("" if none): a bot's fallback.
    control: str = ""
    #: Its control socket's ipc endpoint: the fallback of a bot on the same machine (local mode).
    local: str = ""
    workers: list[BusWorker] = []
    #: The blocks it holds.
    blocks: list[int] = []
    pid: int = 0
    #: Wall-clock seconds it started.
    started: float = 0.0
    version: str = ""
    #: Free text for ``status --all``: "running", "starting", "stopping", "Redis down" ...
    status: str = "running"


#: KEYS[2..3]: the record, the set. ARGV[3..5]: the name, the record (JSON), its TTL (ms).
_PUBLISH = """
redis.call('SET', KEYS[2], ARGV[4], 'PX', tonumber(ARGV[5]))
redis.call('SADD', KEYS[3], ARGV[3])
return {epoch}
"""

#: KEYS[2]: the set. ARGV[3]: the prefix of a record's key (``host:``; the records share the
#: cluster's hash tag, so they live on the set's node). Drops the names whose record expired;
#: returns (name, record) of the others.
_HOSTS = """
local out = {epoch}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local record = redis.call('GET', ARGV[3] .. name)
  if record then
    table.insert(out, name)
    table.insert(out, record)
  else
    redis.call('SREM', KEYS[2], name)
  end
end
return out
"""

#: KEYS[2..3]: the record, the set. ARGV[3]: the name.
_LEAVE = """
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[3])
return {epoch}
"""

_decoder = msgspec.json.Decoder(HostInfo)


class Directory:
    """The host records of one cluster; ``ttl``: seconds a record lives unless published again."""

    def __init__(self, coordinator: Coordinator, *, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError(f"a host record needs a TTL above 0, not {ttl}")
        self.coordinator = coordinator
        self.ttl = ttl
        c = coordinator
        self._publish, self._hosts, self._leave = c.script(_PUBLISH), c.script(_HOSTS), c.script(_LEAVE)

    async def publish(self, info: HostInfo) -> None:
        """Write ``info`` as its host's record (live for ``ttl`` seconds from now)."""
        c = self.coordinator
        record = msgspec.json.encode(info).decode()
        keys = [c.key("host", info.name), c.key("hosts")]
        await c.run(self._publish, keys, [info.name, record, max(1, round(self.ttl * 1000))])

    async def hosts(self) -> list[HostInfo]:
        """Every live host, by name (a record that does not decode is left out)."""
        c = self.coordinator
        result = await c.run(self._hosts, [c.key("hosts")], [c.key("host", "")])
        found = []
        for k in range(0, len(result), 2):
            try:
                info = _decoder.decode(result[k + 1])
            except msgspec.DecodeError:
                continue
            if info.name == result[k]:
                found.append(info)
        return sorted(found, key=lambda info: info.name)

    async def leave(self, name: str) -> None:
        """Remove ``name``'s record now (a host stopping), instead of after its TTL."""
        c = self.coordinator
        await c.run(self._leave, [c.key("host", name), c.key("hosts")], [name])
