"""discord.js's gateway client (@discordjs/ws 2.x with @discordjs/rest) against the simulator.

``discordjs/client.mjs`` runs a ``WebSocketManager`` (zlib-stream inflated by ``node:zlib``) whose
``REST`` points at the simulator's ``/api``, and prints one JSON line per dispatch (shard, ``t``,
``s``, straight from the raw payload) and per READY / RESUMED. The test reads those lines while the
simulator runs in-process: both shards must get READY and every GUILD_CREATE on the right shard,
messages must flow, and an op 7 and a dropped TCP connection must each lead to an accepted RESUME
(no new IDENTIFY) with a gap-free, duplicate-free sequence per shard, up to the session's last seq.
A second test sends op 9 true: discord.js resumes on the same connection, which must be accepted.

``npm ci`` installs the pinned packages on first use. Node and npm are required: CI has them, so
their absence fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest

from shardrunner.protocol.compression import Compression
from shardrunner.sim.discord.server import Simulator
from tests.conftest import TOKEN, SimFactory, http_json, wait_for
from tests.node import JsonLinesProcess, ensure_installed, node_tools

pytestmark = pytest.mark.asyncio

NODE_DIR: Final = Path(__file__).parent / "discordjs"
SHARDS: Final = 2
GUILDS_PER_SHARD: Final = 3
#: Dispatches per second per shard: messages on both shards and frames in flight when a fault hits.
RATE: Final = 50.0
STEP: Final = 15.0  # deadline of each wait


# -- installing and running the Node client -------------------------------------------------------
class NodeClient(JsonLinesProcess):
    """The running client.mjs: every JSON line it printed, per shard, and the tail of its stderr."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        #: (t, s, guild id for GUILD_CREATE) of every dispatch, per shard, in the order received.
        self.dispatches: dict[int, list[tuple[str, int, int | None]]] = defaultdict(list)
        super().__init__(proc)

    @classmethod
    async def start(cls, node: str, sim: Simulator) -> NodeClient:
        argv = (node, str(NODE_DIR / "client.mjs"), sim.url, TOKEN, str(SHARDS))
        return cls(await cls.spawn(*argv, cwd=NODE_DIR))

    def on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "dispatch":
            guild = int(event["guild"]) if "guild" in event else None
            self.dispatches[event["shard"]].append((event["t"], event["s"], guild))

    def context(self) -> str:
        errors = [e for e in self.events if e.get("event") in ("error", "socketError", "closed")]
        seqs = {shard: self.seqs(shard)[-5:] for shard in sorted(self.dispatches)}
        return (
            f"\nclient events: {errors[-10:]}\nlast seqs per shard: {seqs}"
            "\nclient stderr (tail):\n" + "\n".join(self.stderr)
        )

    def alive(self) -> None:
        """Fail with the client's output, not a timeout, if it exited."""
        if self.proc.returncode is not None:
            pytest.fail(f"client.mjs exited with {self.proc.returncode}{self.context()}")
        errors = [e for e in self.events if e.get("event") == "error"]
        if errors:
            pytest.fail(f"client.mjs reported {errors[0]}{self.context()}")

    async def wait(self, predicate: Callable[[], bool], what: str) -> None:
        def check() -> bool:
            self.alive()
            return bool(predicate())

        try:
            await wait_for(check, STEP, what)
            return
        except pytest.fail.Exception as exc:
            if self.proc.returncode is not None or "client.mjs" in str(exc):
                raise  # alive() already said what the client did
            timed_out = str(exc)
        pytest.fail(f"{timed_out}{self.context()}", pytrace=False)

    # -- what the client got ------------------------------------------------------------------
    def named(self, event: str, shard: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event and e.get("shard") == shard]

    def seqs(self, shard: int) -> list[int]:
        """Seqs of the shard's dispatches, RESUMED included (it has a seq of its own)."""
        return [s for _t, s, _ in self.dispatches[shard]]

    def last_seq(self, shard: int) -> int:
        return max(self.seqs(shard), default=0)

    def count(self, shard: int, t: str) -> int:
        return sum(1 for name, _, _ in self.dispatches[shard] if name == t)

    def guild_creates(self, shard: int) -> list[int]:
        return [g for t, _, g in self.dispatches[shard] if t == "GUILD_CREATE" and g is not None]

    def resumed_seqs(self, shard: int) -> list[tuple[int, int | None]]:
        """(RESUMED's ``s``, seq of the dispatch just before it) for each RESUMED of the shard."""
        out: list[tuple[int, int | None]] = []
        last: int | None = None
        for t, s, _ in self.dispatches[shard]:
            if t == "RESUMED":
                out.append((s, last))
            else:
                last = s
        return out

    def assert_gap_free(self, shard: int) -> None:
        seqs = self.seqs(shard)
        if seqs == list(range(1, len(seqs) + 1)):
            return
        seen: set[int] = set()
        dupes = sorted({s for s in seqs if s in seen or seen.add(s)})  # type: ignore[func-returns-value]
        missing = sorted(set(range(1, max(seqs, default=0) + 1)) - seen)
        pytest.fail(
            f"shard {shard}: sequence not gap-free: {len(seqs)} dispatches, last {max(seqs, default=0)}, "
            f"missing {missing[:20]}, duplicated {dupes[:20]}"
        )


