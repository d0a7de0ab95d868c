"""What the supervisor does with each message of a worker: observations recorded where they belong
(the session book, the identify grants, the worker's record), and a wake of the reconcile loop."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shardrunner.cluster import messages as m
from shardrunner.curve import advertised

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor

log = logging.getLogger("shardrunner.supervisor")


def on_worker_message(sup: Supervisor, identity: bytes, message: m.Message) -> None:
    assert sup.reconciler is not None
    assert sup.grants is not None
    worker = sup.reconciler.find(identity)
    if worker is None:
        return
    if worker.gone and not isinstance(message, m.Report | m.HandedOff | m.Released):
        return  # what it asked for or said about itself no longer matters
    now = sup.clock.monotonic()
    if isinstance(message, m.Report):
        sup.book.on_report(worker.slot, message, now)
        worker.filtered, worker.hook_failures = message.filtered, message.hook_failures
        worker.bus_rejected = message.bus_rejected
    elif isinstance(message, m.Pong):
        worker.last_pong = now
        if worker.ready != message.ready:
            worker.ready = message.ready
            sup.wake()
    elif isinstance(message, m.IdentifyRequest):
        sup.grants.request(identity, message.conn, near=message.near)
    elif isinstance(message, m.IdentifySent):
        sup.grants.sent(message.conn)
    elif isinstance(message, m.IdentifyDone):
        sup.grants.done(message.conn, ready=message.ready)
    elif isinstance(message, m.BudgetRequest | m.BudgetUsed | m.BudgetCancel):
        budgets = sup.budgets
        assert budgets is not None
        if isinstance(message, m.BudgetRequest):
            budgets.request(identity, message)
        elif isinstance(message, m.BudgetUsed):
            budgets.used(identity, message.request)
        else:
            budgets.cancel(identity, message.request)
    elif isinstance(message, m.Hello):
        worker.hello = True
        worker.last_pong = now
        sup.wake()
    elif isinstance(message, m.HandedOff):
        sup.book.on_handed_off(message.snapshots)
        worker.handed_off = message.snapshots
        sup.wake()
    elif isinstance(message, m.Released):
        if sup.hosts is not None:
            sup.hosts.on_released(worker, message)
        else:
            sup.book.on_handed_off(message.snapshots)
        sup.wake()
    elif isinstance(message, m.BusBound):
        worker.bus_tcp = advertised(message.endpoint, sup.settings.advertise)
    elif isinstance(message, m.DeliverySet):
        worker.delivery_version = max(worker.delivery_version, message.version)
        sup.wake()
    elif isinstance(message, m.Finished):
        if message.undelivered:
            log.warning(
                "worker %d closed with %d events no consumer group took (its drain timed out)",
                worker.slot,
                message.undelivered,
            )
    elif isinstance(message, m.ConnFailed):
        resharder = sup.resharder
        if resharder is not None and resharder.on_failed(message.conn):
            resharder.abort(f"a new shard closed fatally: {message.message}")
        elif message.stop:
            sup.fail(message.message)
        else:
            log.error("%s (the controller keeps the other connections running)", message.message)
