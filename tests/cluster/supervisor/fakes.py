"""Fakes for the supervisor's seams: settings, a platform plan, worker processes and their link.

A fake worker says what a real one says (Hello, Pong, Report, IdentifyRequest/Sent/Done,
HandedOff), over an in-memory link, as the test's :class:`Behaviour` tells it; every message goes
through the real msgpack codec.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from dataclasses import dataclass, field
from typing import Any

from shardrunner.bus.protocol import Delivery, GroupStats
from shardrunner.cluster import messages as m
from shardrunner.cluster.exitcodes import BOOT_FAILED
from shardrunner.gateway.platform import Resize, ResizePolicy
from shardrunner.identify.protocol import StartLimit
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

TOKEN = "fake-token-for-the-supervisor-tests"


@dataclass(frozen=True)
class FakeSettings:
    run_dir: str
    token: str | None = TOKEN
    api_url: str = "http://127.0.0.1:1/api/v10"
    sim: bool = False
    workers: int = 2
    shards: int | str = 8
    max_concurrency: int | None = None
    identify_window: float = 1.0
    intents: int = 0
    compression: str = "none"
    large_threshold: int = 250
    log_level: str = "info"
    log_format: str = "text"
    queue_events: int = 1000
    queue_bytes: int = 1 << 20
    groups: str = ""
    resume_window: float = 120.0
    hung_after: float = 10.0
    ready_timeout: float = 20.0
    worker_backoff: float = 1.0
    progress: str = "never"
    metrics_port: int = 0
    metrics_bind: str = "127.0.0.1"
    bus_bind: str = ""
    advertise: str = ""
    control_bind: str = ""
    curve_server_key: str | None = None
    curve_clients: str | None = None
    coordinator: str | None = None
    coordinator_password: str | None = None
    cluster_name: str = "shardrunner"
    host_name: str = ""
    standby: bool = False
    lease_ttl: float = 10.0
    lease_blocks: int = 0
    controller: str = ""


def conns(count: int, generation: int = 0, platform: str = "discord") -> list[ConnKey]:
    return [ConnKey(platform, generation, i, count) for i in range(count)]


@dataclass
class FakePlan:
    """A platform plan (``PlatformPlan``) of fixed connections, one bucket per ``buckets``."""

    conns: list[ConnKey]
    name: str = "discord"
    buckets: int = 1
    window: float = 1.0
    checked: list[int] = field(default_factory=list)

    @property
    def limits(self) -> list[StartLimit]:
        return [StartLimit(f"{self.name}.identify", self.buckets, self.window)]

    def bucket_of(self, conn: ConnKey) -> tuple[str, int]:
        return (f"{self.name}.identify", conn.shard % self.buckets)

    def part_config(self) -> bytes:
        return b"config-with-" + TOKEN.encode()

    def check_starts(self, to_identify: int) -> None:
        self.checked.append(to_identify)

    def describe(self) -> dict[str, Any]:
        return {"shards": len(self.conns), "sets": sorted({c.count for c in self.conns})}


@dataclass
class FakeResizablePlan(FakePlan):
    """A plan that can be resized (``ResizablePlan``): ``due`` makes the automatic check propose a
    resize to ``due`` connections, ``refuse`` refuses any resize with that sentence."""

    generation: int = 0
    policy: ResizePolicy = field(default_factory=lambda: ResizePolicy(overlap=1.0, timeout=60.0, drain=5.0))
    due: int | None = None
    refuse: str | None = None
    refreshed: int = 0
    proposed: list[tuple[int | None, int, bool]] = field(default_factory=list)

    def resize(self, count: int, generation: int | None = None) -> FakeResizablePlan:
        g = self.generation + 1 if generation is None else generation
        return FakeResizablePlan(
            conns(count, g, self.name), self.name, self.buckets, self.window, generation=g, policy=self.policy
        )

    async def refresh(self) -> None:
        self.refreshed += 1

    def propose(self, count: int | None, keys: int, *, auto: bool = False) -> Resize | None:
        self.proposed.append((count, keys, auto))
        if auto and self.due is None:
            return None
        target = count if count is not None else (self.due or 2 * len(self.conns))
        return Resize(
            self.name, len(self.conns), target, keys, 10, 0.9, 0.45, target, 1000, 10, 1.0,
            "asked" if count else "due", self.refuse,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"num_shards": len(self.conns), "generation": self.generation}


def discover_of(*plans: FakePlan) -> Any:
    async def discover(settings: Any) -> list[Any]:
        return list(plans)

    return discover


@dataclass
class Behaviour:
    """How one fake worker process behaves."""

    #: ``ok``; ``fail``: exits with BOOT_FAILED before hello; ``silent``: never says hello.
    boot: str = "ok"
    #: Its connections get ready once assigned (and it says so in pongs).
    ready: bool = True
    pongs: bool = True
    ignore_term: bool = False
    words: str = "RuntimeError: boot refused for the test"
    #: Routing keys each connection still waits for after its identify (counted down per report).
    keys_pending: int = 0
    #: Connections that close fatally instead of identifying.
    fatal: frozenset[ConnKey] = frozenset()
    #: It acknowledges delivery changes (DeliverySet).
    acks: bool = True
    #: Members of consumer group "bot" its bus reports (None: it reports no group).
    members: int | None = None


class FakeLink:
    """The worker link in memory (``WorkerLink``)."""

    endpoint = "inproc://fake-workers"

    def __init__(self) -> None:
        self.inbound: asyncio.Queue[tuple[bytes, m.Message]] = asyncio.Queue()
        self.procs: dict[bytes, FakeProc] = {}
        #: Every identify grant, in the order they were sent.
        self.grants: list[ConnKey] = []
        #: Every message delivered to a worker, in order.
        self.sent: list[tuple[bytes, m.Message]] = []
        self.bound = False

    def bind(self) -> None:
        self.bound = True

    def send(self, identity: bytes, message: m.Message) -> bool:
        proc = self.procs.get(identity)
        if proc is None or proc.code is not None or not proc.hello_sent:
            return False
        if isinstance(message, m.IdentifyGrant):
            self.grants.append(message.conn)
        self.sent.append((identity, message))
        proc.deliver(m.decode(m.encode(message)))
        return True

    async def recv(self) -> tuple[bytes, m.Message]:
        return await self.inbound.get()

    def close(self) -> None:
        self.bound = False


class FakeProc:
    """One fake worker process (``WorkerHandle``) and what it was told."""

    _pids = itertools.count(40000)

    def __init__(self, link: FakeLink, slot: int, generation: int, behaviour: Behaviour) -> None:
        self.link = link
        self.slot = slot
        self.generation = generation
        self.behaviour = behaviour
        self.pid = next(self._pids)
        self.code: int | None = None
        self.signals: list[int] = []
        self.received: list[m.Message] = []
        self.conns: list[ConnKey] = []
        self.sessions: dict[ConnKey, tuple[str, int]] = {}
        self.resumed: list[ConnKey] = []
        self.identified: list[ConnKey] = []
        self.hello_sent = False
        self.delivery: dict[ConnKey, Delivery] = {}
        self.pending: dict[ConnKey, int] = {}
        self.identity = f"{slot}:{generation}".encode()
        link.procs[self.identity] = self
        if behaviour.boot == "fail":
            self.code = BOOT_FAILED
        elif behaviour.boot == "ok":
            asyncio.get_running_loop().call_soon(self._hello)

    def _hello(self) -> None:
        if self.code is None:
            self.hello_sent = True
            self.say(m.Hello(self.slot, self.generation, self.pid))

    # -- WorkerHandle ---------------------------------------------------------------------------
    def poll(self) -> int | None:
        return self.code

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)
        if sig == signal.SIGKILL or (sig == signal.SIGTERM and not self.behaviour.ignore_term):
            self.exit(-sig)

    def last_words(self) -> str:
        return self.behaviour.words

    def usage(self) -> tuple[float | None, int | None]:
        return 1.5, 50 << 20

    # -- what the test does -----------------------------------------------------------------------
    def exit(self, code: int) -> None:
        if self.code is None:
            self.code = code

    def say(self, message: m.Message) -> None:
        self.link.inbound.put_nowait((self.identity, m.decode(m.encode(message))))

    def of(self, kind: type[Any]) -> list[Any]:
        return [x for x in self.received if isinstance(x, kind)]

    @property
    def ready(self) -> bool:
        return self.behaviour.ready and bool(self.conns) and all(c in self.sessions for c in self.conns)

    def report(self) -> None:
        rows = []
        for c in self.conns:
            session = self.sessions.get(c)
            state = (
                "ready" if session and self.behaviour.ready else "identifying" if not session else "resuming"
            )
            rows.append(
                m.ConnReport(
                    c, state, session[1] if session else 0, session[0] if session else None,
                    "ws://resume" if session else None, 10, 0.04, 1,
                    int(c in self.resumed), int(c in self.identified), None, keys=[c.shard * 100],
                    keys_pending=self.pending.get(c, 0),
                    withheld=7 if self.delivery.get(c) in (Delivery.HOLD, Delivery.MUTE) else 0,
                )
            )  # fmt: skip
            if self.pending.get(c):
                self.pending[c] -= 1
        members = self.behaviour.members
        groups = [] if members is None else [GroupStats("bot", None, members, 0, 0, 0, 0)]
        self.say(m.Report(rows, [], groups))

    def deliver(self, message: m.Message) -> None:
        self.received.append(message)
        if isinstance(message, m.Assign):
            self.conns = message.conns
            self.sessions = {}
            self.delivery = dict(message.delivery)
            for snap in message.snapshots:
                self.sessions[snap.conn] = (snap.session_id, snap.seq)
                self.resumed.append(snap.conn)
            for c in self.conns:
                if c in self.behaviour.fatal:
                    self.say(m.ConnFailed(c, 4013, f"{c}: closed 4013 for the test"))
                elif c not in self.sessions:
                    self.say(m.IdentifyRequest(c))
            self.report()
        elif isinstance(message, m.SetDelivery):
            for c, mode in message.delivery:
                if mode is Delivery.LIVE:
                    self.delivery.pop(c, None)
                else:
                    self.delivery[c] = mode
            if self.behaviour.acks:
                self.say(m.DeliverySet(message.version))
        elif isinstance(message, m.Finish):
            self.sessions = {}
            self.conns = []
            self.say(m.Finished(0))
            self.exit(0)
        elif isinstance(message, m.IdentifyGrant):
            self.say(m.IdentifySent(message.conn))
            self.sessions[message.conn] = (f"s-{message.conn}-{self.generation}", 1)
            self.identified.append(message.conn)
            self.pending[message.conn] = self.behaviour.keys_pending
            self.say(m.IdentifyDone(message.conn, ready=True))
            self.report()
        elif isinstance(message, m.Ping):
            if self.behaviour.pongs:
                self.say(m.Pong(message.nonce, self.ready))
                if self.conns:
                    self.report()  # a real worker reports twice a second
        elif isinstance(message, m.Handoff):
            snaps = [
                SessionSnapshot(conn=c, session_id=sid, seq=seq + 5, resume_url="ws://resume", keys=[c.shard])
                for c, (sid, seq) in sorted(self.sessions.items())
            ]
            self.sessions = {}
            self.conns = [] if message.exit else self.conns
            self.say(m.HandedOff(snaps))
            if message.exit:
                self.exit(0)


class FakeSpawner:
    """Makes fake worker processes; ``behaviour(slot, generation)`` says how each behaves."""

    def __init__(self, link: FakeLink) -> None:
        self.link = link
        self.spawned: list[FakeProc] = []
        self.behaviours: dict[tuple[int, int], Behaviour] = {}
        self.default = Behaviour()

    def spawn(self, slot: int, generation: int, endpoint: str) -> FakeProc:
        assert endpoint == self.link.endpoint
        proc = FakeProc(self.link, slot, generation, self.behaviours.get((slot, generation), self.default))
        self.spawned.append(proc)
        return proc

    def of_slot(self, slot: int) -> list[FakeProc]:
        return [p for p in self.spawned if p.slot == slot]

    def living(self) -> list[FakeProc]:
        return [p for p in self.spawned if p.code is None]