# -- simulator helpers ----------------------------------------------------------------------------
def assert_zlib_stream(sim: Simulator) -> None:
    """Every connection of the client asked for zlib-stream (and so inflated it with node:zlib)."""
    modes = [conn.mode for conn in sim.connections if conn.session is not None]
    assert len(modes) == SHARDS
    assert all(mode is Compression.ZLIB_STREAM for mode in modes), modes


def accepted(sim: Simulator, kind: str, shard: int) -> list[dict[str, Any]]:
    """Accepted ``identifies`` or ``resumes`` of ``[shard, SHARDS]``."""
    return [r for r in sim.stats()[kind] if r["accepted"] and r.get("shard") == [shard, SHARDS]]


def live_session(sim: Simulator, shard: int) -> dict[str, Any]:
    (entry,) = [s for s in sim.stats()["sessions"] if s["shard"] == [shard, SHARDS] and s["ended"] is None]
    return entry


async def inject(sim: Simulator, **spec: Any) -> None:
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", spec)
    assert status == 200, body
    assert len(body["applied"]) == 1, body


async def expect_resume(sim: Simulator, client: NodeClient, shard: int, fault: str) -> None:
    """Inject ``fault`` on ``shard``: it must RESUME (not IDENTIFY) and stay gap-free."""
    resumes_before = len(accepted(sim, "resumes", shard))
    resumed_before = len(client.named("resumed", shard))
    seq_before = client.last_seq(shard)
    await inject(sim, kind=fault, shard=shard)
    await client.wait(
        lambda: (
            len(accepted(sim, "resumes", shard)) == resumes_before + 1
            and len(client.named("resumed", shard)) == resumed_before + 1
        ),
        f"shard {shard} to RESUME after {fault}",
    )
    resume = accepted(sim, "resumes", shard)[-1]
    assert resume["seq"] >= seq_before, "the client resumed from before what it had received"
    assert resume["session_id"] == live_session(sim, shard)["session_id"]
    assert len(accepted(sim, "identifies", shard)) == 1, f"shard {shard} identified again after {fault}"
    # RESUMED takes the seq after the last replayed one, as on Discord; discord.js keeps the highest.
    s, previous = client.resumed_seqs(shard)[-1]
    assert previous == resume["seq"] + resume["replayed"]
    assert s == previous + 1
    await client.wait(lambda: client.last_seq(shard) > s, f"dispatches on shard {shard} after RESUMED")
    client.assert_gap_free(shard)


