"""The IRC line codec of Twitch chat (IRCv3 message tags), shared by the simulator and the gateway.

A line is ``[@tags ][:prefix ]COMMAND[ params...][ :trailing]`` without its CRLF. :func:`parse`
turns one into a :class:`Message` (tag values unescaped as ../shared/TWITCH.md says: ``\\:`` -> ``;``,
``\\s`` -> space, ``\\\\`` -> ``\\``, ``\\r``, ``\\n``, a lone trailing ``\\`` dropped, any other
``\\x`` -> ``x``; ``@key`` equals ``@key=``); :func:`format` does the reverse (escaping tag values,
the last parameter sent as a trailing one when it needs to be). :class:`LineBuffer` splits a byte
stream (TCP reads, WebSocket frames carrying several lines) into lines, keeping a partial tail.

Sizes: the tag part (after ``@``, before the space) may be at most :data:`MAX_TAGS_BYTES` bytes and
the rest at most :data:`MAX_LINE_BYTES` including the CRLF; :func:`parse` takes ``strict=True`` to
enforce them (a server checks what clients send; a client is lenient with the server).

This module imports nothing of the project.
"""

from __future__ import annotations

import builtins
from typing import Final

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_TAGS_BYTES",
    "IrcError",
    "LineBuffer",
    "Message",
    "escape_tag",
    "format",
    "parse",
    "split_lines",
    "unescape_tag",
]

#: The tag part of a line, ``@`` excluded, is at most this many bytes (IRCv3 message-tags).
MAX_TAGS_BYTES: Final = 8191
#: The rest of a line (prefix, command, params) is at most this many bytes with its CRLF.
MAX_LINE_BYTES: Final = 512

_UNESCAPE: Final = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPE: Final = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})


class IrcError(ValueError):
    """A line that is not valid IRC; the message says why."""


