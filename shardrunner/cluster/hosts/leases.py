"""Leases: a host runs a block only while it holds the block's lease in Redis.

Per block ``i``: ``lease:{i}`` = ``host|epoch`` with a TTL (renewed by its holder), ``held:{i}`` =
``host|epoch|released`` with no TTL (the last holder: a free block whose last holder did not release
it is *orphaned*), and ``epoch:{i}``, the counter every claim increments.

The epoch fences a superseded holder: it stamps every event of the block's connections, and the
client drops events of a lower epoch than it saw. So it must increase across every claim of a block,
even when Redis loses its data (a restart without persistence): :class:`Leases` remembers the highest
epoch it saw of each block (its claims, and every holder :meth:`Leases.table` showed), and the claim
script raises ``epoch:{i}`` to at least that before ``INCR`` (as the identify queue does with its
tokens), and to at least ``epoch_floor`` (what :func:`~.layout.reset_layout` leaves). The first claim,
renewal or table read of a host that finds Redis emptied since its last one raises ``epoch_floor`` to the
server's time in milliseconds: every later claim is above every epoch given before the loss, even
one no live host saw (a host that took the block and died, or stalled). A renewal of a lease Redis
forgot takes it back under its epoch only while the holder's leases had not run out (nobody could
have taken the block meanwhile); past its local deadline, the block is lost, and claimed anew. What
is left: a Redis that forgot while no host that knew it calls afterwards (every host gone).

Every decision is one Lua script on the server's clock; Redis down raises
:class:`~shardrunner.identify.coordinator.CoordinatorDown` and nothing here retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from shardrunner.identify.coordinator import Coordinator


@dataclass(frozen=True)
class Holder:
    """The host holding a block's lease, its epoch, and ``ttl``: seconds the lease has left (server clock)."""

    host: str
    epoch: int
    ttl: float


@dataclass(frozen=True)
class LastHolder:
    """The last host that held a free block, and whether it gave it up on purpose."""

    host: str
    epoch: int
    released: bool


#: Lua, after the prelude: ``floor``, the epoch floor (KEYS[2]), raised to the server's time in
#: milliseconds when ARGV[5], the coordinator epoch the caller's last claim, renewal or table met, is not
#: the server's: Redis lost its data since, and with it the epoch counters, so every epoch from now
#: on is above any it gave before (those are below the time of that loss, at fewer than a claim of a
#: block per millisecond), whichever host claims and whatever it saw.
_FLOOR = """
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[5] ~= '' and ARGV[5] ~= epoch then
  floor = math.max(floor, math.floor(now * 1000))
  redis.call('SET', KEYS[2], string.format('%.0f', floor))
end
"""

#: KEYS[2]: the epoch floor, then (lease, held, epoch) per block. ARGV[3..5]: TTL (ms), host, the
#: coordinator epoch last met; then (block, the highest epoch the caller saw of it) per block.
#: Returns (block, epoch) of those claimed.
_CLAIM = (
    _FLOOR
    + """
local ttl, host = tonumber(ARGV[3]), ARGV[4]
local out = {epoch}
for j = 0, (#KEYS - 2) / 3 - 1 do
  local lease, held, counter = KEYS[3 + 3 * j], KEYS[4 + 3 * j], KEYS[5 + 3 * j]
  if redis.call('EXISTS', lease) == 0 then
    local least = math.max(floor, tonumber(ARGV[7 + 2 * j]))
    if tonumber(redis.call('GET', counter) or '0') < least then
      redis.call('SET', counter, string.format('%.0f', least))
    end
    local e = redis.call('INCR', counter)
    redis.call('SET', lease, host .. '|' .. e, 'PX', ttl)
    redis.call('SET', held, host .. '|' .. e .. '|0')
    table.insert(out, ARGV[6 + 2 * j])
    table.insert(out, e)
  end
end
return out
"""
)

#: KEYS[2]: the epoch floor, then (lease, held, epoch counter) per block. ARGV[3..6]: TTL (ms), host,
#: the coordinator epoch last met, '1' if the caller's leases ran out (its local deadline passed);
#: then (block, epoch) per block. Renews the leases that are still host|epoch; takes back, under the
#: same epoch, a lease that ran out while nobody else took the block (its last holder is still this
#: one, unreleased), so a renewal a little late stops nothing; and one Redis forgot (no last holder)
#: only if the caller's leases had not run out: nobody could have taken the block then, while one
#: that ran out may have been taken by another host under a higher epoch Redis forgot too (the
#: caller claims it anew, under an epoch above that). Returns the blocks still held.
_RENEW = (
    _FLOOR
    + """
local ttl, host, lapsed = tonumber(ARGV[3]), ARGV[4], ARGV[6] == '1'
local out = {epoch}
for j = 0, (#KEYS - 2) / 3 - 1 do
  local lease, held, counter = KEYS[3 + 3 * j], KEYS[4 + 3 * j], KEYS[5 + 3 * j]
  local block, e = ARGV[7 + 2 * j], ARGV[8 + 2 * j]
  local mine = host .. '|' .. e
  local now_held = redis.call('GET', lease)
  if now_held == mine then
    redis.call('PEXPIRE', lease, ttl)
    table.insert(out, block)
  elseif not now_held then
    local last = redis.call('GET', held)
    if last == mine .. '|0' or ((not last) and not lapsed) then
      redis.call('SET', lease, mine, 'PX', ttl)
      redis.call('SET', held, mine .. '|0')
      if tonumber(redis.call('GET', counter) or '0') < tonumber(e) then redis.call('SET', counter, e) end
      table.insert(out, block)
    end
  end
end
return out
"""
)

