"""Channels added and removed while the cluster runs (``shardrunner channels add|remove|list``).

A platform whose routing keys are configured (a :class:`~shardrunner.gateway.platform.KeyedPlan`:
Twitch's channels) changes its connection table in place; the new part config goes to every
running worker of the platform (``Reconfigure``), and every later ``Assign`` carries it, so a
replaced worker starts from it. The changes are kept in the run dir's ``channels.json``, relative to
the configured channels, and applied again at the next start.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from shardrunner.bus.protocol import Delivery
from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.delivery import DeliveryTable
from shardrunner.control import CommandError
from shardrunner.gateway.platform import KeyedPlan, PlatformError, PlatformPlan

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor

log = logging.getLogger("shardrunner.supervisor")


class _Changes(msgspec.Struct):
    added: list[str] = []
    removed: list[str] = []
    rates: dict[str, float] = {}


def load_changes(path: Path) -> tuple[list[str], list[str], dict[str, float]]:
    """(added, removed, rates) as kept in ``path`` (nothing if it is missing, unreadable, or not of
    that shape: one line says so)."""
    try:
        data = msgspec.json.decode(path.read_bytes(), type=_Changes)
    except FileNotFoundError:
        return [], [], {}
    except (OSError, msgspec.DecodeError) as exc:
        log.warning("%s cannot be read (%s): starting from the configured channels", path, str(exc)[:200])
        return [], [], {}
    return data.added, data.removed, data.rates


def save_changes(path: Path, plan: KeyedPlan, rates: dict[str, float] | None = None) -> None:
    """Keep the plan's changes, and the channels' traffic (the last measured, else the kept)."""
    added, removed = getattr(plan, "added", []), getattr(plan, "removed", [])
    kept = rates if rates else getattr(plan, "rates", {})
    if not (added or removed or kept):
        if path.exists():
            path.unlink()
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"added": added, "removed": removed, "rates": kept}, indent=1) + "\n")
    os.replace(tmp, path)


def measured_rates(sup: Supervisor, platform: str) -> dict[str, float]:
    """The busy channels' lines per second as the platform's connections last reported them."""
    out: dict[str, float] = {}
    for conn, report in sup.book.reports.items():
        if conn.platform == platform and report.detail:
            for key, rate in (report.detail.get("rates") or {}).items():
                out[key] = max(out.get(key, 0.0), float(rate))
    return out


def save_channel_state(sup: Supervisor) -> None:
    """At a stop: the changes and the measured traffic, for the next start's placement."""
    for plan in sup.plans.values():
        if isinstance(plan, KeyedPlan):
            try:
                save_changes(sup.run_dir.channels_file, plan, measured_rates(sup, plan.name))
            except OSError as exc:
                log.warning("cannot write %s: %s", sup.run_dir.channels_file, exc)


def restore_channels(plans: dict[str, PlatformPlan], path: Path, delivery: DeliveryTable) -> None:
    """Apply the kept changes and traffic to every keyed plan (before any worker starts), and mark
    the connections that read a channel twice (Twitch's backup readers): the client keeps one copy."""
    added, removed, rates = load_changes(path)
    for plan in plans.values():
        if isinstance(plan, KeyedPlan) and (added or removed or rates):
            plan.restore(added, removed, rates)
            log.info(
                "%s: %d channels added and %d removed at run time are kept",
                plan.name,
                len(added),
                len(removed),
            )
        delivery.modes.update(dict.fromkeys(getattr(plan, "marked", ()), Delivery.DEDUPE))


def keyed_plan(sup: Supervisor) -> KeyedPlan:
    for plan in sup.plans.values():
        if isinstance(plan, KeyedPlan):
            return plan
    raise CommandError("no platform of this cluster has channels (Twitch is not running)")


def change_channels(sup: Supervisor, action: str, names: Iterable[str]) -> dict[str, Any]:
    """``add``, ``remove`` or ``list`` channels; what changed, and the channels now."""
    plan = keyed_plan(sup)
    names = list(names)
    if action == "list":
        return {"platform": plan.name, "channels": plan.channels(), "version": plan.version}
    if action not in ("add", "remove"):
        raise CommandError(f"unknown action {action!r}: add, remove or list")
    if not names:
        raise CommandError(f"name the channels to {action}")
    if sup.stopping:
        raise CommandError("the cluster is stopping")
    try:
        result = plan.add_channels(names) if action == "add" else plan.remove_channels(names)
    except (PlatformError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    save_changes(sup.run_dir.channels_file, plan, measured_rates(sup, plan.name))
    if result.get("added") or result.get("removed"):
        config = plan.part_config()
        for slot in sup.slots:
            if not any(c.platform == plan.name for c in slot.desired.conns):
                continue
            for w in (slot.current, slot.previous):
                if w is not None and not w.gone and w.hello:
                    sup.link.send(w.identity, m.Reconfigure(plan.name, config))
        log.info("%s channels: %s", action, ", ".join(result.get("added") or result.get("removed") or []))
    return {"platform": plan.name, **result, "channels": len(plan.channels())}
