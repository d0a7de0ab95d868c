"""The simulators take any garbage a client sends: a clear close, never an exception in the server.

The Discord simulator's gateway closes as Discord does (docs/simulator.md): 4002 for what it cannot
decode (not JSON, not UTF-8, not an object with an integer op, over 4096 bytes), 4001 for an op it
does not know, 4003 for a command before IDENTIFY. The Twitch simulator records a line it cannot
parse in ``bad_lines`` and reads on, and drops a client whose line never ends (docs/simulator-twitch.md).
Either way the server goes on serving: the next client gets its HELLO (its welcome).
"""

from __future__ import annotations

import logging
import random

import pytest

from shardrunner.protocol import irc
from shardrunner.protocol.compression import Compression
from shardrunner.sim.discord.server import Simulator
from tests.conftest import RawGateway, SimFactory
from tests.sim.twitch.helpers import RawIrc, running

_rng = random.Random(15)

# (what the client sends, the close code); None: the connection lives (the sim answers a heartbeat)
DISCORD_CASES: list[tuple[bytes, int | None]] = [
    (b"not json", 4002),
    (b"\xff\xfe\x00", 4002),
    (b'{"op":1,"d":"\xc3\x28"}', 4002),
    (b"[1,2,3]", 4002),
    (b"null", 4002),
    (b'"op"', 4002),
    (b"{}", 4002),
    (b'{"op":"1"}', 4002),
    (b'{"op":true}', 4002),
    (b'{"op":1.0}', 4002),
    (b'{"op":1,"d":' + b"[" * 1500 + b"]" * 1500 + b"}", 4002),  # nested deeper than msgspec goes
    (b'{"op":1,"d":"' + b"x" * 5000 + b'"}', 4002),  # over 4096 bytes
    (b'{"op":42,"d":{}}', 4001),
    (b'{"op":-1}', 4001),
    (b'{"op":10,"d":{"heartbeat_interval":1}}', 4001),  # a receive-only op
    (b'{"op":3,"d":{}}', 4003),  # a command before IDENTIFY
    (b'{"op":8,"d":{"guild_id":"1","user_ids":["\xc2\xb2"]}}', 4003),
    (b'{"op":1,"d":"not a seq"}', None),
    (b'{"op":1,"d":null,"s":"x","t":[]}', None),
    *[(_rng.randbytes(_rng.randrange(1, 64)), 4002) for _ in range(12)],
]

# After IDENTIFY: commands with garbage in them.
DISCORD_SESSION_CASES: list[tuple[bytes, int | None]] = [
    (
        b'{"op":8,"d":{"guild_id":"GUILD","user_ids":["\xc2\xb2", "12", 5, null]}}',
        None,
    ),  # a digit int() refuses
    (b'{"op":8,"d":{"guild_id":"GUILD","user_ids":"\xc2\xb2"}}', None),
    (b'{"op":8,"d":{"guild_id":["GUILD", [], {}],"limit":"x","query":5}}', None),
    (b'{"op":8,"d":{"guild_id":"GUILD","limit":true,"presences":"yes","nonce":7}}', None),
    (b'{"op":8,"d":{"guild_id":"99999999999999999999999999","limit":-5}}', None),
    (b'{"op":8,"d":"x"}', None),
    (b'{"op":3,"d":[1,2]}', None),
    (b'{"op":4,"d":null}', None),
    (b'{"op":2,"d":{}}', 4005),  # IDENTIFY again
    (b'{"op":6,"d":[]}', 4005),
]


async def _hello(sim: Simulator) -> RawGateway:
    gw = await RawGateway.connect(sim.gateway_url, Compression.NONE)
    assert (await gw.recv())["op"] == 10  # type: ignore[index]
    return gw


async def _lives(gw: RawGateway) -> bool:
    await gw.send({"op": 1, "d": None})
    ack = await gw.recv_until(lambda m: m["op"] in (11, 9), timeout=5)
    return bool(ack["op"] == 11)


@pytest.fixture
def server_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    caplog.set_level(logging.ERROR)
    return caplog.records


async def test_discord_sim_when_a_client_sends_garbage_closes_with_the_right_code(
    sim_factory: SimFactory, server_errors: list[logging.LogRecord]
) -> None:
    n = len(DISCORD_SESSION_CASES)  # one identify bucket per session case: none waits for another
    sim = await sim_factory(
        shards=n, max_concurrency=n, guilds_per_shard=1, rate=0, heartbeat_interval_ms=60_000
    )
    for data, code in DISCORD_CASES:
        gw = await _hello(sim)
        await gw.ws.send_bytes(data)
        if code is None:
            assert await _lives(gw), data
        else:
            assert await gw.expect_close(5) == code, data[:60]
        await gw.close()
    for shard, (data, code) in enumerate(DISCORD_SESSION_CASES):
        gw = await _hello(sim)
        await gw.identify(shard=[shard, n])
        ready = await gw.recv_until(lambda m: m.get("t") == "READY")
        await gw.ws.send_bytes(data.replace(b"GUILD", ready["d"]["guilds"][0]["id"].encode()))
        if code is None:
            assert await _lives(gw), data
        else:
            assert await gw.expect_close(5) == code, data[:60]
        await gw.close()
    assert [r.getMessage() for r in server_errors] == [], "an exception in the simulator"
    await (await _hello(sim)).close()  # and it goes on serving


TWITCH_LINES = [
    b"\xff\xfe garbage",
    b"@",
    b"@=x;=y :nick PRIVMSG #chan :empty keys",
    b"@a=b\\ PRIVMSG #chan :trailing backslash",
    b":prefix-only",
    b"PRIVMSG",
    b"PRIVMSG #",
    b"PRIVMSG :no channel",
    b"JOIN",
    b"JOIN ,,,",
    b"PART #",
    b"CAP",
    b"CAP REQ",
    b"PING",
    b"NICK",
    b"PASS",
    b"NUL\x00inside",
    b"FOOBAR #x :unknown",
    b"12345 odd",
    b"@" + b"x" * 5000 + b" PRIVMSG #chan :client tags over 4094 bytes",
    b"PRIVMSG #chan :" + "é".encode() * 300,
    *[_rng.randbytes(_rng.randrange(1, 64)).replace(b"\n", b"") for _ in range(12)],
]


async def _raw(client: RawIrc, data: bytes) -> None:
    assert client._writer is not None
    client._writer.write(data)
    await client._writer.drain()


@pytest.mark.parametrize("logged_in", [False, True])
async def test_twitch_sim_when_a_client_sends_garbage_reads_on_and_records_it(
    logged_in: bool, server_errors: list[logging.LogRecord]
) -> None:
    async with running(channels=("chan",)) as sim:
        client = await RawIrc.tcp(sim)
        try:
            if logged_in:
                await client.login(nick="bot")
            await _raw(client, b"".join(line + b"\r\n" for line in TWITCH_LINES))
            await client.send("PING :still-here")
            await client.wait(lambda m: m.command == "PONG" and m.trailing == "still-here")
            assert len(sim.stats.bad_lines) >= 5
            await _raw(client, b"x" * (irc.MAX_TAGS_BYTES + irc.MAX_LINE_BYTES + 8))  # a line that never ends
            await client.wait_closed()
        finally:
            await client.aclose()
        assert [r.getMessage() for r in server_errors] == [], "an exception in the simulator"
        again = await RawIrc.tcp(sim)
        try:
            await again.send("PING :x")
            await again.wait(lambda m: m.command == "PONG")
        finally:
            await again.aclose()
