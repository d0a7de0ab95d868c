"""Resolving the settings of a command: command line > environment > config file > default.

:func:`resolve` does it for any tuple of sections and returns the values with where each came from;
:func:`shardrunner.settings.values.load_settings` and the simulator's config build on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from shardrunner.settings.registry import Section, SettingsError, settings_of
from shardrunner.settings.sections import START_SECTIONS
from shardrunner.settings.sim import SIM_DISCORD_SECTIONS
from shardrunner.settings.sim_twitch import SIM_TWITCH_SECTIONS
from shardrunner.settings.toml import read_config

#: Environment variable that names the config file when ``--config`` is not given.
CONFIG_ENV: Final = "SHARDRUNNER_CONFIG"
#: Every section there is, for the config file loader (it skips the tables of other commands).
ALL_SECTIONS: Final[tuple[Section, ...]] = (*START_SECTIONS, *SIM_DISCORD_SECTIONS, *SIM_TWITCH_SECTIONS)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The value of every setting of some sections, and where each came from (``default`` if absent
    from ``sources``)."""

    values: dict[str, object]
    sources: dict[str, str] = field(default_factory=dict)


def resolve(
    sections: Sequence[Section],
    cli: Mapping[str, object],
    env: Mapping[str, str],
    config_path: str | None,
    *,
    config_env: str | None = CONFIG_ENV,
) -> Resolved:
    """Resolve every setting of ``sections``.

    ``cli`` maps setting names to the values of a command decorated with
    :func:`shardrunner.settings.click.options`: None means the option was not passed, and keys that
    name no setting are ignored, so a command can pass all its keyword arguments. ``env`` is the
    environment (``os.environ``); an empty variable counts as unset. ``config_path`` is ``--config``;
    without it the variable ``config_env`` may name the file. Raises :class:`SettingsError` with a
    one-sentence message; secret values are never in it.
    """
    named_by = ""
    if config_path is None and config_env is not None and env.get(config_env):
        config_path = env[config_env]
        named_by = f" (named by environment variable {config_env})"
    from_file = read_config(config_path, sections, ALL_SECTIONS, named_by) if config_path is not None else {}

    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for _section, setting in settings_of(sections).values():
        if setting.cli and cli.get(setting.name) is not None:
            raw, source = cli[setting.name], f"command line {setting.option}"
        elif env.get(setting.env_var):
            raw, source = env[setting.env_var], f"environment variable {setting.env_var}"
        elif setting.name in from_file:
            raw, source = from_file[setting.name].value, f"config file {config_path}"
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
    return Resolved(values, sources)
