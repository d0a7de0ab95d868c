"""The log format of the supervisor and its workers: text for people (the default), or one JSON
object per line (``--log-format json``) for log shippers.

A JSON line has ``ts`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``process``
(``supervisor`` or ``worker SLOT.GENERATION``), ``pid``, ``msg`` (the message, formatted), the
connection the record is about (``conn``, as ``discord:3/8``: the ``extra={"conn": key}`` the code
passed, else the first connection key among the message's arguments, which is how most lines name
it), and ``exc`` (the traceback) when there is one. Messages never carry secrets (the settings mask
them), so neither do the lines.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Final

import msgspec

from shardrunner.protocol.keys import ConnKey

FORMATS: Final = ("text", "json")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_encoder = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process,
            "pid": os.getpid(),
            "msg": record.getMessage(),
        }
        conn = getattr(record, "conn", None)
        if conn is None and isinstance(record.args, tuple):
            conn = next((a for a in record.args if isinstance(a, ConnKey)), None)
        if conn is not None:
            line["conn"] = str(conn)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


def configure(level: str, fmt: str, *, process: str, text: str = TEXT_FORMAT) -> None:
    """Log to stderr at ``level`` in ``fmt`` (``text``: the ``text`` format; ``json``: JSON lines)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else logging.Formatter(text))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