#: KEYS[2..]: (lease, held) per block. ARGV[3]: host; then the epoch per block. Deletes the leases that
#: are still host|epoch and marks the last holder released where it is still this holder.
_RELEASE = """
local host = ARGV[3]
for j = 0, (#KEYS - 1) / 2 - 1 do
  local lease, held, mine = KEYS[2 + 2 * j], KEYS[3 + 2 * j], host .. '|' .. ARGV[4 + j]
  if redis.call('GET', lease) == mine then redis.call('DEL', lease) end
  local last = redis.call('GET', held)
  if last and string.sub(last, 1, #mine + 1) == mine .. '|' then redis.call('SET', held, mine .. '|1') end
end
return {epoch}
"""

#: KEYS[2]: the epoch floor, then (lease, held) per block. ARGV[3..5] as the claim's (the TTL
#: unused). Returns (lease value or '', its PTTL, held value or '') per block. Every host reads the
#: table each beat: the first to find Redis emptied raises the floor, a standby that never claimed too.
_TABLE = (
    _FLOOR
    + """
local out = {epoch}
for j = 3, #KEYS, 2 do
  table.insert(out, redis.call('GET', KEYS[j]) or '')
  table.insert(out, redis.call('PTTL', KEYS[j]))
  table.insert(out, redis.call('GET', KEYS[j + 1]) or '')
end
return out
"""
)


class Leases:
    """The leases of one host (``host``) with a TTL of ``ttl`` seconds; :attr:`seen` is the highest
    epoch it saw of each block."""

    def __init__(self, coordinator: Coordinator, host: str, *, ttl: float) -> None:
        if not host or "|" in host:
            raise ValueError(f"a host name without '|' is needed, not {host!r}")
        if ttl <= 0:
            raise ValueError(f"a lease needs a TTL above 0, not {ttl}")
        self.coordinator = coordinator
        self.host = host
        self.ttl = ttl
        #: block -> the highest epoch seen of it (claimed here, or shown by :meth:`table`).
        self.seen: dict[int, int] = {}
        #: The coordinator's epoch the last claim, renewal or table met ("" before the first).
        self._known = ""
        c = coordinator
        self._claim, self._renew = c.script(_CLAIM), c.script(_RENEW)
        self._release, self._table = c.script(_RELEASE), c.script(_TABLE)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    def _see(self, block: int, epoch: int) -> None:
        if epoch > self.seen.get(block, 0):
            self.seen[block] = epoch

    async def claim(self, blocks: list[int]) -> dict[int, int]:
        """Take the lease of each of ``blocks`` that has none: ``{block: epoch}`` of those taken (the
        others are held by someone)."""
        if not blocks:
            return {}
        c = self.coordinator
        keys = [c.key("epoch_floor")]
        args: list[object] = [self._ttl_ms, self.host, self._known]
        for i in blocks:
            keys += [c.key("lease", i), c.key("held", i), c.key("epoch", i)]
            args += [i, self.seen.get(i, 0)]
        result = await c.run(self._claim, keys, args)
        self._known = c.epoch
        claimed = {int(result[k]): int(result[k + 1]) for k in range(0, len(result), 2)}
        for block, epoch in claimed.items():
            self._see(block, epoch)
        return claimed

    async def renew(self, held: dict[int, int], *, lapsed: bool = False) -> set[int]:
        """Renew the leases of ``held`` (``{block: epoch}``); the blocks still held. A block missing
        from the answer is lost: another host took it, or it was released. A lease that ran out
        with nobody taking the block since is taken back under its epoch; one Redis forgot (it
        restarted empty) too, unless ``lapsed``: this host's leases ran out (its local deadline
        passed), so another host may have taken the block meanwhile, under an epoch Redis forgot."""
        if not held:
            return set()
        c = self.coordinator
        keys = [c.key("epoch_floor")]
        keys += [k for i in held for k in (c.key("lease", i), c.key("held", i), c.key("epoch", i))]
        args: list[object] = [self._ttl_ms, self.host, self._known, "1" if lapsed else "0"]
        for i, epoch in held.items():
            args += [i, epoch]
        result = await c.run(self._renew, keys, args)
        self._known = c.epoch
        return {int(b) for b in result}

    async def release(self, held: dict[int, int]) -> None:
        """Give up the leases of ``held`` (those still ours), marking them released: they go by
        placement, not to a standby."""
        if not held:
            return
        c = self.coordinator
        keys = [k for i in held for k in (c.key("lease", i), c.key("held", i))]
        await c.run(self._release, keys, [self.host, *held.values()])

    async def table(self, blocks: int) -> tuple[dict[int, Holder], dict[int, LastHolder]]:
        """The holders of blocks ``0..blocks-1``, and the last holder of each free block that had one."""
        if blocks <= 0:
            return {}, {}
        c = self.coordinator
        keys = [c.key("epoch_floor")]
        keys += [k for i in range(blocks) for k in (c.key("lease", i), c.key("held", i))]
        result = await c.run(self._table, keys, [0, self.host, self._known])
        self._known = c.epoch
        holders: dict[int, Holder] = {}
        last: dict[int, LastHolder] = {}
        for i in range(blocks):
            lease, pttl, held = result[3 * i], int(result[3 * i + 1]), result[3 * i + 2]
            if held:
                self._see(i, int(held.rsplit("|", 2)[1]))
            if lease:
                host, _, epoch_text = lease.rpartition("|")
                self._see(i, int(epoch_text))
                holders[i] = Holder(host, int(epoch_text), max(pttl, 0) / 1000)
            elif held:
                host, epoch_text, released = held.rsplit("|", 2)
                last[i] = LastHolder(host, int(epoch_text), released == "1")
        return holders, last
