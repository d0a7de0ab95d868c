"""The supervisor's side of resharding that is not the switch itself: the ``reshard`` command, the
automatic check, what a start does with the sets a reshard left saved, and the plans and tables
moving to the new set (the switch is :mod:`.reshard`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shardrunner.cluster import statefile
from shardrunner.cluster.supervisor.reshard import Phase, Resharder, Run
from shardrunner.control import CommandError
from shardrunner.gateway.platform import PlatformError, PlatformPlan, ResizablePlan, Resize

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor

log = logging.getLogger("shardrunner.supervisor")


def prefer_saved_sets(
    plans: Mapping[str, PlatformPlan], run_dir: Path, token: str, window: float
) -> dict[str, PlatformPlan]:
    """The plans to start: where the state file holds resumable sessions of another set of a
    platform (a reshard ran since the settings were written), that set, so its sessions resume
    instead of a set of the configured count identifying from nothing."""
    out = dict(plans)
    for platform, generation, count in statefile.saved_sets(run_dir, token, window):
        p = out.get(platform)
        if not isinstance(p, ResizablePlan) or (p.generation, len(p.conns)) == (generation, count):
            continue
        out[platform] = p.resize(count, generation)
        log.info(
            "the last run saved the sessions of %d %s connections (set %d): resuming them instead of "
            "starting %d (run shardrunner reshard to change the count)",
            count,
            platform,
            generation,
            len(p.conns),
        )
    return out


def save_state(sup: Supervisor) -> Path | None:
    """Write the state file with every connection's session now (after a reshard's switch, so
    that the file never names the set that is gone). A cluster without Discord (no token) writes it
    too: it has no session to resume, but its durable consumer groups are kept for the next start."""
    if not sup.conns:
        return None
    return statefile.write(
        sup.run_dir.path,
        sup.token,
        sup.conns,
        sup.book.resume_from(sup.local_conns()),
        sorted(sup.book.groups.items()),
    )


def switched(sup: Supervisor, new: ResizablePlan) -> None:
    """The new set delivers: bots' commands go to it (the endpoints answer names its generation)."""
    sup.plans[new.name] = new


def resharded(sup: Supervisor, old: ResizablePlan, new: ResizablePlan) -> None:
    """The old set closes: the tables and the state file hold the new set only."""
    gone = set(old.conns)
    sup.conns = [c for c in sup.conns if c not in gone] + list(new.conns)
    sup.plans[new.name] = new
    if not sup.settings.sim and sup.run_dir.state_file.exists():
        save_state(sup)


def resizable(sup: Supervisor, platform: str | None = None) -> ResizablePlan:
    """The plan a reshard applies to (the one platform that can, or the one named)."""
    for name, p in sup.plans.items():
        if isinstance(p, ResizablePlan) and platform in (None, name):
            return p
    raise CommandError(f"no running platform can be resharded{f' ({platform})' if platform else ''}")


def keys_held(sup: Supervisor, p: PlatformPlan) -> tuple[int, int]:
    """The routing keys the set serves, and how many of its connections are not ready (their
    keys are not known yet)."""
    keys = missing = 0
    for conn in p.conns:
        r = sup.book.reports.get(conn)
        if r is None or r.state != "ready":
            missing += 1
        else:
            keys += r.key_count
    return keys, missing


def _resharder(sup: Supervisor) -> Resharder:
    if sup.resharder is None or sup.state not in ("running", "reloading"):
        raise CommandError(f"the cluster is {sup.state}")
    return sup.resharder


async def propose(sup: Supervisor, p: ResizablePlan, count: int | None, *, auto: bool) -> Resize | None:
    keys, missing = keys_held(sup, p)
    if missing:
        raise CommandError(
            f"{missing} of {len(p.conns)} shards are not ready, so their guilds are not known: reshard "
            "once every shard is ready (shardrunner status)"
        )
    try:
        await p.refresh()
    except PlatformError as exc:
        raise CommandError(str(exc)) from None
    return p.propose(count, keys, auto=auto)


