"""The settings registry: what a setting is, how its raw values are parsed, and how it is shown.

A :class:`Setting` is declared once, in a :class:`Section`. From that entry come its command-line
option (``--run-dir``), its environment variable (the section's prefix and the name, e.g.
``SHARDRUNNER_RUN_DIR``), its key in a config file (``run-dir`` or ``run_dir``, in the section's
table or, for the sections of ``shardrunner start``, at the top level), its parser, its bounds, its
default and its help line. Nothing here imports click: :mod:`shardrunner.settings.click` builds the
options of a command from sections.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Final, Literal

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import token_bot_id

#: Prefix of every setting's environment variable.
ENV_PREFIX: Final = "SHARDRUNNER_"
#: What a secret value is shown as, everywhere.
MASK: Final = "***"

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
# sentence "invalid setting NAME: ..." when it cannot use it. They never repeat the value: the
# caller adds it, masked when the setting is secret.


def to_int(value: object) -> int:
    """A whole number; strings may be ``0x..`` for bitmasks."""
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


def to_float(value: object) -> float:
    """A finite number."""
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


def to_bool(value: object) -> bool:
    """true/false, and the words people write for them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"must be one of {', '.join(_TRUE + _FALSE)}")


def to_str(value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def to_text(value: object) -> str:
    """Any text, empty allowed; TOML numbers become their text and TOML lists comma-separated text,
    for settings that a later step parses (the simulator's ``--rate``, ``--mix``...)."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a string")
    return str(value).strip()


def to_optional_text(value: object) -> str | None:
    """Like :func:`to_text`, with empty meaning unset."""
    return to_text(value) or None


def to_names(value: object) -> str:
    """A comma-separated list of names (a TOML list of strings too); empty is allowed."""
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError("must be comma-separated names")
    names = [n.strip() for n in value.split(",") if n.strip()]
    if any(not n.replace("-", "").replace("_", "").replace(".", "").isalnum() for n in names):
        raise ValueError("must be names of letters, digits, '-', '_' or '.', separated by commas")
    return ",".join(names)


def to_shards(value: object) -> int | Literal["auto"]:
    """``auto`` or a whole number."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return to_int(value)
    except ValueError:
        raise ValueError("must be auto or a whole number") from None


def to_auto_int(value: object) -> int | None:
    """``auto`` (None) or a whole number."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        return to_int(value)
    except ValueError:
        raise ValueError("must be auto or a whole number") from None


def to_optional_int(value: object) -> int | None:
    """A whole number, or nothing (empty)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return to_int(value)


def to_url(value: object) -> str:
    """An http(s) URL, without its trailing slash."""
    text = to_str(value)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ValueError("must be an http:// or https:// URL")
    return text.rstrip("/")


def to_optional_url(value: object) -> str | None:
    """A URL of any scheme (ws://, wss://, http://...), or nothing."""
    text = to_text(value)
    if not text:
        return None
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme.isalpha() or not rest.strip("/"):
        raise ValueError("must be a URL such as ws://host:port")
    return text


def to_path(value: object) -> str:
    """An absolute path (so that ``shardrunner status`` run from elsewhere finds the same run dir)."""
    return os.path.abspath(os.path.expanduser(to_str(value)))


def to_compression(value: object) -> Compression:
    """One of the gateway transport compressions."""
    if isinstance(value, Compression):
        return value
    try:
        return Compression(to_str(value).lower())
    except ValueError:
        raise ValueError(f"must be one of {', '.join(c.value for c in Compression)}") from None


def to_bot_token(value: object) -> str:
    """A Discord bot token: checked for its shape here so that a pasted secret that is no token is
    refused at once, instead of by Discord after a connect."""
    text = to_str(value)
    if token_bot_id(text) is None:
        raise ValueError(
            "must be a Discord bot token (three dot-separated base64url parts, the first the bot's id, "
            "without 'Bot ')"
        )
    return text


def _number(value: float) -> str:
    return f"{value:g}"


def display(value: object) -> str:
    """A value as an error message or ``--help`` shows it."""
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


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its name, parser, default, help line and bounds.

    ``default`` is the final value or a zero-argument callable that computes it at load time; a
    computed default needs ``default_text`` for ``--help``. ``choices`` are checked
    (case-insensitively) before ``type`` runs; ``minimum`` and ``maximum`` after it, on numeric
    results only (``exclusive_minimum`` makes the minimum a strict bound). A ``secret`` value is shown
    as ``***`` in every repr, dump and error. ``cli=False`` keeps the setting off the command line
    (environment and config file only). Its section fills in ``env_prefix``.
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
    env_prefix: str = ENV_PREFIX

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"setting name {self.name!r} is not snake_case")
        if callable(self.default) and self.default_text is None:
            raise ValueError(f"setting {self.name} has a computed default but no default_text")

    @property
    def env_var(self) -> str:
        """The environment variable, ``<PREFIX><NAME>``."""
        return self.env_prefix + self.name.upper()

    @property
    def option(self) -> str:
        """The command-line option, ``--name-with-dashes``."""
        return "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """The config file key as the examples write it, ``name-with-dashes``."""
        return self.name.replace("_", "-")

    @property
    def is_flag(self) -> bool:
        """A boolean setting: ``--x/--no-x`` on the command line."""
        return self.type is to_bool

    def default_value(self) -> object:
        """The default, computed now if it is a callable."""
        return self.default() if callable(self.default) else self.default

    def describe_default(self) -> str:
        """The default as ``--help`` and the example config show it."""
        if self.default_text is not None:
            return self.default_text
        return display(self.default)

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
        return display(value)


@dataclass(frozen=True, slots=True)
class Section:
    """A named group of settings: ``cluster``, ``bus``, ``discord``, ``sim.discord``.

    Declaring a section is one ``Section(...)``: its settings get the section's environment prefix
    (``SHARDRUNNER_`` unless ``env_prefix`` says otherwise) and its table in a config file
    (``[discord]``, ``[sim.discord]``). A command loads a tuple of sections; their setting names must
    be unique within that tuple.
    """

    name: str
    settings: tuple[Setting, ...]
    help: str = ""
    env_prefix: str = ENV_PREFIX

    def __post_init__(self) -> None:
        # The prefix is the section's, so that settings are written without repeating it.
        fixed = tuple(
            s if s.env_prefix == self.env_prefix else _with_prefix(s, self.env_prefix) for s in self.settings
        )
        object.__setattr__(self, "settings", fixed)
        names = [s.name for s in fixed]
        if len(set(names)) != len(names):
            raise ValueError(f"section {self.name} declares a setting twice")

    @property
    def table(self) -> tuple[str, ...]:
        """The TOML table path of the section: ``("sim", "discord")`` for ``sim.discord``."""
        return tuple(self.name.split("."))

    def get(self, name: str) -> Setting:
        """The setting called ``name``; KeyError if the section has none."""
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise KeyError(name)


def _with_prefix(setting: Setting, prefix: str) -> Setting:
    return replace(setting, env_prefix=prefix)


def settings_of(sections: Iterable[Section]) -> dict[str, tuple[Section, Setting]]:
    """Every setting of ``sections`` by name, in declaration order; ValueError on a name clash."""
    out: dict[str, tuple[Section, Setting]] = {}
    for section in sections:
        for setting in section.settings:
            if setting.name in out:
                raise ValueError(
                    f"setting {setting.name} is in sections {out[setting.name][0].name} and {section.name}"
                )
            out[setting.name] = (section, setting)
    return out


def suggestion(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or nothing; names shown with dashes."""
    hint = difflib.get_close_matches(name.replace("-", "_"), [k.replace("-", "_") for k in known], n=1)
    return f" (did you mean {hint[0].replace('_', '-')!r}?)" if hint else ""
