"""Replay mode: each shard's dispatches generated and compressed before the server starts.

A script holds, for one shard of the configured layout and one compression, ``count`` dispatches
with the sequence numbers a fresh session of that shard will give them (READY is 1, the guilds'
GUILD_CREATEs follow, the script after them). Messages are compressed in segments of
``segment`` dispatches, each by a fresh compressor (see :mod:`shardrunner.protocol.compression`), and
every segment is stored as one blob of ready-made WebSocket frames with their offsets: sending
dispatches ``i..j`` of a segment is one slice and one ``transport.write``, no per-event work.

A connection that must say something live in the middle of a segment (a heartbeat ACK, say) leaves
the prepared frames, compresses the rest of that segment itself and rejoins at the next segment.
"""

from __future__ import annotations

import array
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import msgspec

from shardrunner.protocol.compression import Compression, compress_segment
from shardrunner.sim.discord.config import SimConfig
from shardrunner.sim.discord.wsframe import frame

#: Distinct dispatch bodies per script; beyond that, bodies repeat (with fresh ids and seqs) at a
#: distance far larger than the 32 KiB zlib window, so the compression ratio stays honest.
TEMPLATES = 2048
_MARK = "shardrunner-replay-id"


@dataclass(slots=True)
class PreparedScript:
    """One shard's prepared dispatches for one compression."""

    shard_id: int
    mode: Compression
    first_seq: int
    count: int
    segment: int
    names: list[bytes]
    bodies: list[tuple[bytes, bytes]]
    first_id: int
    blobs: list[bytes]
    offsets: list[array.array[int]]

    def payload(self, index: int) -> bytes:
        """The uncompressed JSON payload of dispatch ``index`` (for connections off the prepared path)."""
        k = index % len(self.bodies)
        head, tail = self.bodies[k]
        seq = self.first_seq + index
        d = head + b'"id":"%d"' % (self.first_id + index) + tail if tail else head
        return b'{"t":"%b","s":%d,"op":0,"d":%b}' % (self.names[k], seq, d)

    def first_message(self, seg: int) -> bytes:
        """The compressed first message of segment ``seg`` without its WebSocket header."""
        blob, off = self.blobs[seg], self.offsets[seg]
        return _strip_header(blob[off[0] : off[1]])

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.blobs)


def _strip_header(fr: bytes) -> bytes:
    n = fr[1] & 0x7F
    return fr[2:] if n < 126 else fr[4:] if n == 126 else fr[10:]


def _build(config: SimConfig, shard_id: int, mode: Compression) -> PreparedScript:
    # Imported here: this runs in worker processes too.
    from shardrunner.sim.discord.world import World

    world = World(config)
    world.rng = random.Random(config.seed * 7919 + shard_id)
    names: list[bytes] = []
    bodies: list[tuple[bytes, bytes]] = []
    for _ in range(min(TEMPLATES, max(config.replay, 1))):
        name, _gid, d = world.next_event(shard_id)
        names.append(name.encode())
        if name == "MESSAGE_CREATE":
            # Every created message gets its own id: cut the body where its own (top-level) id
            # goes, found by re-encoding with a marker rather than by searching (nested objects have
            # ids too), so payload() can put a fresh id there.
            body = msgspec.json.decode(d)
            body["id"] = _MARK
            head, _, tail = msgspec.json.encode(body).partition(b'"id":"%b"' % _MARK.encode())
            bodies.append((head, tail))
        else:
            bodies.append((d, b""))
    first_seq = 2 + len(world.guilds_by_shard[shard_id])
    script = PreparedScript(
        shard_id=shard_id,
        mode=mode,
        first_seq=first_seq,
        count=config.replay,
        segment=config.replay_segment,
        names=names,
        bodies=bodies,
        first_id=int(time.time() * 1000 - 1420070400000) << 22,
        blobs=[],
        offsets=[],
    )
    opcode = 2 if mode.binary else 1
    for start in range(0, config.replay, config.replay_segment):
        stop = min(config.replay, start + config.replay_segment)
        messages = compress_segment(mode, [script.payload(i) for i in range(start, stop)])
        frames = [frame(m, opcode) for m in messages]
        off = array.array("Q", [0])
        total = 0
        for fr in frames:
            total += len(fr)
            off.append(total)
        script.blobs.append(b"".join(frames))
        script.offsets.append(off)
    return script


def prepare_scripts(
    config: SimConfig, progress: Callable[[int, int], None] | None = None
) -> dict[tuple[int, Compression], PreparedScript]:
    """Prepare every (shard, compression) script, in parallel worker processes when there are several."""
    jobs = [(s, m) for m in config.replay_compress for s in range(config.shards)]
    scripts: dict[tuple[int, Compression], PreparedScript] = {}
    if not jobs or config.replay == 0:
        return scripts
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers == 1:
        for i, (s, m) in enumerate(jobs):
            scripts[(s, m)] = _build(config, s, m)
            if progress:
                progress(i + 1, len(jobs))
        return scripts
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {(s, m): pool.submit(_build, config, s, m) for s, m in jobs}
        for i, (key, fut) in enumerate(futures.items()):
            scripts[key] = fut.result()
            if progress:
                progress(i + 1, len(jobs))
    return scripts
