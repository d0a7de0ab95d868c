"""Secrets that must never be shown, and a scanner of everything a run printed or wrote for them.

A :class:`Secret` is a label and a value; :func:`scan` looks for every form the value could take
in output (the raw text, base64 at any alignment, URL-encoded, a dotted token's secret parts, a
CURVE key's raw bytes and hex) in files and texts, and answers :class:`Leak` records that name the
place and the secret's *label*, never its value, so a failing test prints nothing it guards.

What to scan: :func:`collect_run_outputs` (every regular file under a run dir: logs, the state
file, the channels file; sockets skipped), :func:`process_cmdlines` of :func:`process_tree` (what
``ps`` shows of the supervisor, every worker and every child), and whatever else a run printed
(its stdout, status, metrics), given as texts. A process's environment is not output: only its user
and root read ``/proc/PID/environ``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import stat
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

#: Shorter forms (a short dotted part, a base64 run of a short value) would match by chance.
MIN_FORM: int = 6

_B64 = (base64.b64encode, base64.urlsafe_b64encode)


@dataclass(frozen=True)
class Secret:
    """A value that must appear nowhere, under a ``label`` that says which one it is in a report.

    ``dotted``: the value is parts joined by dots (a Discord token), each secret part looked for
    alone too, but ``public_parts`` (a Discord token's first part is the bot's user id in base64,
    which Discord shows to anyone).
    ``raw``: the bytes the text stands for, when it is an encoding (a CURVE key's Z85 text stands
    for 32 bytes, which are looked for as they are, in hex and in base64).
    """

    label: str
    value: str = field(repr=False)
    dotted: bool = False
    public_parts: tuple[str, ...] = field(default=(), repr=False)
    raw: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.value) < MIN_FORM:
            raise ValueError(
                f"{self.label}: a secret shorter than {MIN_FORM} characters would match by chance"
            )

    @classmethod
    def discord_token(cls, label: str, token: str) -> Secret:
        """A bot token ``base64(user id).timestamp.hmac``: the user id part is public."""
        head = token.split(".", 1)[0]
        return cls(label, token, dotted=True, public_parts=(head,))

    @classmethod
    def curve_key(cls, label: str, z85: str | bytes) -> Secret:
        """A CURVE key in its Z85 form (40 characters), and the 32 bytes it stands for."""
        import zmq.utils.z85

        text = z85.decode() if isinstance(z85, bytes) else z85
        return cls(label, text, raw=zmq.utils.z85.decode(text.encode()))

    @classmethod
    def curve_key_file(cls, label: str, path: str | Path) -> Secret:
        """The secret key of a certificate file (``NAME.key_secret`` of ``shardrunner keys``)."""
        from zmq.auth.certs import load_certificate

        _, secret = load_certificate(str(path))
        if secret is None:
            raise ValueError(f"{label}: {path} holds no secret key")
        return cls.curve_key(label, secret)

    def forms(self) -> dict[str, bytes]:
        """Every form to look for, by name (``raw``, ``base64``, ``url-encoded``, ``part 2``...)."""
        value = self.value.encode()
        out: dict[str, bytes] = {"raw": value}
        for name, text in _base64_runs(value).items():
            out[f"base64 {name}"] = text
        quoted = urllib.parse.quote(self.value, safe="")
        plus = urllib.parse.quote_plus(self.value, safe="")
        if quoted != self.value:
            out["url-encoded"] = quoted.encode()
        if plus not in (quoted, self.value):
            out["url-encoded plus"] = plus.encode()
        if self.dotted:
            for i, part in enumerate(self.value.split("."), 1):
                if len(part) >= MIN_FORM and part not in self.public_parts:
                    out[f"part {i}"] = part.encode()
        if self.raw is not None:
            out["raw bytes"] = self.raw
            out["hex"] = binascii.hexlify(self.raw)
            out["HEX"] = binascii.hexlify(self.raw).upper()
            for name, text in _base64_runs(self.raw).items():
                out[f"raw bytes base64 {name}"] = text
        return {name: text for name, text in out.items() if len(text) >= MIN_FORM}


def _base64_runs(data: bytes) -> dict[str, bytes]:
    """The base64 characters that ``data`` alone decides, at each of the three byte alignments it
    may have inside a longer encoded string, in the standard and the URL-safe alphabets."""
    out: dict[str, bytes] = {}
    for k in range(3):
        encoded = [encode(b"\0" * k + data) for encode in _B64]
        # Character i holds bits [6i, 6i + 6): only those wholly inside data's bits are data's own.
        start, end = -(-8 * k // 6), 8 * (k + len(data)) // 6
        for alphabet, text in zip(("", " url-safe"), encoded, strict=True):
            run = text[start:end]
            if alphabet and run in out.values():
                continue
            out[f"at offset {k}{alphabet}"] = run
    return out


@dataclass(frozen=True)
class Leak:
    """A secret found: where (a file's path or a text's label), on which line (1-based), which
    secret (its label) and in which form. Never the value."""

    where: str
    line: int
    secret: str
    form: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.secret} ({self.form})"


def scan(
    secrets: Iterable[Secret],
    *,
    files: Iterable[str | Path] = (),
    texts: Mapping[str, str | bytes] | Iterable[tuple[str, str | bytes]] = (),
) -> list[Leak]:
    """Every place one of ``secrets`` appears in ``files`` (read as bytes; a file gone meanwhile is
    skipped) and ``texts`` (label -> text), one :class:`Leak` per line, secret and form."""
    needles = [(s.label, name, form) for s in secrets for name, form in s.forms().items()]
    named = texts.items() if isinstance(texts, Mapping) else texts
    sources: list[tuple[str, bytes]] = [
        (label, t.encode() if isinstance(t, str) else t) for label, t in named
    ]
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            sources.append((str(path), Path(path).read_bytes()))
    leaks = []
    for where, data in sources:
        if not any(form in data for _, _, form in needles):
            continue
        for number, line in enumerate(data.split(b"\n"), 1):
            leaks += [Leak(where, number, label, name) for label, name, form in needles if form in line]
    return leaks


def collect_run_outputs(run_dir: str | Path) -> list[Path]:
    """Every regular file under ``run_dir`` (logs, the state file, pid and channels files), sorted;
    sockets, pipes and symbolic links are not output and are skipped."""
    out = []
    for root, _, names in os.walk(run_dir):
        for name in names:
            path = Path(root, name)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISREG(path.lstat().st_mode):
                    out.append(path)
    return sorted(out)


def process_tree(*pids: int) -> list[int]:
    """``pids`` and every living descendant of theirs (a supervisor: its workers and simulators)."""
    out: list[int] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            out += [pid, *(c.pid for c in proc.children(recursive=True))]
    return list(dict.fromkeys(out))


def process_cmdlines(pids: Iterable[int]) -> dict[str, bytes]:
    """What ``ps`` shows of each living process of ``pids``: ``/proc/PID/cmdline`` (its arguments,
    NUL-separated, here joined by spaces), by a label naming the pid. Feed it to :func:`scan` as
    ``texts``."""
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            out[f"cmdline of pid {pid}"] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    return out
