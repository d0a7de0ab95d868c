"""IRC over TLS (``--irc-tls-port``): a self-signed certificate made at start, which a client trusts
by loading its PEM file."""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path

import pytest

from shardrunner.sim.twitch import tls
from tests.sim.twitch.helpers import RawIrc, running


async def tls_client(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> RawIrc:
    c = RawIrc()
    reader, c._writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=host)
    c._task = asyncio.create_task(c._read_tcp(reader))
    return c


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "irc.chat.twitch.tv"])
async def test_tls_listener_when_the_certificate_is_trusted_logs_in_joins_and_reads(host: str) -> None:
    async with running(channels=("chan",), irc_tls_port=0, rate=200.0) as sim:
        assert sim.irc_tls_port is not None
        assert sim.tls_cert is not None
        assert sim.irc_tls_port not in (sim.port, sim.irc_port)
        context = ssl.create_default_context(cafile=str(sim.tls_cert))
        c = await tls_client(sim.irc_tls_port, context, host)
        await c.login()
        await c.join("chan")
        msg = await c.wait(lambda m: m.command == "PRIVMSG")
        assert msg.tags["id"] in sim.channels["chan"].ids
        assert [conn.transport.kind for conn in sim.connections] == ["tls"]
        await c.aclose()
        cert_dir = sim.tls_cert.parent
    assert not cert_dir.exists()


async def test_tls_listener_when_the_certificate_is_not_trusted_fails_the_handshake() -> None:
    async with running(irc_tls_port=0) as sim:
        assert sim.irc_tls_port is not None
        with pytest.raises(ssl.SSLCertVerificationError):
            await tls_client(sim.irc_tls_port, ssl.create_default_context())


async def test_without_irc_tls_port_there_is_no_tls_listener() -> None:
    async with running() as sim:
        assert (sim.irc_tls_port, sim.tls_cert) == (None, None)


def test_make_certificate_when_neither_cryptography_nor_openssl_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)  # the import fails
    monkeypatch.setattr(tls.shutil, "which", lambda name: None)
    with pytest.raises(tls.TlsUnavailable, match="neither the cryptography package nor the openssl binary"):
        tls.make_certificate(tmp_path, "127.0.0.1")


def test_make_certificate_with_openssl_names_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    # Not a skip: the simulator's TLS tests need it anyway (Debian: apt-get install openssl).
    assert tls.shutil.which("openssl") is not None, "the openssl binary is needed for these tests"
    cert, key = tls.make_certificate(tmp_path, "127.0.0.9")
    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert key.stat().st_mode & 0o777 == 0o600
    decoded = ssl._ssl._test_decode_cert(str(cert))  # type: ignore[attr-defined]
    assert set(decoded["subjectAltName"]) == {
        ("DNS", "localhost"),
        ("DNS", "irc.chat.twitch.tv"),
        ("IP Address", "127.0.0.1"),
        ("IP Address", "127.0.0.9"),
    }
    assert ssl.create_default_context(cafile=str(cert)).cert_store_stats()["x509_ca"] == 1
