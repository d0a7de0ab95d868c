"""The secrets scanner: each form of a planted secret is found, by label and line, and never shown."""

from __future__ import annotations

import base64
import binascii
import os
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import zmq
import zmq.utils.z85
from zmq.auth.certs import create_certificates

from harness.secrets import Leak, Secret, collect_run_outputs, process_cmdlines, process_tree, scan
from shardrunner.sim.discord.world import make_token

TOKEN = make_token(1100000000000000001, timestamp="GxQw3A", signature="pL0tT3d-s1gnAtur3_xYz")
PASSWORD = "r3d1s p@ss/w0rd+"


def labels(leaks: list[Leak]) -> set[tuple[str, str]]:
    return {(leak.secret, leak.form) for leak in leaks}


def test_scan_when_nothing_planted_finds_nothing() -> None:
    text = "shard discord:0/1 ready; token ***; oauth:***; MTEwMDAwMDAwMDAwMDAwMDAwMQ is the bot's id"
    assert scan([Secret.discord_token("the token", TOKEN)], texts={"log": text}) == []


@pytest.mark.parametrize(
    ("planted", "form"),
    [
        (f"Authorization: Bot {TOKEN}", "raw"),
        (base64.b64encode(TOKEN.encode()).decode(), "base64 at offset 0"),
        # Inside a longer blob, at another alignment: "x:" shifts the token by two bytes.
        (base64.b64encode(b"x:" + TOKEN.encode() + b"!").decode(), "base64 at offset 2"),
        (base64.urlsafe_b64encode(b"y" + TOKEN.encode()).decode(), "base64 at offset 1"),
        ("the signature was pL0tT3d-s1gnAtur3_xYz", "part 3"),
        ("ts GxQw3A?", "part 2"),
    ],
)
def test_scan_when_the_token_is_planted_finds_it_by_label_and_form(planted: str, form: str) -> None:
    leaks = scan([Secret.discord_token("the token", TOKEN)], texts={"out": f"line one\n{planted}\n"})
    assert ("the token", form) in labels(leaks)
    assert {(leak.where, leak.line) for leak in leaks} == {("out", 2)}
    assert all(TOKEN not in str(leak) and "pL0tT3d" not in repr(leak) for leak in leaks)


def test_scan_when_base64_is_url_safe_finds_it_in_that_alphabet() -> None:
    value = "?>?>?>~~ a secret with + and / in its base64"
    assert "/" in base64.b64encode(b"y" + value.encode()).decode()
    planted = base64.urlsafe_b64encode(b"y" + value.encode()).decode()
    leaks = scan([Secret("a value", value)], texts={"out": planted})
    assert labels(leaks) == {("a value", "base64 at offset 1 url-safe")}


def test_scan_when_a_password_is_url_encoded_in_a_redis_url_finds_it() -> None:
    url = f"redis://:{urllib.parse.quote(PASSWORD, safe='')}@10.0.0.1:6379/0"
    leaks = scan([Secret("the Redis password", PASSWORD)], texts={"error": url})
    assert labels(leaks) == {("the Redis password", "url-encoded")}
    plus = urllib.parse.quote_plus(PASSWORD, safe="")
    assert labels(scan([Secret("pw", PASSWORD)], texts={"e": plus})) == {("pw", "url-encoded plus")}


def test_scan_when_a_curve_key_is_planted_finds_its_z85_raw_hex_and_base64(tmp_path: Path) -> None:
    _, secret_file = create_certificates(tmp_path, "server")
    secret = Secret.curve_key_file("the server's secret key", secret_file)
    raw = zmq.utils.z85.decode(secret.value.encode())
    files = {
        "z85.log": secret.value.encode(),
        "raw.bin": b"\x93\xa4head" + raw + b"tail",
        "hex.log": b"key=" + binascii.hexlify(raw),
        "HEX.log": binascii.hexlify(raw).upper(),
        "b64.log": base64.b64encode(raw),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    leaks = scan([secret], files=[tmp_path / name for name in files])
    found = {(Path(leak.where).name, leak.form) for leak in leaks}
    assert found == {
        ("z85.log", "raw"),
        ("raw.bin", "raw bytes"),
        ("hex.log", "hex"),
        ("HEX.log", "HEX"),
        ("b64.log", "raw bytes base64 at offset 0"),
    }
    public = (tmp_path / "server.key").read_bytes()
    assert scan([secret], texts={"public": public}) == [], "the public key file holds no secret"


def test_secret_when_shorter_than_a_form_refuses_it() -> None:
    with pytest.raises(ValueError, match="shorter than"):
        Secret("pin", "1234")


def test_collect_run_outputs_when_a_socket_is_there_lists_only_files(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "worker-0.log").write_text("x")
    (tmp_path / "sessions.json").write_text("{}")
    (tmp_path / "link").symlink_to(tmp_path / "sessions.json")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "control.sock"))
        files = collect_run_outputs(tmp_path)
    assert files == [tmp_path / "logs" / "worker-0.log", tmp_path / "sessions.json"]


def test_process_cmdlines_when_a_child_has_the_secret_in_argv_finds_it() -> None:
    code = "import sys; sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code, "--token", TOKEN], stdin=subprocess.PIPE)
    try:
        pids = process_tree(os.getpid())
        assert child.pid in pids
        leaks = scan([Secret.discord_token("the token", TOKEN)], texts=process_cmdlines(pids))
        assert {leak.where for leak in leaks} == {f"cmdline of pid {child.pid}"}
    finally:
        child.kill()
        child.wait(5)
