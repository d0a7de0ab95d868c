"""The settings of ``shardrunner start``: one declarative registry for the command line, the environment
and a TOML file.

Every setting is declared once in :data:`SETTINGS`. From that entry come its command-line option
(``--run-dir``), its environment variable (``SHARDRUNNER_RUN_DIR``), its key in the config file
(``run-dir`` or ``run_dir``), its parser, its bounds, its default and its help line. A value is taken
from the first of these that gives one: command line, environment, config file, default.
:func:`load_settings` returns a frozen :class:`Settings` that remembers where each value came from, so
that an error or a status line can say so, and never shows a secret.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import click
import psutil

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import ALL_INTENTS, PRIVILEGED_INTENTS

#: Prefix of every setting's environment variable.
ENV_PREFIX: Final = "SHARDRUNNER_"
#: Environment variable that names the config file when ``--config`` is not given.
CONFIG_ENV: Final = "SHARDRUNNER_CONFIG"
#: What a secret value is shown as, everywhere.
MASK: Final = "***"

LogLevel = Literal["debug", "info", "warning", "error"]
Progress = Literal["auto", "always", "never"]

_F = TypeVar("_F", bound=Callable[..., Any])

_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off")
_NAME: Final = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


class SettingsError(ValueError):
    """A setting that cannot be used; the message is one sentence that names it and where it came from."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        #: The setting at fault, or None when the error is about the config file as a whole.
        self.setting = setting


# Parsers. Each takes a string (command line, environment, TOML) or an already typed value (TOML
# numbers and booleans, click flags, programmatic callers) and raises ValueError with the end of the
# sentence "invalid setting NAME: ..." when it cannot use it.


def _int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError("must be a whole number")
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return int(text, 0)  # 0x... for bitmasks
        except ValueError:
            raise ValueError("must be a whole number") from None
    raise ValueError("must be a whole number")


def _float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("must be a number") from None
    else:
        raise ValueError("must be a number")
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"must be one of {', '.join(_TRUE + _FALSE)}")


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _names(value: object) -> str:
    """A comma-separated list of names (a TOML list of strings too); empty is allowed."""
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError("must be comma-separated names")
    names = [n.strip() for n in value.split(",") if n.strip()]
    if any(not n.replace("-", "").replace("_", "").replace(".", "").isalnum() for n in names):
        raise ValueError("must be names of letters, digits, '-', '_' or '.', separated by commas")
    return ",".join(names)


def _shards(value: object) -> int | Literal["auto"]:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return _int(value)
    except ValueError:
        raise ValueError("must be auto or a whole number") from None


