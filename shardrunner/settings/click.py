"""click options built from sections: the one place the command line of a setting is spelled.

Used by the CLI only, so that importing the registry does not load click.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from shardrunner.settings.load import CONFIG_ENV
from shardrunner.settings.registry import Section, Setting, settings_of

_F = TypeVar("_F", bound=Callable[..., Any])


def _help(setting: Setting) -> str:
    return f"{setting.help} [default: {setting.describe_default()}; env {setting.env_var}]"


def options(
    sections: Sequence[Section], *, config_help: str, config_env: str = CONFIG_ENV
) -> Callable[[_F], _F]:
    """A decorator that adds ``--config FILE`` and one option per setting (``cli=True``) of
    ``sections`` to a click command.

    Every option defaults to None, so that :func:`shardrunner.settings.load.resolve` decides what
    applies; booleans become ``--x/--no-x`` flags. Values reach the command as keyword arguments
    named after the settings, unparsed (strings, or booleans for flags), and ``config`` (the file or
    None).
    """

    def decorate(f: _F) -> _F:
        # click lists options in the reverse order of application: apply the last first.
        for _section, setting in reversed(list(settings_of(sections).values())):
            if not setting.cli:
                continue
            if setting.is_flag:
                flag = setting.option[2:]
                decorator = click.option(
                    f"--{flag}/--no-{flag}", setting.name, default=None, help=_help(setting)
                )
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
            help=f"{config_help} [env {config_env}]",
        )(f)

    return decorate


def cli_options(f: _F) -> _F:
    """The options of ``shardrunner start`` (its sections: cluster, discord, bus)."""
    from shardrunner.settings.sections import START_SECTIONS

    return options(
        START_SECTIONS,
        config_help="TOML file of settings, in sections [cluster], [discord], [bus] (see "
        "configs/shardrunner.toml); the environment and the command line override it",
    )(f)
