"""The sessions a host hands over to the next holder of its blocks, in Redis.

Hash ``sessions``: field ``str(ConnKey)``, value ``{"written_at": <server time>, "snapshot": ...}``,
the snapshot without its routing keys; hash ``session_keys``: field ``str(ConnKey)``, the JSON list of
its routing keys (a Discord session's guild ids: thousands of bytes that change far less often than
its seq, so the holder writes them only when they changed).
The holder of a block writes its connections' changed snapshots (already rewound to the low water)
every second and before it releases; a taker reads them and resumes those young enough (a snapshot
older than ``max_age``, the resume window, would be refused by the platform: it identifies instead).
Hash ``groups``: the durable consumer groups declared (name -> JSON event list, or null for all), so
the next holder keeps holding their events.

Each call is one script, whatever the count: 10,000 snapshots are one call (the script sends
Redis its commands a thousand fields at a time, under Lua's limit on arguments).
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from shardrunner.identify.coordinator import Coordinator
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

#: Fields per HSET/HMGET/HDEL inside a script (Lua's ``unpack`` takes a few thousand at most).
_CHUNK = 1000

_CHUNKS = (
    f"local CHUNK = {_CHUNK}\n"
    + """
local function chunks(cmd, key, from, step)
  local out = {}
  local args = {}
  for i = from, #ARGV, step do
    for s = 0, step - 1 do table.insert(args, ARGV[i + s]) end
    if #args >= CHUNK * step or i + step > #ARGV then
      local r = redis.call(cmd, key, unpack(args))
      if type(r) == 'table' then
        for _, v in ipairs(r) do table.insert(out, v) end
      end
      args = {}
    end
  end
  return out
end
"""
)

#: KEYS[2]: the hash. ARGV[3..]: (field, snapshot JSON) pairs, stored with the server's time.
_PUT = (
    _CHUNKS
    + """
local stamp = '{"written_at":' .. string.format('%.6f', now) .. ',"snapshot":'
for i = 4, #ARGV, 2 do ARGV[i] = stamp .. ARGV[i] .. '}' end
chunks('HSET', KEYS[2], 3, 2)
return {epoch}
"""
)

#: As _PUT, but only the fields the hash does not have.
_PUT_NEW = """
local stamp = '{"written_at":' .. string.format('%.6f', now) .. ',"snapshot":'
for i = 3, #ARGV, 2 do redis.call('HSETNX', KEYS[2], ARGV[i], stamp .. ARGV[i + 1] .. '}') end
return {epoch}
"""

#: KEYS[2]: the hash. ARGV[3..]: (field, value) pairs, only those the hash does not have.
_SET_NEW = """
for i = 3, #ARGV, 2 do redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) end
return {epoch}
"""

#: KEYS[2]: the hash. ARGV[3..]: the fields. Returns the server's time, then each value (false: none).
_GET = (
    _CHUNKS
    + """
local out = {epoch, string.format('%.6f', now)}
for _, v in ipairs(chunks('HMGET', KEYS[2], 3, 1)) do table.insert(out, v or '') end
return out
"""
)

#: KEYS[2]: the hash. ARGV[3..]: the fields to delete.
_DROP = (
    _CHUNKS
    + """
chunks('HDEL', KEYS[2], 3, 1)
return {epoch}
"""
)

#: KEYS[2]: the hash. ARGV[3..]: (field, value) pairs.
_SET = (
    _CHUNKS
    + """