def _optional_int(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        return _int(value)
    except ValueError:
        raise ValueError("must be auto or a whole number") from None


def _url(value: object) -> str:
    text = _str(value)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ValueError("must be an http:// or https:// URL")
    return text.rstrip("/")


def _path(value: object) -> str:
    # Absolute, so that `shardrunner status` run from another directory finds the same socket.
    return os.path.abspath(os.path.expanduser(_str(value)))


def _compression(value: object) -> Compression:
    if isinstance(value, Compression):
        return value
    try:
        return Compression(_str(value).lower())
    except ValueError:
        raise ValueError(f"must be one of {', '.join(c.value for c in Compression)}") from None


def _workers_default() -> int:
    return psutil.cpu_count(logical=True) or 1


def _run_dir_default() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "shardrunner")
    return f"/tmp/shardrunner-{os.getuid()}"


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its name, parser, default, help line and bounds.

    The environment variable is ``SHARDRUNNER_<NAME>``, the command-line option ``--<name-with-dashes>``
    and the config file key the name with dashes or underscores. ``default`` is the final value or a
    zero-argument callable that computes it at load time; a computed default needs ``default_text``
    for ``--help``. ``choices`` are checked (case-insensitively) before ``type`` runs; ``minimum`` and
    ``maximum`` after it, on numeric results only (``exclusive_minimum`` makes the minimum a strict
    bound). A ``secret`` value is shown as ``***`` in every repr, dump and error. ``cli=False`` keeps
    the setting off the command line (environment and config file only).
    """

    name: str
    type: Callable[[object], object]
    default: object
    help: str
    secret: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    metavar: str | None = None
    cli: bool = True
    exclusive_minimum: bool = False
    default_text: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"setting name {self.name!r} is not snake_case")
        if callable(self.default) and self.default_text is None:
            raise ValueError(f"setting {self.name} has a computed default but no default_text")

    @property
    def env_var(self) -> str:
        """The environment variable, ``SHARDRUNNER_<NAME>``."""
        return ENV_PREFIX + self.name.upper()

    @property
    def option(self) -> str:
        """The command-line option, ``--name-with-dashes``."""
        return "--" + self.name.replace("_", "-")

    @property
    def is_flag(self) -> bool:
        """A boolean setting: ``--x/--no-x`` on the command line."""
        return self.type is _bool

    def default_value(self) -> object:
        """The default, computed now if it is a callable."""
        return self.default() if callable(self.default) else self.default

    def describe_default(self) -> str:
        """The default as ``--help`` and the example config show it."""
        if self.default_text is not None:
            return self.default_text
        return _display(self.default)

    def convert(self, raw: object) -> object:
        """Parse and check one raw value; ValueError says what is wrong (without repeating the value)."""
        value = raw
        if self.choices is not None:
            value = raw.strip().lower() if isinstance(raw, str) else ""
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}")
        result = self.type(value)
        if isinstance(result, int | float) and not isinstance(result, bool):
            if self.minimum is not None:
                if self.exclusive_minimum and not result > self.minimum:
                    raise ValueError(f"must be greater than {_number(self.minimum)}")
                if not self.exclusive_minimum and result < self.minimum:
                    raise ValueError(f"must be at least {_number(self.minimum)}")
            if self.maximum is not None and result > self.maximum:
                raise ValueError(f"must be at most {_number(self.maximum)}")
        return result

    def show(self, value: object) -> str:
        """``value`` as an error message or status line may print it: masked if the setting is secret."""
        if self.secret and value is not None:
            return MASK
        return _display(value)


def _display(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Compression):
        return value.value
    if isinstance(value, str):
        plain = value and value.isprintable() and not any(c.isspace() for c in value)
        return value if plain else repr(value)
    return repr(value)


_DEFAULT_INTENTS: Final = ALL_INTENTS & ~PRIVILEGED_INTENTS
_LOG_LEVELS: Final = ("debug", "info", "warning", "error")
_PROGRESS: Final = ("auto", "always", "never")
_SECONDS: Final = "SECONDS"

#: Every setting of ``shardrunner start``, in the order of ``--help`` and the example config.
SETTINGS: Final[tuple[Setting, ...]] = (
    Setting(
        "workers",
        _int,
        _workers_default,
        "worker processes",
        minimum=1,
        metavar="N",
        default_text="one per CPU core",
    ),
    Setting(
        "shards",
        _shards,
        "auto",
        "shard count, or auto for Discord's recommendation from /gateway/bot",
        minimum=1,
        metavar="N|auto",
    ),
    Setting(
        "token",
        _str,
        None,
        "the bot token (never printed)",
        secret=True,
        metavar="TOKEN",
        default_text="none, required unless --sim",
    ),
    Setting(
        "api_url",
        _url,
        "https://discord.com/api/v10",
        "REST base URL (for proxies and tests)",
        metavar="URL",
    ),
    Setting(
        "sim",
        _bool,
        False,
        "start the built-in Discord simulator as a child process and run against it",
    ),
    Setting(
        "run_dir",
        _path,
        _run_dir_default,
        "directory of the control socket, state file and logs",
        metavar="DIR",
        default_text="$XDG_RUNTIME_DIR/shardrunner, else /tmp/shardrunner-UID",
    ),
    Setting(
        "intents",
        _int,
        _DEFAULT_INTENTS,
        "gateway intents bitmask",
        minimum=0,
        metavar="BITS",
        default_text=f"{_DEFAULT_INTENTS}, every non-privileged intent",
    ),
    Setting(
        "compression",
        _compression,
        Compression.ZLIB_STREAM,
        "gateway transport compression",
        choices=tuple(c.value for c in (Compression.ZLIB_STREAM, Compression.ZSTD_STREAM, Compression.NONE)),
    ),
    Setting(
        "large_threshold",
        _int,
        250,
        "members above which a guild is large (its offline members are not sent)",
        minimum=50,
        maximum=250,
        metavar="N",
    ),
    Setting(
        "max_concurrency",
        _optional_int,
        None,
        "identify buckets",
        minimum=1,
        metavar="N|auto",
        default_text="session_start_limit.max_concurrency from /gateway/bot",
    ),
    Setting(
        "identify_window",
        _float,
        5.0,
        "seconds between identifies of one bucket (Discord: 5; lower only against the simulator)",
        minimum=0,
        metavar=_SECONDS,
    ),
    Setting(
        "resume_window",
        _float,
        120.0,
        "a start within this many seconds of a stop resumes the saved sessions",
        minimum=0,
        exclusive_minimum=True,
        metavar=_SECONDS,
    ),
    Setting(
        "ready_timeout",
        _float,
        60.0,
        "how long a reload waits for a replacement worker's shards to resume",
        minimum=0,
        exclusive_minimum=True,
        metavar=_SECONDS,
    ),
    Setting(
        "worker_backoff",
        _float,
        1.0,
        "first delay before restarting a crashed worker (doubles, max 60 s)",
        minimum=0,
        exclusive_minimum=True,
        metavar=_SECONDS,
    ),
    Setting(
        "hung_after",
        _float,
        10.0,
        "a worker that answers no ping for this long is killed and replaced",
        minimum=0,
        exclusive_minimum=True,
        metavar=_SECONDS,
    ),
    Setting(
        "groups",
        _names,
        "",
        "consumer groups (comma-separated) to keep every event for from the start, before any of their "
        "bots has joined",
        metavar="NAMES",
    ),
    Setting(
        "queue_events",
        _int,
        100_000,
        "events a consumer group's queue holds (per worker) while its bots are away or slow; past it the "
        "oldest are dropped and the group is told",
        minimum=1,
        metavar="N",
    ),
    Setting(
        "queue_bytes",
        _int,
        256 * 1024 * 1024,
        "bytes a consumer group's queue holds (per worker), the same way",
        minimum=1024,
        metavar="BYTES",
    ),
    Setting("log_level", str, "info", "log level", choices=_LOG_LEVELS),
    Setting(
        "progress",
        str,
        "auto",
        "start-up progress display (auto: when stderr is a terminal)",
        choices=_PROGRESS,
    ),
)

_BY_NAME: Final[Mapping[str, Setting]] = {s.name: s for s in SETTINGS}


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """The settings of one ``shardrunner start``, one attribute per entry of :data:`SETTINGS`.

    Built by :func:`load_settings`. :meth:`source` tells where a value came from; :meth:`redacted` and
    ``repr`` show the values with secrets masked.
    """

    workers: int
    shards: int | Literal["auto"]
    token: str | None
    api_url: str
    sim: bool
    run_dir: str
    intents: int
    compression: Compression
    large_threshold: int
    max_concurrency: int | None
    identify_window: float
    resume_window: float
    ready_timeout: float
    worker_backoff: float
    hung_after: float
    groups: str
    queue_events: int
    queue_bytes: int
    log_level: LogLevel
    progress: Progress
    # A plain dict, not a mapping proxy: Settings travel to spawned workers by pickle.
    _sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def source(self, name: str) -> str:
        """Where setting ``name`` came from: ``default``, ``config file PATH``,
        ``environment variable SHARDRUNNER_X`` or ``command line --x``; KeyError for an unknown name."""
        if name not in _BY_NAME:
            raise KeyError(name)
        return self._sources.get(name, "default")

    def redacted(self) -> dict[str, object]:
        """Every setting by name, in registry order, for status output: secrets masked, enums as their
        string value, so that the result encodes to JSON as it is."""
        out: dict[str, object] = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if setting.secret and value is not None:
                value = MASK
            elif isinstance(value, Compression):
                value = value.value
            out[setting.name] = value
        return out

    def __repr__(self) -> str:
        parts = []
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            shown = MASK if setting.secret and value is not None else value
            parts.append(f"{setting.name}={shown!r}")
        return f"Settings({', '.join(parts)})"


def _check_registry() -> None:
    # The registry and the typed dataclass are written out twice; fail at import if they drift apart.
    attributes = [f.name for f in fields(Settings) if not f.name.startswith("_")]
    names = [s.name for s in SETTINGS]
    if attributes != names:
        raise RuntimeError(f"Settings attributes {attributes} do not match SETTINGS {names}")


_check_registry()


def _read_config(path: str, named_by: str) -> dict[str, tuple[str, object]]:
    """The config file's values by setting name, each with the key as written."""
    where = f"config file {path}{named_by}"
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"cannot read {where}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{where} is not valid TOML: it is not UTF-8 text") from None
    values: dict[str, tuple[str, object]] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in _BY_NAME:
            hint = difflib.get_close_matches(name, _BY_NAME, n=1)
            suggestion = f" (did you mean {hint[0].replace('_', '-')!r}?)" if hint else ""
            raise SettingsError(f"unknown setting {key!r} in config file {path}{suggestion}")
        if name in values:
            raise SettingsError(
                f"setting {name} is given twice in config file {path} (as {values[name][0]!r} and {key!r})",
                name,
            )
        values[name] = (key, value)
    return values


