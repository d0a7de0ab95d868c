"""What the supervisor tracks: the desired state per slot, the workers, and the settings it reads.

A worker's ``state`` (and which worker a slot runs) is written by the reconcile loop only
(:mod:`.reconcile`). What a worker *says* (hello, pongs, readiness, the sessions it handed off) and
what the operating system says (its exit status) are observations, recorded where they arrive and
read by the loop on its next step.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.spawner import WorkerHandle


class SupervisorSettings(Protocol):
    """The settings the supervisor reads (the attribute names of ``shardrunner.settings.Settings``).

    A platform's own settings are not here: its discovery reads them from the whole settings object.
    """

    @property
    def token(self) -> str | None: ...
    @property
    def api_url(self) -> str: ...
    @property
    def sim(self) -> bool: ...
    @property
    def run_dir(self) -> str: ...
    @property
    def workers(self) -> int: ...
    @property
    def log_level(self) -> str: ...
    @property
    def log_format(self) -> str: ...
    @property
    def queue_events(self) -> int: ...
    @property
    def queue_bytes(self) -> int: ...
    @property
    def groups(self) -> str: ...
    @property
    def resume_window(self) -> float: ...
    @property
    def hung_after(self) -> float: ...
    @property
    def ready_timeout(self) -> float: ...
    @property
    def worker_backoff(self) -> float: ...
    @property
    def progress(self) -> str: ...
    @property
    def metrics_port(self) -> int: ...
    @property
    def metrics_bind(self) -> str: ...
    @property
    def controller(self) -> str: ...
    # The bus and control sockets on TCP (bots on other machines), with CURVE.
    @property
    def bus_bind(self) -> str: ...
    @property
    def advertise(self) -> str: ...
    @property
    def control_bind(self) -> str: ...
    @property
    def curve_server_key(self) -> str | None: ...
    @property
    def curve_clients(self) -> str | None: ...
    # Several hosts (the ``hosts`` section).
    @property
    def coordinator(self) -> str | None: ...
    @property
    def coordinator_password(self) -> str | None: ...
    @property
    def cluster_name(self) -> str: ...
    @property
    def host_name(self) -> str: ...
    @property
    def standby(self) -> bool: ...
    @property
    def lease_ttl(self) -> float: ...
    @property
    def lease_blocks(self) -> int: ...


class WorkerState(enum.Enum):
    """Where a worker is in its life, as the reconcile loop drives it."""

    #: Spawned; it has not said hello yet.
    BOOTING = "booting"
    #: Said hello, holds nothing: a reload's replacement waiting for the sessions.
    STANDBY = "standby"
    #: Runs its slot's connections.
    RUNNING = "running"
    #: Asked to hand its sessions over and stay up (a reload that may still give them back).
    HANDING_OFF = "handing_off"
    #: Handed its sessions over, stays up in case the reload rolls back.
    IDLE = "idle"
    #: Asked to hand its sessions over and exit (or, if it never said hello, to exit).
    RETIRING = "retiring"
    #: Asked to end its sessions (a reshard's old or aborted set), drain its queues and exit; bots
    #: still find it, to take what it holds for them.
    FINISHING = "finishing"
    #: Hung: SIGTERM sent, SIGKILL at the deadline.
    KILLING = "killing"
    #: The process is gone (the loop saw its exit status).
    EXITED = "exited"


@dataclass(eq=False)
class Worker:
    """One worker process as the supervisor tracks it."""

    slot: int
    generation: int
    handle: WorkerHandle
    started_at: float
    #: Written by the reconcile loop only.
    state: WorkerState = WorkerState.BOOTING
    #: When the current state's wait ends (boot, handoff, kill grace), on the supervisor's clock.
    deadline: float | None = None
    killed: bool = False
    # -- observations, recorded where they arrive ----------------------------------------------
    hello: bool = False
    last_pong: float = 0.0
    ready: bool = False
    #: The sessions of its last HandedOff (None until one came).
    handed_off: list[SessionSnapshot] | None = None
    #: The delivery version it runs (from its Assign, then its DeliverySet answers).
    delivery_version: int = 0
    exit_code: int | None = None
    exited_at: float = 0.0
    #: Its bus's TCP endpoint as bots elsewhere reach it (``BusBound``, advertised), or "".
    bus_tcp: str = ""
    #: Events its controller's filter dropped, and its hooks' failed calls (its latest report).
    filtered: int = 0
    hook_failures: dict[str, int] = field(default_factory=dict)
    #: Bots' messages its bus refused (its latest report).
    bus_rejected: int = 0

    @property
    def identity(self) -> bytes:
        return f"{self.slot}:{self.generation}".encode()

    @property
    def pid(self) -> int:
        return self.handle.pid

    @property
    def gone(self) -> bool:
        return self.state is WorkerState.EXITED


@dataclass
class DesiredSlot:
    """What one slot should be: its connections, the oldest worker generation it accepts (a reload
    raises it), and whether it should run at all (``standby``: no worker, as when stopping or
    when a reshard finishes the slot's set)."""

    conns: list[ConnKey]
    generation: int = 0
    standby: bool = False


@dataclass(eq=False)
class Slot:
    """One slot of the plan: what it should be, and the workers the loop has for it."""

    index: int
    desired: DesiredSlot
    #: The worker that runs (or is starting to run) the slot's connections.
    current: Worker | None = None
    #: A reload's replacement, before it takes the sessions over.
    candidate: Worker | None = None
    #: A reload's old worker, idle until the replacement is ready (it takes them back otherwise).
    previous: Worker | None = None
    #: The replacement that failed to get ready, while it hands the sessions back.
    returning: Worker | None = None
    #: A reload asked the old worker for its sessions (the replacement is on standby).
    handoff_asked: bool = False
    backoff: float = 0.0
    next_start_at: float = 0.0
    ready_deadline: float = 0.0
    #: How the sessions reached the replacement of a reload (conns resumed, conns to identify).
    handover: tuple[int, int] = (0, 0)

    def workers(self) -> list[Worker]:
        return [w for w in (self.current, self.candidate, self.previous, self.returning) if w is not None]