chunks('HSET', KEYS[2], 3, 2)
return {epoch}
"""
)

#: KEYS[2]: the hash. Returns its fields and values.
_ALL = """
local out = {epoch}
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do table.insert(out, v) end
return out
"""


class _Stored(msgspec.Struct):
    written_at: float
    snapshot: SessionSnapshot


_decoder = msgspec.json.Decoder(_Stored)
_groups_decoder = msgspec.json.Decoder(list[str] | None)
_keys_decoder = msgspec.json.Decoder(list[int | str])


class SessionStore:
    """The cluster's handed-over sessions; ``max_age``: seconds a snapshot stays worth resuming."""

    def __init__(self, coordinator: Coordinator, *, max_age: float) -> None:
        self.coordinator = coordinator
        self.max_age = max_age
        c = coordinator
        self._put, self._get, self._drop = c.script(_PUT), c.script(_GET), c.script(_DROP)
        self._set, self._all = c.script(_SET), c.script(_ALL)
        self._put_new, self._set_new = c.script(_PUT_NEW), c.script(_SET_NEW)

    async def put(
        self,
        snapshots: list[SessionSnapshot],
        *,
        keys_of: Collection[ConnKey] | None = None,
        only_new: bool = False,
    ) -> None:
        """Store ``snapshots`` (one per connection: a later one replaces it, unless ``only_new``:
        then only those of connections with none stored), stamped with the server's time, and the
        routing keys of those in ``keys_of`` (None: of every one); one call, two when keys are
        written, none for an empty list."""
        if not snapshots:
            return
        args: list[object] = []
        keys: list[object] = []
        for snapshot in snapshots:
            field = str(snapshot.conn)
            if snapshot.keys and (keys_of is None or snapshot.conn in keys_of):
                keys += [field, msgspec.json.encode(snapshot.keys).decode()]
            bare = msgspec.structs.replace(snapshot, keys=[]) if snapshot.keys else snapshot
            args += [field, bare.encode().decode()]
        c = self.coordinator
        if keys:
            await c.run(self._set_new if only_new else self._set, [c.key("session_keys")], keys)
        await c.run(self._put_new if only_new else self._put, [c.key("sessions")], args)

    async def get(self, conns: list[ConnKey]) -> list[SessionSnapshot]:
        """The stored snapshots of ``conns`` (in their order) written within ``max_age`` seconds;
        those missing, older, or unreadable are left out."""
        if not conns:
            return []
        c = self.coordinator
        fields = [str(conn) for conn in conns]
        result = await c.run(self._get, [c.key("sessions")], fields)
        now, values = float(result[0]), result[1:]
        found = []
        for conn, value in zip(conns, values, strict=True):
            if not value:
                continue
            try:
                stored = _decoder.decode(value)
            except msgspec.DecodeError:
                continue
            if stored.snapshot.conn == conn and now - stored.written_at <= self.max_age:
                found.append(stored.snapshot)
        if not found:
            return found
        keyed = await c.run(self._get, [c.key("session_keys")], [str(s.conn) for s in found])
        out = []
        for snapshot, keys in zip(found, keyed[1:], strict=True):
            try:
                decoded = _keys_decoder.decode(keys) if keys else []
            except msgspec.DecodeError:
                decoded = []
            out.append(msgspec.structs.replace(snapshot, keys=decoded) if decoded else snapshot)
        return out

    async def drop(self, conns: list[ConnKey]) -> None:
        """Forget the snapshots of ``conns`` (resumed, or not resumable anymore)."""
        if not conns:
            return
        c = self.coordinator
        fields = [str(conn) for conn in conns]
        await c.run(self._drop, [c.key("sessions")], fields)
        await c.run(self._drop, [c.key("session_keys")], fields)

    async def put_groups(self, groups: dict[str, list[str] | None]) -> None:
        """Declare ``groups`` (name -> its events, None for all); others stay as they are."""
        if not groups:
            return
        args: list[object] = []
        for name, events in groups.items():
            args += [name, msgspec.json.encode(events).decode()]
        c = self.coordinator
        await c.run(self._set, [c.key("groups")], args)

    async def groups(self) -> dict[str, list[str] | None]:
        """Every durable consumer group declared (an unreadable one left out)."""
        c = self.coordinator
        result = await c.run(self._all, [c.key("groups")], [])
        found: dict[str, list[str] | None] = {}
        for k in range(0, len(result), 2):
            try:
                found[result[k]] = _groups_decoder.decode(result[k + 1])
            except msgspec.DecodeError:
                continue
        return found
