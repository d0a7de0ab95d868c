"""A real ``redis-server`` for the tests: on a free port of 127.0.0.1, in a temporary directory, with
no persistence; killed after the test. It can be stopped and started again on the same port (the
tests of a coordinator going down). A test that needs it never skips: without ``redis-server`` it
fails and says how to install it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

MISSING = "redis-server is not installed: run the README's test command (.ci/redis installs it)."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ping(port: int, password: str | None = None) -> bool:
    hello = b"PING\r\n" if password is None else _command(b"AUTH", password.encode()) + b"PING\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(hello)
            answer = b""
            while answer.count(b"\r\n") < hello.count(b"PING"):
                more = s.recv(64)
                if not more:
                    return False
                answer += more
            return answer.startswith(b"+OK\r\n+PONG" if password is not None else b"+PONG")
    except OSError:
        return False


def _command(*words: bytes) -> bytes:
    """One command in RESP (a password may hold spaces)."""
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


class RedisServer:
    """One ``redis-server`` process; :meth:`stop` kills it, :meth:`start` runs it again on its port.
    With ``password`` it requires it (``requirepass``, given in a config file read from stdin, so
    that it is not in the server's command line) and :attr:`url` carries it."""

    def __init__(self, directory: Path, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(MISSING, pytrace=False)
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.password is None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        args += ["no", "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")]
        if self.password is None:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        else:  # "-" reads a config file from stdin, given before the command line's options
            quoted = self.password.replace("\\", "\\\\").replace('"', '\\"')
            self.process = subprocess.Popen(
                [self.binary, "-", *args[1:]], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
            )
            assert self.process.stdin is not None
            self.process.stdin.write(f'requirepass "{quoted}"\n'.encode())
            self.process.stdin.close()
        deadline = time.monotonic() + timeout
        while not _ping(self.port, self.password):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                pytest.fail(f"redis-server did not answer PING on port {self.port}:\n{log}", pytrace=False)
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
