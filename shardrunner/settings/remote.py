"""The bus section's settings for bots on other machines: TCP binds of the workers' buses and the
supervisor's control socket, and their CURVE keys (:mod:`shardrunner.curve`).

A separate module so that :mod:`.sections` stays within the module size limit; they belong to the
``bus`` section. The key settings hold *paths*: a path may show in ``--help``, errors and status,
the key material is read by the workers and the supervisor only and is never printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shardrunner.curve import NEED_CURVE, check_bind
from shardrunner.settings.registry import Setting, SettingsError, to_optional_text, to_text


def to_tcp_bind(value: object) -> str:
    """``tcp://ADDRESS`` (or ``tcp://ADDRESS:PORT``), or nothing."""
    return check_bind(to_text(value))


def to_optional_path(value: object) -> str | None:
    """A path, or nothing (relative paths are made absolute, so workers started elsewhere agree)."""
    import os

    text = to_optional_text(value)
    return os.path.abspath(os.path.expanduser(text)) if text else None


REMOTE: Final[tuple[Setting, ...]] = (
    Setting(
        "bus_bind",
        to_tcp_bind,
        "",
        "also bind every worker's bus on this TCP address, on a port the OS picks, for bots on "
        "other machines (e.g. tcp://0.0.0.0; empty: this machine's ipc sockets only); needs CURVE keys",
        metavar="tcp://ADDR",
    ),
    Setting(
        "advertise",
        to_text,
        "",
        "the address bots on other machines reach this host by, in the endpoints it lists",
        metavar="ADDR",
        default_text="the bind address; this machine's hostname for 0.0.0.0",
    ),
    Setting(
        "control_bind",
        to_tcp_bind,
        "",
        "also bind the supervisor's control socket on TCP (e.g. tcp://0.0.0.0:7300): bots and "
        "operators elsewhere ask endpoints and status there; needs CURVE keys",
        metavar="tcp://ADDR:PORT",
    ),
    Setting(
        "curve_server_key",
        to_optional_path,
        None,
        "the cluster's secret CURVE certificate (server.key_secret of `shardrunner keys server`)",
        metavar="PATH",
    ),
    Setting(
        "curve_clients",
        to_optional_path,
        None,
        "directory of the authorised bots' public CURVE certificates (NAME.key of `shardrunner keys bot`)",
        metavar="DIR",
    ),
)


def check_remote(values: Mapping[str, Any]) -> None:
    """Refuse a TCP bind without both CURVE settings (one sentence)."""
    if (values.get("bus_bind") or values.get("control_bind")) and not (
        values.get("curve_server_key") and values.get("curve_clients")
    ):
        missing = "curve_server_key" if not values.get("curve_server_key") else "curve_clients"
        raise SettingsError(NEED_CURVE, missing)
