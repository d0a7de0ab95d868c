"""The hosts part of ``shardrunner status`` (``--all``): every host of the bot, its role and blocks,
and every block's lease, as the answering host's last beat saw them in the coordinator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def hosts_text(hosts: Mapping[str, Any] | None, *, every_lease: bool) -> list[str]:
    """Lines for the status table; a cluster on one host has none."""
    if not hosts:
        return []
    me = hosts.get("name", "?")
    held = hosts.get("held") or []
    head = (
        f"host {me} ({hosts.get('role', '?')}) of {len(hosts.get('hosts') or [])} hosts, "
        f"holds {len(held)} of {hosts.get('blocks', '?')} blocks, lease TTL {hosts.get('lease_ttl', '?')} s, "
        f"coordinator {hosts.get('coordinator', '?')}"
    )
    lines = ["", head]
    if hosts.get("down"):
        lines.append(f"coordinator down: {hosts['down']}")
    if not every_lease:
        return lines
    lines.append("")
    lines.append(f"{'host':<28} {'role':<8} {'workers':>7} {'conns':>6} {'blocks':>6}  status")
    for h in hosts.get("hosts") or []:
        name = str(h.get("name", "?")) + (" *" if h.get("me") else "")
        lines.append(
            f"{name:<28} {h.get('role', '?'):<8} {h.get('capacity', '?'):>7} {h.get('conns', 0):>6} "
            f"{len(h.get('blocks') or []):>6}  {h.get('status', '?')}"
        )
    lines.append("")
    lines.append(f"{'block':>5} {'conns':<24} {'host':<28} {'epoch':>6} {'ttl':>6}")
    for lease in hosts.get("leases") or []:
        host = lease.get("host") or "(free)"
        epoch = "-" if lease.get("epoch") is None else str(lease["epoch"])
        ttl = "-" if lease.get("ttl") is None else f"{lease['ttl']:.1f}s"
        lines.append(
            f"{lease.get('block', '?'):>5} {lease.get('conns', ''):<24} {host:<28} {epoch:>6} {ttl:>6}"
        )
    return lines