def load_settings(cli: Mapping[str, object], env: Mapping[str, str], config_path: str | None) -> Settings:
    """Resolve every setting: command line > environment > config file > default.

    ``cli`` maps setting names to the values of a command decorated with :func:`cli_options`: None
    means the option was not passed, and keys that name no setting are ignored, so a command can pass
    all its keyword arguments. ``env`` is the environment (``os.environ``); an empty variable counts
    as unset. ``config_path`` is ``--config``; without it ``SHARDRUNNER_CONFIG`` may name the file.
    Computed defaults look at the running machine (CPU count, ``XDG_RUNTIME_DIR`` of ``os.environ``).
    Raises :class:`SettingsError` with a one-sentence message; secret values are never in it.
    """
    named_by = ""
    if config_path is None and env.get(CONFIG_ENV):
        config_path = env[CONFIG_ENV]
        named_by = f" (named by environment variable {CONFIG_ENV})"
    from_file = _read_config(config_path, named_by) if config_path is not None else {}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.cli and cli.get(setting.name) is not None:
            raw, source = cli[setting.name], f"command line {setting.option}"
        elif env.get(setting.env_var):
            raw, source = env[setting.env_var], f"environment variable {setting.env_var}"
        elif setting.name in from_file:
            raw, source = from_file[setting.name][1], f"config file {config_path}"
        else:
            values[setting.name] = setting.default_value()
            continue
        try:
            value = setting.convert(raw)
        except ValueError as exc:
            raise SettingsError(
                f"invalid setting {setting.name}: {exc} (got {setting.show(raw)} from {source})", setting.name
            ) from None
        if setting.is_flag and value is False and source.startswith("command line"):
            source = f"command line --no-{setting.option[2:]}"
        values[setting.name] = value
        sources[setting.name] = source

    if values["token"] is None and not values["sim"]:
        raise SettingsError(
            "setting token is required: pass --token, set SHARDRUNNER_TOKEN or put token in the config "
            "file (or use --sim)",
            "token",
        )
    return Settings(**values, _sources=sources)


