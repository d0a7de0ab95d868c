"""The settings of ``shardrunner start``: a frozen :class:`Settings` over the cluster, bus and Discord
sections, with flat attributes (``settings.token``, ``settings.workers``) and where each came from."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

from shardrunner.protocol.compression import Compression
from shardrunner.rundir import RunDir
from shardrunner.settings.load import resolve
from shardrunner.settings.registry import MASK, Setting, SettingsError, settings_of
from shardrunner.settings.remote import check_remote
from shardrunner.settings.sections import START_SECTIONS

LogLevel = Literal["debug", "info", "warning", "error"]
Progress = Literal["auto", "always", "never"]

#: Every setting of ``shardrunner start``, in the order of ``--help`` and the example config.
SETTINGS: Final[tuple[Setting, ...]] = tuple(s for _, s in settings_of(START_SECTIONS).values())
_BY_NAME: Final[Mapping[str, Setting]] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """The settings of one ``shardrunner start``, one attribute per setting of its sections.

    Built by :func:`load_settings`; :meth:`replace` makes a changed copy (the CLI points a
    ``--sim`` run at its simulator that way). :meth:`source` tells where a value came from;
    :meth:`redacted` and ``repr`` show the values with secrets masked.

    The attributes below are the typed view (flat names, whatever section declares them); a
    check at import fails if one of them names no setting. A section added to
    :data:`START_SECTIONS` needs nothing here: its values are read with :meth:`value` at once, and
    get a typed attribute when code wants one.
    """

    # [cluster]
    workers: int
    sim: bool
    platforms: str
    run_dir: str
    resume_window: float
    ready_timeout: float
    worker_backoff: float
    hung_after: float
    log_level: LogLevel
    log_format: str
    progress: Progress
    metrics_port: int
    metrics_bind: str
    controller: str
    # [discord]
    token: str | None
    api_url: str
    shards: int | Literal["auto"]
    intents: int
    compression: Compression
    large_threshold: int
    max_concurrency: int | None
    identify_window: float
    identify_lead: float
    connect_concurrency: int
    auto_reshard: bool
    reshard_at: float
    reshard_target: float
    reshard_check: float
    reshard_reserve: int
    reshard_overlap: float
    reshard_timeout: float
    reshard_drain: float
    max_guilds_per_shard: int
    state_cache: bool
    state_cache_log: int
    # [twitch]
    twitch_accounts: str
    twitch_accounts_file: str | None
    twitch_channels: str
    twitch_channels_file: str | None
    twitch_anonymous: bool
    twitch_channels_per_conn: int
    twitch_max_rate: float
    twitch_backup_readers: bool
    twitch_backup_url: str | None
    twitch_spare_readers: int | None
    twitch_verified: str
    twitch_moderates: str
    twitch_senders: str
    twitch_send_queue: int
    twitch_bypass_duplicates: bool
    twitch_url: str
    twitch_join_limit: int
    twitch_login_limit: int
    twitch_message_limit: int
    twitch_mod_message_limit: int
    twitch_join_window: float
    twitch_message_window: float
    twitch_channel_interval: float
    twitch_channel_limit: int
    # [bus]
    groups: str
    queue_events: int
    queue_bytes: int
    bus_bind: str
    advertise: str
    control_bind: str
    curve_server_key: str | None
    curve_clients: str | None
    # [hosts]
    coordinator: str | None
    coordinator_password: str | None
    cluster_name: str
    host_name: str
    standby: bool
    lease_ttl: float
    lease_blocks: int
    # Plain dicts, not mapping proxies: Settings travel to spawned processes by pickle.
    #: Values of the settings that have no typed attribute (by name).
    _extra: Mapping[str, object] = field(default_factory=dict, hash=False)
    _sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def value(self, name: str) -> object:
        """The value of setting ``name``, typed attribute or not; KeyError for an unknown name."""
        if name in _TYPED:
            return getattr(self, name)
        if name not in _BY_NAME:
            raise KeyError(name)
        return self._extra[name]

    def source(self, name: str) -> str:
        """Where setting ``name`` came from: ``default``, ``config file PATH``,
        ``environment variable SHARDRUNNER_X``, ``command line --x`` or what :meth:`replace` was told;
        KeyError for an unknown name."""
        if name not in _BY_NAME:
            raise KeyError(name)
        return self._sources.get(name, "default")

    def replace(self, *, source: str = "the program", **changes: object) -> Settings:
        """A copy with ``changes`` (setting name -> value, parsed and checked like any other value);
        ``source`` is what :meth:`source` says for them. SettingsError names a bad one."""
        parsed: dict[str, Any] = {}
        for name, raw in changes.items():
            setting = _BY_NAME.get(name)
            if setting is None:
                raise SettingsError(f"unknown setting {name!r}")
            try:
                parsed[name] = setting.convert(raw)
            except ValueError as exc:
                raise SettingsError(
                    f"invalid setting {name}: {exc} (got {setting.show(raw)} from {source})", name
                ) from None
        sources = {**self._sources, **dict.fromkeys(changes, source)}
        typed = {k: v for k, v in parsed.items() if k in _TYPED}
        extra = {**self._extra, **{k: v for k, v in parsed.items() if k not in _TYPED}}
        return dataclasses.replace(self, **typed, _extra=extra, _sources=sources)

    def redacted(self) -> dict[str, object]:
        """Every setting by name, in registry order, for status output: secrets masked, enums as their
        string value, so that the result encodes to JSON as it is."""
        out: dict[str, object] = {}
        for setting in SETTINGS:
            value = self.value(setting.name)
            if setting.secret and value is not None:
                value = MASK
            elif isinstance(value, Compression):
                value = value.value
            out[setting.name] = value
        return out

    def __repr__(self) -> str:
        parts = []
        for setting in SETTINGS:
            value = self.value(setting.name)
            shown = MASK if setting.secret and value is not None else value
            parts.append(f"{setting.name}={shown!r}")
        return f"Settings({', '.join(parts)})"


def enabled_platforms(values: Mapping[str, Any] | Settings) -> tuple[str, ...]:
    """The platforms a start runs: ``--platforms``, or with ``auto`` Discord when a token is set or
    ``--sim``, and Twitch when accounts or channels are configured (in the settings, or added at run
    time and kept in the run dir's ``channels.json``)."""
    get = values.value if isinstance(values, Settings) else values.__getitem__
    chosen = str(get("platforms"))
    if chosen != "auto":
        return tuple(chosen.split(","))
    out = []
    if get("token") is not None or get("sim"):
        out.append("discord")
    twitch = (
        get("twitch_channels"),
        get("twitch_channels_file"),
        get("twitch_accounts"),
        get("twitch_accounts_file"),
    )
    if any(twitch) or _channels_added(str(get("run_dir"))):
        out.append("twitch")
    return tuple(out)


def _channels_added(run_dir: str) -> bool:
    try:
        data = json.loads(RunDir(run_dir).channels_file.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get("added"))


def _check_registry() -> None:
    # A typed attribute that names no setting would never be loaded: fail at import.
    stray = [name for name in _TYPED if name not in _BY_NAME]
    if stray:
        raise RuntimeError(
            f"Settings attributes {stray} name no setting of {[s.name for s in START_SECTIONS]}"
        )


_TYPED: Final = frozenset(f.name for f in fields(Settings) if not f.name.startswith("_"))
_check_registry()


def load_settings(cli: Mapping[str, object], env: Mapping[str, str], config_path: str | None) -> Settings:
    """Resolve every setting of ``shardrunner start``: command line > environment > config file >
    default (see :func:`shardrunner.settings.load.resolve`), and require a token unless ``sim``.

    Computed defaults look at the running machine (CPUs, ``XDG_RUNTIME_DIR`` of ``os.environ``).
    Raises :class:`SettingsError` with a one-sentence message; secret values are never in it.
    """
    resolved = resolve(START_SECTIONS, cli, env, config_path)
    values: dict[str, Any] = resolved.values
    platforms = enabled_platforms(values)
    if (not platforms or "discord" in platforms) and values["token"] is None and not values["sim"]:
        raise SettingsError(
            "setting token is required: pass --token, set SHARDRUNNER_TOKEN or put token in the config "
            "file (or use --sim; a Twitch bot gives --twitch-accounts or --twitch-channels instead)",
            "token",
        )
    check_remote(values)
    typed = {k: v for k, v in values.items() if k in _TYPED}
    extra = {k: v for k, v in values.items() if k not in _TYPED}
    return Settings(**typed, _extra=extra, _sources=resolved.sources)