async def reshard_command(
    sup: Supervisor, *, shards: int | None, dry_run: bool, abort: bool
) -> dict[str, Any]:
    """What ``{"command": "reshard"}`` does: plan (``dry_run``), start, or ``abort``."""
    resharder = _resharder(sup)
    if abort:
        try:
            message = resharder.abort("asked by shardrunner reshard --abort")
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None
        sup.wake()
        return {"message": message, "started": False}
    if resharder.active:
        status = resharder.status()
        phase = status.phase if status else "?"
        raise CommandError(f"a reshard is under way ({phase}); one at a time")
    p = resizable(sup)
    resize = await propose(sup, p, shards, auto=False)
    assert resize is not None
    out: dict[str, Any] = {"plan": resize.as_dict(), "started": False}
    if resize.refused:
        if not dry_run:
            raise CommandError(f"reshard refused: {resize.refused}")
        out["message"] = f"refused: {resize.refused}"
        return out
    if dry_run:
        out["message"] = "dry run: nothing changed"
        return out
    if resharder.active:  # another one started while /gateway/bot was asked
        raise CommandError("a reshard is under way; one at a time")
    out["message"] = resharder.start(p, resize)
    out["started"] = True
    sup.wake()
    return out


#: After an automatic reshard was aborted, the next automatic one waits this long (doubling with
#: each abort in a row, at most a day): every try costs a session start per new shard.
AUTO_RETRY_AFTER_S = 3600.0
AUTO_RETRY_MAX_S = 86400.0


class AutoReshard:
    """The automatic check: every ``check_every`` seconds, ask the platform and reshard when due;
    after an automatic reshard was aborted, not again for an hour (then two, four... at most a day)."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._said: str | None = None
        self._mine: Run | None = None
        self._aborted = 0
        self._not_before = 0.0

    async def run(self) -> None:
        sup = self.sup
        plans = [p for p in sup.plans.values() if isinstance(p, ResizablePlan) and p.policy.auto]
        if not plans:
            return
        every = min(p.policy.check_every for p in plans)
        while True:
            await sup.clock.sleep(every)
            with contextlib.suppress(CommandError):
                await self.check()

    async def check(self) -> None:
        sup = self.sup
        resharder = _resharder(sup)
        if resharder.active:
            return
        now = sup.clock.monotonic()
        mine, self._mine = self._mine, None
        if mine is not None and mine.phase is Phase.ABORTED:
            self._aborted += 1
            wait = min(AUTO_RETRY_MAX_S, AUTO_RETRY_AFTER_S * 2 ** (self._aborted - 1))
            self._not_before = now + wait
            log.warning(
                "the automatic reshard was aborted; the next automatic one in %.0f s at the earliest", wait
            )
        elif mine is not None:
            self._aborted = 0
        if now < self._not_before:
            return
        p = resizable(sup)
        if not p.policy.auto:
            return
        try:
            resize = await propose(sup, p, None, auto=True)
        except CommandError as exc:
            self._say(f"automatic reshard check skipped: {exc}")
            return
        if resize is None:
            return
        if resize.refused:
            self._say(f"a reshard is due ({resize.reason}) but refused: {resize.refused}")
            return
        if not await sup.hooks.should_reshard(resize):
            self._say(f"a reshard is due ({resize.reason}) but the controller declines it for now")
            return
        if sup.stopping or resharder.active:
            return
        resharder.start(p, resize)
        self._mine = resharder.run
        sup.wake()

    def _say(self, message: str) -> None:
        if message != self._said:  # once per distinct reason, not every check
            self._said = message
            log.warning("%s", message)


def settle_on_stop(resharder: Resharder) -> None:
    """A stop during a reshard: before the switch it is aborted (the old set is saved), after it
    the switch completes at once (the new set is saved)."""
    run = resharder.run
    if run is None or run.phase not in (Phase.WARMING, Phase.SWITCHING):
        return
    if resharder.switched:
        resharder.complete_now()
    else:
        resharder.abort("the cluster is stopping")


async def sleep_while_switching(resharder: Resharder | None) -> None:
    """Wait until no switch is running (a reload follows a switch, it never cuts into one)."""
    if resharder is not None:
        await resharder.calm.wait()
