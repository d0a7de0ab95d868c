"""Settings of the Twitch chat simulator, validated once at start-up.

The command line, environment (``SHARDRUNNER_SIM_TWITCH_*``) and config file are the ``sim.twitch``
section of the registry (:mod:`shardrunner.settings.sim_twitch`); :func:`twitch_config` turns what it
resolved into a :class:`TwitchSimConfig`, parsing the settings whose format is the simulator's own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shardrunner.protocol.twitch import PING_INTERVAL_S, TwitchLimits, normalize_channel
from shardrunner.settings import SIM_TWITCH_SECTIONS, Resolved, resolve

#: Faults the simulator can inject (``POST /_sim/fault``; the first five also from ``--faults``).
FAULT_KINDS: Final = (
    "reconnect", "drop", "stall", "no_pong", "server_change", "login_failure", "slow_kill", "raid"
)  # fmt: skip
RANDOM_FAULTS: Final = ("reconnect", "drop", "stall", "no_pong", "server_change")
CONFIG_ENV: Final = "SHARDRUNNER_SIM_TWITCH_CONFIG"


class ConfigError(ValueError):
    """A setting is invalid; the message is one sentence naming it."""


@dataclass(slots=True)
class TwitchSimConfig:
    """Everything ``shardrunner sim twitch`` can be told; docs/simulator-twitch.md explains each."""

    host: str = "127.0.0.1"
    port: int = 8910
    irc_port: int = 8911
    #: IRC over TLS (a self-signed certificate made at start); None: off.
    irc_tls_port: int | None = None
    #: login -> token (without ``oauth:``); empty: any token for any login.
    accounts: dict[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = tuple(f"chan{i}" for i in range(20))
    suspended: frozenset[str] = frozenset()
    #: login -> the channels where it is moderator.
    moderator: dict[str, frozenset[str]] = field(default_factory=dict)
    verified: frozenset[str] = frozenset()
    rate: float = 10.0
    zipf: float = 1.1
    shared_chat: int = 0
    duplicate_rate: float = 0.0
    swap_rate: float = 0.0
    membership: bool = False
    ping_interval: float = PING_INTERVAL_S
    pong_timeout: float = 10.0
    reconnect_grace: float = 2.0
    slow_kill: int = 2000
    login_limit: int = 20
    verified_login_limit: int = 200
    join_limit: int = 20
    verified_join_limit: int = 2000
    message_limit: int = 20
    verified_message_limit: int = 7500
    mod_message_limit: int = 100
    channel_limit: int = 100
    #: Seconds of the JOIN and login windows, and of the PRIVMSG windows (Twitch's: 10 and 30).
    join_window: float = 10.0
    message_window: float = 30.0
    seed: int = 1
    fault_rate: float = 0.0
    faults: tuple[str, ...] = ("reconnect", "drop", "stall")

    def __post_init__(self) -> None:
        bad = [f for f in self.faults if f not in RANDOM_FAULTS]
        if bad:
            raise ConfigError(f"--faults: unknown kind {bad[0]!r} (one of {', '.join(RANDOM_FAULTS)})")
        if len(set(self.channels)) != len(self.channels):
            raise ConfigError("--channels: a channel is named twice")

    def limits(self, login: str) -> TwitchLimits:
        """The limits of one account, in the configured windows."""
        if login in self.verified:
            limits = TwitchLimits(
                login_count=self.verified_login_limit,
                join_count=self.verified_join_limit,
                privmsg_count=self.verified_message_limit,
                privmsg_mod_count=self.mod_message_limit,
                max_channels=self.channel_limit,
            )
        else:
            limits = TwitchLimits(
                login_count=self.login_limit,
                join_count=self.join_limit,
                privmsg_count=self.message_limit,
                privmsg_mod_count=self.mod_message_limit,
                max_channels=self.channel_limit,
            )
        return limits.with_windows(self.join_window, self.message_window)

    def is_moderator(self, login: str, channel: str) -> bool:
        """Moderator or broadcaster (the channel of the same name) of ``channel``."""
        return channel == login or channel in self.moderator.get(login, frozenset())


def _items(text: str, what: str) -> list[str]:
    """Comma-separated items, or the lines of a file when ``text`` names one."""
    text = text.strip()
    if text and os.path.isfile(text):
        try:
            with open(text, encoding="utf-8") as f:
                return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read {text}: {exc.strerror}") from None
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_accounts(text: str) -> dict[str, str]:
    """``login:token,...`` (or a file of such lines) -> login -> token without ``oauth:``."""
    accounts: dict[str, str] = {}
    for item in _items(text, "--accounts"):
        login, sep, token = item.partition(":")
        if not sep or not login or not token:
            raise ConfigError(f"--accounts: an item is not login:token (item {len(accounts) + 1})")
        accounts[login.lower()] = token.removeprefix("oauth:")
    return accounts


def parse_channels(text: str) -> tuple[str, ...]:
    """A number of channels (``chan0``...) or names."""
    if text.strip().isdigit():
        return tuple(f"chan{i}" for i in range(int(text)))
    return tuple(normalize_channel(n) for n in _items(text, "--channels"))


def parse_moderator(text: str) -> dict[str, frozenset[str]]:
    """``login:#chan,...`` -> login -> channels."""
    mods: dict[str, set[str]] = {}
    for item in _items(text, "--moderator"):
        login, sep, chan = item.partition(":")
        if not sep or not login or not chan.strip("#"):
            raise ConfigError(f"--moderator: {item!r} is not login:#channel")
        mods.setdefault(login.lower(), set()).add(normalize_channel(chan))
    return {k: frozenset(v) for k, v in mods.items()}


def twitch_config(resolved: Resolved) -> TwitchSimConfig:
    """The :class:`TwitchSimConfig` of what ``sim.twitch`` resolved (``log_level`` aside)."""
    values: dict[str, Any] = dict(resolved.values)
    values.pop("log_level", None)
    values["accounts"] = parse_accounts(str(values["accounts"]))
    values["channels"] = parse_channels(str(values["channels"]))
    values["suspended"] = frozenset(
        normalize_channel(n) for n in _items(str(values["suspended"]), "--suspended")
    )
    values["moderator"] = parse_moderator(str(values["moderator"]))
    values["verified"] = frozenset(n.lower() for n in _items(str(values["verified"]), "--verified"))
    values["faults"] = tuple(f.strip() for f in str(values["faults"]).split(",") if f.strip())
    return TwitchSimConfig(**values)


def load_twitch_config(
    cli: Mapping[str, object], env: Mapping[str, str], config_path: str | None
) -> tuple[TwitchSimConfig, Resolved]:
    """Resolve the settings (command line > environment > config file > default) and build the
    config; SettingsError or ConfigError, one sentence each."""
    resolved = resolve(SIM_TWITCH_SECTIONS, cli, env, config_path, config_env=CONFIG_ENV)
    return twitch_config(resolved), resolved
