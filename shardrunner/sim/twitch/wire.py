"""Lines as Twitch's server writes them, and quick looks at formatted lines."""

from __future__ import annotations

from shardrunner.protocol import irc
from shardrunner.protocol.twitch import SERVER


def line(
    command: str, params: list[str], tags: dict[str, str] | None = None, prefix: str | None = SERVER
) -> bytes:
    """A line as Twitch writes it: the last of two or more parameters (and PING's) after `` :``."""
    return irc.format(
        command, params, tags=tags, prefix=prefix, trailing=len(params) >= 2 or command == "PING"
    )


def strip_tags(line: bytes) -> bytes:
    """The line without its ``@tags `` part."""
    if line.startswith(b"@"):
        return line[line.index(b" ") + 1 :]
    return line


def command_of(line: bytes) -> bytes:
    """The command word of a formatted line (fast, no full parse)."""
    rest = strip_tags(line)
    if rest.startswith(b":"):
        rest = rest[rest.index(b" ") + 1 :]
    end = rest.find(b" ")
    return rest[:end] if end >= 0 else rest.rstrip(b"\r\n")