# -- the test -------------------------------------------------------------------------------------
@pytest.mark.timeout(240)  # the first run installs the packages (npm ci)
async def test_discordjs_ws_when_shard_gets_op7_or_drop_resumes_gap_free(sim_factory: SimFactory) -> None:
    node, npm = node_tools("the discord.js test")
    await ensure_installed(npm, NODE_DIR)
    # max_concurrency=SHARDS: discord.js's SimpleIdentifyThrottler waits 5-6.5 s between two
    # identifies of one bucket (Discord's window); the simulator's window is 0.2 s.
    sim = await sim_factory(
        shards=SHARDS,
        guilds_per_shard=GUILDS_PER_SHARD,
        rate=RATE,
        identify_window=0.2,
        heartbeat_interval_ms=1000,
        max_concurrency=SHARDS,
        seed=11,
    )
    started = time.monotonic()
    client = await NodeClient.start(node, sim)
    try:
        await client.wait(
            lambda: (
                all(client.named("ready", i) for i in range(SHARDS))
                and any(e["event"] == "connected" for e in client.events)
            ),
            "READY on every shard and manager.connect() to resolve",
        )
        for i in range(SHARDS):
            (ready,) = client.named("ready", i)
            assert ready["session_id"] == live_session(sim, i)["session_id"]
            expected = sorted(sim.world.guilds_for(i, SHARDS))
            assert len(expected) == GUILDS_PER_SHARD
            assert sorted(int(g) for g in ready["guilds"]) == expected
            await client.wait(
                lambda i=i: len(client.guild_creates(i)) >= GUILDS_PER_SHARD, f"GUILD_CREATEs on shard {i}"
            )
            assert sorted(client.guild_creates(i)) == expected, f"shard {i}"
            assert client.dispatches[i][0][:2] == ("READY", 1)
            await client.wait(lambda i=i: client.count(i, "MESSAGE_CREATE") >= 5, f"MESSAGE_CREATE on {i}")
        assert {g for i in range(SHARDS) for g in client.guild_creates(i)} == set(sim.world.guild_ids)
        assert_zlib_stream(sim)
        startup = time.monotonic() - started

        await expect_resume(sim, client, 1, "reconnect")
        await expect_resume(sim, client, 0, "drop")

        # Stop the stream; every shard must end with exactly what its session holds.
        status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": 0})
        assert status == 200, body
        assert body["rate"] == 0, body
        await client.wait(
            lambda: all(client.last_seq(i) == live_session(sim, i)["last_seq"] for i in range(SHARDS)),
            "every shard to receive its session's last seq",
        )
        for i in range(SHARDS):
            client.assert_gap_free(i)
            assert live_session(sim, i)["connected"]
            assert len(client.named("ready", i)) == 1
            assert len(client.named("resumed", i)) == 1
        assert_zlib_stream(sim)
        stats = sim.stats()
        assert stats["violations"] == []
        assert sorted(r["shard"] for r in stats["identifies"]) == [[i, SHARDS] for i in range(SHARDS)]
        assert sorted(r["shard"] for r in stats["resumes"]) == [[i, SHARDS] for i in range(SHARDS)]
        assert all(r["accepted"] for r in stats["identifies"] + stats["resumes"])
        total = time.monotonic() - started

        # stdin closed: the client destroys its manager (close 1000) and exits 0.
        assert await client.stop() == 0, client.context()
        assert client.events[-1]["event"] == "destroyed"
        print(
            f"discord.js: READY + GUILD_CREATEs + messages in {startup:.2f} s, whole run {total:.2f} s, "
            f"dispatches {[client.last_seq(i) for i in range(SHARDS)]}"
        )
    finally:
        await client.kill()


@pytest.mark.timeout(240)  # the first run installs the packages (npm ci)
async def test_discordjs_ws_when_shard_gets_op9_true_resumes_on_the_same_connection(
    sim_factory: SimFactory,
) -> None:
    # discord.js answers op 9 true with op 6 on the socket that got it: the simulator must accept it
    # there (it used to close 4005, and the shard lost its session).
    node, npm = node_tools("the discord.js test")
    await ensure_installed(npm, NODE_DIR)
    sim = await sim_factory(
        shards=SHARDS,
        guilds_per_shard=GUILDS_PER_SHARD,
        rate=RATE,
        identify_window=0.2,
        heartbeat_interval_ms=1000,
        max_concurrency=SHARDS,
        seed=12,
    )
    client = await NodeClient.start(node, sim)
    try:
        await client.wait(
            lambda: all(client.count(i, "MESSAGE_CREATE") >= 5 for i in range(SHARDS)),
            "READY and messages on every shard",
        )
        sid = live_session(sim, 0)["session_id"]
        conn = sim.sessions[sid].conn
        assert conn is not None
        await expect_resume(sim, client, 0, "invalid_session")
        assert sim.sessions[sid].conn is conn, "the shard resumed on another connection"
        stats = sim.stats()
        assert stats["closes"] == [], "a connection closed around op 9"
        assert stats["violations"] == []
        assert len(client.named("ready", 0)) == 1
        assert await client.stop() == 0, client.context()
    finally:
        await client.kill()
