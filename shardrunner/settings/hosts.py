"""The ``hosts`` section of ``shardrunner start``: one bot on several hosts, coordinated through Redis.

Without ``coordinator`` nothing here applies and the cluster runs on this host alone. With it, every
host of the bot (one ``shardrunner start`` each, with the same platform settings) shares the identify
queue, the budgets, the connections' leases and their sessions in that Redis; see docs/hosts.md.
The URL may carry a password (``redis://:PASSWORD@host:6379/0``, or ``coordinator_password``): both
are secret, masked in every dump, status and error.
"""

from __future__ import annotations

import hashlib
import socket
from typing import Any, Final
from urllib.parse import quote, urlsplit

from shardrunner.settings.registry import (
    Section,
    Setting,
    to_bool,
    to_float,
    to_int,
    to_optional_text,
    to_text,
)

_SCHEMES: Final = ("redis", "rediss", "unix")
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def to_redis_url(value: object) -> str | None:
    """``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or ``unix://path``; or nothing."""
    text = to_optional_text(value)
    if not text:
        return None
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in _SCHEMES or not rest.strip("/"):
        raise ValueError("must be a Redis URL such as redis://host:6379/0 (rediss:// for TLS)")
    try:
        urlsplit(text).port  # noqa: B018 (parsing it is the check)
    except ValueError:
        raise ValueError("must be a Redis URL such as redis://host:6379/0, its port a number") from None
    return text


def to_name(value: object) -> str:
    """A name of letters, digits, ``_``, ``.`` and ``-`` (it is part of Redis keys), or empty."""
    text = to_text(value).strip()
    if not set(text) <= _NAME_CHARS or len(text) > 64:
        raise ValueError("must be at most 64 letters, digits, '_', '.' or '-'")
    return text


def default_host_name(run_dir: str) -> str:
    """``HOSTNAME-XXXXXXXX``: the machine's name and a digest of the run directory, so that two
    supervisors on one machine (two run directories) are two hosts, and a restart is the same one."""
    digest = hashlib.sha256(run_dir.encode()).hexdigest()[:8]
    base = "".join(ch if ch in _NAME_CHARS else "-" for ch in socket.gethostname())[:40] or "host"
    return f"{base}-{digest}"


HOSTS: Final = Section(
    "hosts",
    (
        Setting(
            "coordinator",
            to_redis_url,
            None,
            "Redis that the hosts of one bot share (redis://host:6379/0, rediss:// for TLS): the "
            "identify queue, the budgets, the leases and the sessions; none: this host alone",
            metavar="URL",
            secret=True,
        ),
        Setting(
            "coordinator_password",
            to_optional_text,
            None,
            "the Redis password, if it is not in the URL",
            metavar="PASSWORD",
            secret=True,
        ),
        Setting(
            "cluster_name",
            to_name,
            "shardrunner",
            "the bot's name in Redis: the same on every host of one bot (two bots may share a Redis)",
            metavar="NAME",
        ),
        Setting(
            "host_name",
            to_name,
            "",
            "this host's name among the bot's hosts (unique)",
            metavar="NAME",
            default_text="the machine's name and a digest of the run dir",
        ),
        Setting(
            "standby",
            to_bool,
            False,
            "run as a hot standby: workers started, no connections, until a host dies; then take its "
            "connections over by resuming their sessions",
        ),
        Setting(
            "lease_ttl",
            to_float,
            10.0,
            "how long a host's lease of its connections lasts unrenewed (it renews every second); a "
            "dead host's connections are taken over after this",
            minimum=2.0,
            metavar="SECONDS",
        ),
        Setting(
            "lease_blocks",
            to_int,
            0,
            "how many blocks the connections are leased in, the unit hosts take and give (0: auto, "
            "one per connection up to 32); the same on every host",
            minimum=0,
            metavar="N",
            default_text="auto",
        ),
    ),
    help="several hosts of one bot, through Redis (docs/hosts.md)",
)


def coordinator_url(settings: Any) -> str | None:
    """The Redis URL of ``--coordinator`` with ``--coordinator-password`` in it (None: one host)."""
    url: str | None = getattr(settings, "coordinator", None)
    password: str | None = getattr(settings, "coordinator_password", None)
    if not url or not password:
        return url
    scheme, _, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        return url  # the URL has its own credentials
    return f"{scheme}://:{quote(password, safe='')}@{rest}"