class Message:
    """One IRC line: ``tags`` (unescaped values), ``prefix`` (without ``:``, or None), ``command``
    (as sent: upper-case words or three-digit numerics), ``params`` (the trailing one last)."""

    __slots__ = ("command", "params", "prefix", "tags")

    def __init__(
        self,
        tags: dict[str, str] | None = None,
        prefix: str | None = None,
        command: str = "",
        params: list[str] | None = None,
    ) -> None:
        self.tags: dict[str, str] = tags if tags is not None else {}
        self.prefix = prefix
        self.command = command
        self.params: list[str] = params if params is not None else []

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (
            self.command == other.command
            and self.params == other.params
            and self.prefix == other.prefix
            and self.tags == other.tags
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Message({self.tags!r}, {self.prefix!r}, {self.command!r}, {self.params!r})"

    @property
    def nick(self) -> str | None:
        """The nick of ``nick!user@host`` prefixes (None for a server prefix or none)."""
        p = self.prefix
        if p is None:
            return None
        bang = p.find("!")
        return p[:bang] if bang > 0 else None

    @property
    def channel(self) -> str | None:
        """The first parameter when it names a channel (``#chan``), else None."""
        if self.params and self.params[0].startswith("#"):
            return self.params[0]
        return None

    @property
    def trailing(self) -> str:
        """The last parameter, or an empty string."""
        return self.params[-1] if self.params else ""


def unescape_tag(value: str) -> str:
    """Unescape an IRCv3 tag value (TWITCH.md's rules)."""
    if "\\" not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        j = value.find("\\", i)
        if j < 0:
            out.append(value[i:])
            break
        out.append(value[i:j])
        if j + 1 >= n:  # a lone trailing backslash is dropped
            break
        c = value[j + 1]
        out.append(_UNESCAPE.get(c, c))
        i = j + 2
    return "".join(out)


def escape_tag(value: str) -> str:
    """Escape a tag value for the wire."""
    return value.translate(_ESCAPE)


def _parse_tags(raw: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        key, _, value = item.partition("=")
        if not key:
            if not item:
                continue
            raise IrcError(f"a tag without a key: {item[:40]!r}")
        tags[key] = value
    if "\\" in raw:
        for key, value in tags.items():
            if "\\" in value:
                tags[key] = unescape_tag(value)
    return tags


def parse(line: bytes | str, *, strict: bool = False) -> Message:
    """Parse one line (a trailing CRLF or LF is allowed). Raises :class:`IrcError` for a broken line,
    and, with ``strict``, for one over the size rules."""
    if isinstance(line, bytes | bytearray | memoryview):
        try:
            text = bytes(line).decode()
        except UnicodeDecodeError as exc:
            raise IrcError(f"not UTF-8 at byte {exc.start}") from None
    elif isinstance(line, str):
        text = line
    else:
        raise IrcError(f"a line must be bytes or str, not {type(line).__name__}")
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    if "\r" in text or "\n" in text or "\0" in text:
        raise IrcError("a line break or NUL inside the line")
    tags: dict[str, str] = {}
    pos = 0
    if text.startswith("@"):
        space = text.find(" ")
        if space < 0:
            raise IrcError("tags without a command")
        raw_tags = text[1:space]
        if strict and len(raw_tags.encode()) > MAX_TAGS_BYTES:
            raise IrcError(f"the tags are over {MAX_TAGS_BYTES} bytes")
        tags = _parse_tags(raw_tags)
        pos = space + 1
        while pos < len(text) and text[pos] == " ":
            pos += 1
    if strict and len(text[pos:].encode()) + 2 > MAX_LINE_BYTES:
        raise IrcError(f"the line is over {MAX_LINE_BYTES} bytes (tags excluded)")
    prefix: str | None = None
    if text.startswith(":", pos):
        space = text.find(" ", pos)
        if space < 0:
            raise IrcError("a prefix without a command")
        prefix = text[pos + 1 : space]
        if not prefix:
            raise IrcError("an empty prefix")
        pos = space + 1
        while pos < len(text) and text[pos] == " ":
            pos += 1
    trailing: str | None = None
    colon = text.find(" :", pos)
    if colon >= 0:
        trailing = text[colon + 2 :]
        middle = text[pos:colon]
    else:
        middle = text[pos:]
    words = [w for w in middle.split(" ") if w]  # only spaces separate (str.split() takes NBSP, tabs...)
    if not words:
        raise IrcError("no command")
    command = words[0]
    if not (command.isalpha() and command.isascii()) and not (len(command) == 3 and command.isdigit()):
        raise IrcError(f"not a command: {command[:20]!r}")
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(tags, prefix, command, params)


def format(
    command: str | Message,
    params: list[str] | tuple[str, ...] = (),
    *,
    tags: dict[str, str] | None = None,
    prefix: str | None = None,
    trailing: bool = False,
) -> bytes:
    """One line with its CRLF. ``format(msg)`` formats a :class:`Message`. The last parameter goes
    after `` :`` when ``trailing`` says so or it is empty, has a space or starts with ``:``; others
    must not. Raises
    :class:`IrcError` for what cannot be sent (a line break in a parameter, a space in a middle one)."""
    if isinstance(command, Message):
        msg = command
        command, params, tags, prefix = msg.command, msg.params, msg.tags, msg.prefix
    parts: list[str] = []
    if tags:
        for k, v in tags.items():
            if not k or not k.isprintable() or any(c in k for c in "=; \\") or "\0" in v:
                raise IrcError(f"a tag cannot be sent as {k[:20]!r}={v[:20]!r}")  # NUL has no escape
        parts.append("@" + ";".join(f"{k}={escape_tag(v)}" for k, v in tags.items()) + " ")
    if prefix is not None:
        parts.append(f":{prefix} ")
    parts.append(command)
    last = len(params) - 1
    for i, p in enumerate(params):
        if "\r" in p or "\n" in p or "\0" in p:
            raise IrcError("a line break or NUL in a parameter")
        if i == last and (trailing or not p or " " in p or p.startswith(":")):
            parts.append(f" :{p}")
        elif not p or " " in p or p.startswith(":"):
            raise IrcError(f"middle parameter {i} cannot hold {p!r}")
        else:
            parts.append(" " + p)
    parts.append("\r\n")
    return "".join(parts).encode()


class LineBuffer:
    """Splits a byte stream into lines (CRLF or a bare LF), keeping a partial last line for the
    next :meth:`feed`. ``limit`` bounds one line: a longer one raises :class:`IrcError` (a server
    drops such a client), or with ``drop_long`` is skipped up to its line end and counted in
    :attr:`dropped` (a client keeps every other line of what the server sent)."""

    __slots__ = ("_skipping", "_tail", "drop_long", "dropped", "limit")

    def __init__(self, limit: int = MAX_TAGS_BYTES + 2 + MAX_LINE_BYTES, *, drop_long: bool = False) -> None:
        self._tail = b""
        self.limit = limit
        self.drop_long = drop_long
        #: Lines over the limit skipped (``drop_long``).
        self.dropped = 0
        self._skipping = False  # inside a line over the limit: everything up to its LF goes

    def feed(self, data: bytes) -> builtins.list[bytes]:
        """The complete lines in the tail plus ``data``, without their line ends (empty lines
        skipped)."""
        if not self._tail and not self._skipping and data.endswith(b"\r\n"):
            # The usual case (Twitch ends every line with CRLF, a frame ends with a line): split in C.
            parts = data[:-2].split(b"\r\n")
            if data.count(b"\n") == len(parts) and max(map(len, parts)) <= self.limit:
                return [p for p in parts if p] if b"" in parts else parts
        if self._skipping:
            end = data.find(b"\n")
            if end < 0:
                return []
            data = data[end + 1 :]
            self._skipping = False
        if self._tail:
            data = self._tail + data
        parts = data.split(b"\n")
        self._tail = parts.pop()
        if len(self._tail) > self.limit:
            self._tail = b""
            self._too_long()
            self._skipping = True
        lines = []
        for p in parts:
            if p.endswith(b"\r"):
                p = p[:-1]
            if p:
                if len(p) > self.limit:
                    self._too_long()
                    continue
                lines.append(p)
        return lines

    def _too_long(self) -> None:
        if not self.drop_long:
            raise IrcError(f"a line over {self.limit} bytes")
        self.dropped += 1

    @property
    def pending(self) -> int:
        """Bytes of the partial line kept."""
        return len(self._tail)


def split_lines(data: bytes | str) -> list[bytes]:
    """The lines of a whole CRLF-separated text (a WebSocket frame): a tail without CRLF counts."""
    raw = data.encode() if isinstance(data, str) else data
    buf = LineBuffer(limit=max(len(raw), 1))
    lines = buf.feed(raw)
    if buf.pending:
        lines.append(buf._tail.removesuffix(b"\r"))
    return lines


#: The commands :func:`peek_chat` recognises: chat lines, nearly every line a reader gets.
_CHAT: Final = (b"PRIVMSG", b"USERNOTICE")


def peek_chat(line: bytes) -> tuple[str, str, str | None] | None:
    """``(command, channel without '#', id tag or None)`` of a tagged chat line (PRIVMSG,
    USERNOTICE with tags and a prefix), found without parsing it; None for every other line, which
    :func:`parse` reads. What it finds is what :func:`parse` would (a property test checks it): a
    line parse would refuse (NUL, CR or LF inside, not UTF-8, a tag without a key, an empty prefix) or
    read otherwise (an escape or a second ``id`` in the tags, extra spaces) is left to it. The
    line itself goes on as it came, for whoever reads it to :func:`parse`."""
    if line[:1] != b"@" or b"\0" in line or b"\r" in line or b"\n" in line:
        return None
    if not line.isascii():
        try:
            line.decode()
        except UnicodeDecodeError:
            return None
    end_tags = line.find(b" ")
    if end_tags < 0 or line[end_tags + 1 : end_tags + 2] != b":":
        return None
    tags = line[1:end_tags]
    if tags[:1] == b"=" or b";=" in tags:
        return None
    end_prefix = line.find(b" ", end_tags + 2)
    end_command = line.find(b" ", end_prefix + 1)
    if end_prefix <= end_tags + 2 or end_command < 0 or line[end_command + 1 : end_command + 2] != b"#":
        return None
    command = line[end_prefix + 1 : end_command]
    if command not in _CHAT:
        return None
    end_channel = line.find(b" ", end_command + 1)
    channel = line[end_command + 2 : end_channel if end_channel >= 0 else len(line)]
    if tags.startswith(b"id="):
        at = 3
    else:
        found = tags.find(b";id=")
        at = found + 4 if found >= 0 else -1
    ident: str | None = None
    if at >= 0:
        stop = tags.find(b";", at)
        if stop < 0:
            stop = len(tags)
        rest = tags[stop:]
        if b";id=" in rest or b";id;" in rest or rest.endswith(b";id"):
            return None  # a second id: parse() keeps the last
        raw_id = tags[at:stop]
        if b"\\" in raw_id:
            return None  # Twitch's ids are UUIDs: an escape is parse()'s to read
        ident = raw_id.decode() or None
    return command.decode(), channel.decode(), ident
