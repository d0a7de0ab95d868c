"""The one TOML loader of every command's config file.

A setting is written in its section's table (``[cluster] workers = 4``, ``[sim.discord] port = 0``)
or, as config files before sections did, at the top level (``workers = 4``). Tables of sections the
command does not use are skipped, so that one file may serve ``shardrunner start`` and
``shardrunner sim discord``. Every mistake is one sentence naming the file: unknown keys and
sections with the closest known name, a setting in the wrong table with the right one, a setting
given twice.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shardrunner.settings.registry import Section, SettingsError, settings_of, suggestion


@dataclass(frozen=True, slots=True)
class FileValue:
    """One value of a config file: the key as written (``discord.token``) and the raw value."""

    key: str
    value: object


def read_toml(path: str, named_by: str = "") -> dict[str, Any]:
    """The parsed file; SettingsError (one sentence) when it cannot be read or parsed."""
    where = f"config file {path}{named_by}"
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise SettingsError(f"cannot read {where}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{where} is not valid TOML: it is not UTF-8 text") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise SettingsError(f"{where} is not valid TOML here: its values nest too deeply") from None


def read_config(
    path: str, sections: Sequence[Section], known: Sequence[Section], named_by: str = ""
) -> dict[str, FileValue]:
    """The values the file at ``path`` gives to the settings of ``sections``, by setting name.

    ``known`` is every section there is (tables of known sections that are not in ``sections`` are
    skipped); ``named_by`` says how the file was named, for the error when it cannot be read.
    """
    data = read_toml(path, named_by)
    by_name = settings_of(sections)
    used = {s.name: s for s in sections}
    roots = {s.table[0] for s in known}
    values: dict[str, FileValue] = {}

    def put(name: str, key: str, value: object) -> None:
        if name in values:
            raise SettingsError(
                f"setting {name} is given twice in config file {path} (as {values[name].key!r} and {key!r})",
                name,
            )
        values[name] = FileValue(key, value)

    for key, value in data.items():
        if isinstance(value, dict) and key in roots:
            continue  # a section's table, below
        name = key.replace("-", "_")
        if name not in by_name:
            if isinstance(value, dict):
                raise SettingsError(
                    f"unknown section [{key}] in config file {path}{suggestion(key, sorted(roots))}"
                )
            raise SettingsError(f"unknown setting {key!r} in config file {path}{suggestion(name, by_name)}")
        put(name, key, value)

    full = {s.name for s in known}
    for section in known:
        table = _table(data, section.table)
        if table is None:
            continue
        if section.name not in used:
            continue  # another command's settings
        _check_tables_in(data, section, full, path)
        for key, value in table.items():
            name = key.replace("-", "_")
            written = f"{section.name}.{key}"
            if name not in {s.name for s in section.settings}:
                home = by_name.get(name)
                if home is not None:
                    raise SettingsError(
                        f"setting {name} belongs in section [{home[0].name}] of config file {path}, "
                        f"not in [{section.name}]",
                        name,
                    )
                names = [s.name for s in section.settings]
                raise SettingsError(
                    f"unknown setting {key!r} in section [{section.name}] of config file {path}"
                    f"{suggestion(name, names)}"
                )
            put(name, written, value)

    _check_unknown_tables(data, known, path)
    return values


def _table(data: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return None
        node = node[part]
    # A table that holds sub-sections (``[sim]`` holding ``[sim.discord]``) is not itself settings.
    return {k: v for k, v in node.items() if not isinstance(v, dict)}


def _check_tables_in(data: Mapping[str, Any], section: Section, full: set[str], path: str) -> None:
    # A table inside a section's table is a sub-section ([sim] holds [sim.discord]) or a mistake:
    # a setting written as a table (``workers = {}``), or a table no section has.
    node: Any = data
    for part in section.table:
        node = node[part]
    for key, value in node.items():
        if not isinstance(value, dict) or f"{section.name}.{key}" in full:
            continue
        name = key.replace("-", "_")
        if name in {s.name for s in section.settings}:
            raise SettingsError(
                f"invalid setting {name}: must be a value, not a table (in section [{section.name}] of "
                f"config file {path})",
                name,
            )
        raise SettingsError(f"unknown section [{section.name}.{key}] in config file {path}")


def _check_unknown_tables(data: Mapping[str, Any], known: Sequence[Section], path: str) -> None:
    # Sub-tables under a root that names no section, e.g. [sim.discrod]: say so rather than skip it.
    full = {s.name for s in known}
    for root in {s.table[0] for s in known}:
        node = data.get(root)
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if not isinstance(value, dict) and root not in full:
                tables = ", ".join(f"[{n}]" for n in sorted(full) if n.startswith(root))
                raise SettingsError(
                    f"unknown setting {key!r} in section [{root}] of config file {path} "
                    f"(its settings go in {tables})"
                )
            if isinstance(value, dict) and f"{root}.{key}" not in full:
                name = f"{root}.{key}"
                raise SettingsError(
                    f"unknown section [{name}] in config file {path}{suggestion(name, sorted(full))}"
                )