def _help(setting: Setting) -> str:
    return f"{setting.help} [default: {setting.describe_default()}; env {setting.env_var}]"


def cli_options(f: _F) -> _F:
    """Add ``--config FILE`` and one option per setting with ``cli=True`` to a click command.

    Every option defaults to None, so that :func:`load_settings` decides what applies; booleans become
    ``--x/--no-x`` flags. Values reach the command as keyword arguments named after the settings,
    unparsed (strings, or booleans for flags): the command calls
    ``load_settings(kwargs, os.environ, kwargs.pop("config"))``.
    """
    # click lists options in the reverse order of application: apply the last first.
    for setting in reversed(SETTINGS):
        if not setting.cli:
            continue
        if setting.is_flag:
            flag = setting.option[2:]
            decorator = click.option(f"--{flag}/--no-{flag}", setting.name, default=None, help=_help(setting))
        else:
            metavar = setting.metavar
            if metavar is None:
                metavar = f"[{'|'.join(setting.choices)}]" if setting.choices else "VALUE"
            decorator = click.option(
                setting.option, setting.name, type=str, default=None, metavar=metavar, help=_help(setting)
            )
        f = decorator(f)
    return click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        metavar="FILE",
        help="TOML file of settings, keys as the option names (see configs/shardrunner.toml); the "
        f"environment and the command line override it [env {CONFIG_ENV}]",
    )(f)


def resolve_run_dir(option: str | Path | None = None) -> Path:
    """The run directory a command outside ``start`` uses: the option, else SHARDRUNNER_RUN_DIR, else
    the default ``start`` uses."""
    if option:
        return Path(option)
    env = os.environ.get(f"{ENV_PREFIX}RUN_DIR")
    if env:
        return Path(env)
    return Path(str(_BY_NAME["run_dir"].default_value()))
