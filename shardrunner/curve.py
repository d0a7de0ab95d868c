"""CURVE for the TCP endpoints: the workers' buses and the supervisor's control socket, reached by
bots on other machines; and the ipc endpoints' socket files, made this user's only
(:func:`restrict_ipc`: they are in the run dir, mode 0700, too).

Keys are pyzmq certificate files (``shardrunner keys``): the cluster's server pair (its secret on
every host, its public with every bot) and one pair per bot (its public in every host's clients
directory). A server socket runs CURVE with a ZAP authenticator that admits the keys of that
directory and logs each refused (address, key) once. Only pyzmq and the standard library are used,
and ``zmq.auth`` is loaded only when a key is, so ``import shardrunner.client`` stays cheap; secret
keys never appear in a repr, log or error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import zmq

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger("shardrunner.curve")

#: The sentence a TCP bind without both keys is refused with.
NEED_CURVE: Final = (
    "TCP endpoints need CURVE: make keys with `shardrunner keys server` and `shardrunner keys bot NAME`, "
    "then pass --curve-server-key and --curve-clients"
)


class CurveError(ValueError):
    """A key file that cannot be used; the message is one sentence naming the file (never a key)."""


def _load(path: str | Path, *, secret: bool) -> tuple[bytes, bytes | None]:
    from zmq.auth.certs import load_certificate

    try:
        public, secret_key = load_certificate(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a CURVE certificate"
        raise CurveError(f"cannot read the CURVE key {path}: {reason}") from None
    if secret and secret_key is None:
        raise CurveError(
            f"the CURVE key {path} holds no secret key: give the .key_secret file, not the public .key"
        )
    if secret:
        with contextlib.suppress(OSError):
            mode = os.stat(path).st_mode & 0o777
            if mode & 0o077:
                log.warning(
                    "the secret CURVE key %s can be read by other users (mode %03o): `chmod 600` it",
                    path,
                    mode,
                )
    return public, secret_key


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """A client's keys: the server's public key, and this bot's pair."""

    server_public: bytes
    public: bytes
    secret: bytes = field(repr=False)

    @classmethod
    def load(cls, server_key: str | Path, key: str | Path) -> CurveKeys:
        """From the server's public certificate and the bot's secret certificate."""
        server_public, _ = _load(server_key, secret=False)
        public, secret = _load(key, secret=True)
        assert secret is not None
        return cls(server_public, public, secret)

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` (before it connects) a CURVE client of the server."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_public)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)


@dataclass(frozen=True, slots=True)
class CurveServer:
    """A server's keys and the directory of the bots' public certificates it admits."""

    public: bytes
    secret: bytes = field(repr=False)
    clients: Path

    @classmethod
    def load(cls, server_key: str | Path, clients: str | Path) -> CurveServer:
        public, secret = _load(server_key, secret=True)
        assert secret is not None
        if not Path(clients).is_dir():
            raise CurveError(f"the CURVE clients directory {clients} is not a directory")
        return cls(public, secret, Path(clients))

    def apply(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` (before it binds) a CURVE server."""
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)

    def authenticator(self, ctx: zmq.Context[Any]) -> ThreadAuthenticator:
        """Start the ZAP handler of ``ctx`` (one per context): admits the clients directory's keys."""
        auth: ThreadAuthenticator = _authenticator_class()(self.clients, ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(self.clients))
        return auth


_AUTH_CLASS: type[Any] | None = None


def _authenticator_class() -> type[Any]:
    """The authenticator, defined on first use (``zmq.auth`` is loaded only then)."""
    global _AUTH_CLASS
    if _AUTH_CLASS is not None:
        return _AUTH_CLASS
    from zmq.auth.thread import ThreadAuthenticator

    class Authenticator(ThreadAuthenticator):
        """pyzmq's authenticator, saying once per (address, key) which bot it refused and why (its
        own denials are debug lines without the address)."""

        def __init__(self, clients: Path, ctx: zmq.Context[Any]) -> None:
            super().__init__(ctx, log=logging.getLogger("shardrunner.curve.zap"))
            self.clients = clients
            self._address = ""
            self._told: set[tuple[str, bytes]] = set()

        async def handle_zap_message(self, msg: list[bytes]) -> None:
            self._address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
            await super().handle_zap_message(msg)

        async def _authenticate_curve(self, domain: str, client_key: bytes) -> tuple[bool, bytes]:
            allowed, reason = await super()._authenticate_curve(domain, client_key)
            told = (self._address, client_key)
            if not allowed and told not in self._told:
                self._told.add(told)
                from zmq.utils import z85

                public = z85.encode(client_key).decode()
                log.warning(
                    "refused a bot from %s with an unauthorised CURVE key %s: its public key is not in %s",
                    self._address,
                    public,
                    self.clients,
                )
            return allowed, reason

    _AUTH_CLASS = Authenticator
    return Authenticator


def tcp_bind(address: str) -> str:
    """The endpoint a worker binds for ``--bus-bind tcp://ADDR``: ``tcp://ADDR:*`` (the OS picks the
    port) unless a port is given."""
    rest = address.removeprefix("tcp://")
    _, sep, port = rest.rpartition(":")
    if sep and port and (port == "*" or port.isdigit()) and not rest.endswith("]"):
        return f"tcp://{rest}"
    return f"tcp://{rest}:*"


def advertised(bound: str, advertise: str = "") -> str:
    """The endpoint bots on other machines use for ``bound`` (a LAST_ENDPOINT, ``tcp://IP:PORT``):
    its host replaced by ``advertise``, else kept, with 0.0.0.0 (every address) named by the
    machine's hostname."""
    rest = bound.removeprefix("tcp://")
    host, _, port = rest.rpartition(":")
    if advertise:
        host = advertise.removeprefix("tcp://")
    elif host in ("0.0.0.0", "*", "[::]", "::"):
        host = socket.gethostname()
    return f"tcp://{host}:{port}"


def check_bind(address: str) -> str:
    """``address`` as a TCP bind (``tcp://HOST`` or ``tcp://HOST:PORT``), or ValueError saying why."""
    text = address.strip()
    if not text:
        return ""
    if not text.startswith("tcp://") or not text.removeprefix("tcp://").strip(":*"):
        raise ValueError("must be a tcp://ADDRESS (or tcp://ADDRESS:PORT) endpoint")
    return text


def restrict_ipc(endpoint: str) -> None:
    """After binding ``ipc://PATH``: the socket file's mode 0600 (connecting needs write permission
    on it), whatever the umask made it. Other endpoints are left alone."""
    if endpoint.startswith("ipc://"):
        with contextlib.suppress(OSError):
            os.chmod(endpoint.removeprefix("ipc://"), 0o600)
