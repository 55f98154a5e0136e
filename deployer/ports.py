"""The ports the engine talks through. Adapters implement them; tests swap in fakes.

Also the one flag both sides share: `compensating()`, set by the engine around undo work and
read by adapters (`is_compensating()`) to let that work past an open circuit breaker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from deployer.core.models import Deployment, Event, PhaseRecord, ProjectView
from deployer.core.states import DeploymentState


@dataclass(frozen=True)
class ProjectRef:
    project_id: str
    environment_id: str


@dataclass(frozen=True)
class ProjectSurvey:
    total: int  # every project on the server
    named: tuple[ProjectRef, ...]  # those with the name asked for, newest first


@dataclass(frozen=True)
class Limits:
    """A container's limits as Dokploy takes and gives them: strings of whole bytes and
    NanoCPUs (a number gets a 400; "512m" would mean 512 bytes); None: no limit."""

    memory: str | None = None
    cpus: str | None = None

    @classmethod
    def of(cls, memory_bytes: int | None, nano_cpus: int | None) -> Limits:
        return cls(None if memory_bytes is None else str(memory_bytes),
                   None if nano_cpus is None else str(nano_cpus))  # fmt: skip


@dataclass(frozen=True)
class AppSettings:
    """What a redeploy overwrites on a live application, kept to put back on failure."""

    image: str
    env_text: str  # as Dokploy stores it, byte for byte
    limits: Limits = Limits()


@dataclass(frozen=True)
class AppRef:
    application_id: str
    app_name: str


@dataclass(frozen=True)
class DeploymentRun:
    deployment_id: str
    status: str  # running | done | error | cancelled
    error_message: str | None = None


@dataclass(frozen=True)
class ZoneInfo:
    zone_id: int
    name: str
    rrset_count: int


@dataclass(frozen=True)
class LiveStack:
    """A stack our records say is live: who owns it, and the deployment it is made of.

    The owner is whoever first made it live; a redeploy by someone else keeps the owner (it
    only moves `deployment_id`), an explicit transfer changes it, a destroy ends the row."""

    stack: str
    owner: str
    owner_since: datetime
    deployment_id: str  # the last successful deploy: its recorded ids are the stack's
    expires_at: datetime | None = None  # when it is stopped for good (None: never)
    stopped_at: datetime | None = None  # since when it is stopped (None: running)
    noticed_for: datetime | None = None  # the expiry its owner was last reminded of


@dataclass(frozen=True)
class ProbeResult:
    ready: bool
    detail: str


# Called by an `ensure_*` just before it sends a create (not when it finds the resource).
BeforeCreate = Callable[[], Awaitable[None]]

_compensating: ContextVar[bool] = ContextVar("aistack_compensating", default=False)


@contextmanager
def compensating() -> Iterator[None]:
    """Mark the upstream calls made inside (tasks created inside included) as rollback undo work.

    The engine sets it around each undo; adapters read it (`is_compensating`) to let that work
    past a circuit breaker opened by the failure being undone: refusing the undo as well would
    leave the half-made stack behind.
    """
    token = _compensating.set(True)
    try:
        yield
    finally:
        _compensating.reset(token)


def is_compensating() -> bool:
    return _compensating.get()


class Paas(Protocol):
    """A platform that runs a stack's container (Dokploy). Every method is idempotent:
    `ensure_*` looks up by name before it creates (unless told the resource is `absent`,
    and then only on its first attempt); deletes answer False when already gone. A name
    that matches two resources raises AmbiguousResource."""

    async def count_projects(self, *, quick: bool = False) -> int: ...
    async def survey_projects(self, name: str) -> ProjectSurvey: ...
    async def find_project(self, name: str) -> ProjectRef | None: ...
    async def ensure_project(
        self, name: str, description: str, *, before_create: BeforeCreate | None = None,
        absent: bool = False,
    ) -> ProjectRef: ...  # fmt: skip
    async def remove_project(self, project_id: str) -> bool: ...
    async def find_application(self, project_id: str, name: str) -> AppRef | None: ...
    async def ensure_application(
        self, project: ProjectRef, name: str, *, before_create: BeforeCreate | None = None,
        absent: bool = False,
    ) -> AppRef: ...  # fmt: skip
    async def app_settings(self, application_id: str) -> AppSettings: ...
    async def delete_application(self, application_id: str) -> bool: ...
    async def configure_image(
        self, application_id: str, image: str, env: Mapping[str, str] | None,
        limits: Limits | None = None,
    ) -> None: ...  # fmt: skip
    async def restore_settings(self, application_id: str, settings: AppSettings) -> None: ...
    async def find_domain(self, application_id: str, host: str) -> str | None: ...
    async def ensure_domain(
        self, application_id: str, host: str, port: int, https: bool, *,
        before_create: BeforeCreate | None = None, absent: bool = False,
    ) -> str: ...  # fmt: skip
    async def delete_domain(self, domain_id: str) -> bool: ...
    async def deployment_ids(self, application_id: str) -> set[str]: ...
    async def start_deploy(self, application_id: str, title: str) -> None: ...
    async def newest_deployment(
        self, application_id: str, known: set[str]
    ) -> DeploymentRun | None: ...
    async def deployment_log_tail(self, deployment_id: str, lines: int = 20) -> str: ...
    async def stop_application(self, application_id: str) -> None: ...
    async def start_application(self, application_id: str) -> None: ...
    async def reload_application(self, application_id: str, app_name: str) -> None: ...
    # None: no container runs (nothing to read), not a fault
    async def application_logs(self, application_id: str, lines: int) -> str | None: ...
    # A deployment's build log, its last `lines` lines as Dokploy keeps them; None: no such
    # deployment (any more)
    async def deployment_log(self, deployment_id: str, lines: int) -> str | None: ...
    # HTTP basic auth on the application's URL (Dokploy's security router), by username. The
    # password goes in and never comes back out: Dokploy returns it in clear, we drop it.
    async def add_basic_auth(self, application_id: str, username: str, password: str) -> str: ...
    async def set_basic_auth(self, security_id: str, username: str, password: str) -> None: ...
    async def remove_basic_auth(self, security_id: str) -> bool: ...
    async def find_basic_auth(self, application_id: str, username: str) -> str | None: ...
    async def stacks(self, project_prefix: str) -> list[ProjectView]: ...


class Dns(Protocol):
    """An authoritative DNS zone (Hetzner Cloud DNS)."""

    async def zone(self, *, quick: bool = False) -> ZoneInfo: ...
    async def a_record(self, name: str) -> list[str] | None: ...
    async def a_records(self) -> dict[str, list[str]]: ...
    async def upsert_a_record(
        self, name: str, ip: str, ttl: int, *, before_create: BeforeCreate | None = None
    ) -> None: ...
    async def delete_a_record(self, name: str) -> bool: ...


class Prober(Protocol):
    """Checks once whether a stack answers on its URL."""

    async def check(self, url: str) -> ProbeResult: ...


class Clock(Protocol):
    """Time, one way: what is stamped (`now`, UTC), what is measured (`monotonic`) and what
    is waited (`sleep`). The composition root makes one and hands it to everything."""

    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class Notifier(Protocol):
    """Receives every event of a deployment, in order (Slack, the terminal, a test)."""

    async def notify(self, event: Event) -> None: ...


@runtime_checkable
class Courier(Protocol):
    """Hands a stack's new basic-auth login to its owner privately: a Slack direct message,
    the operator's terminal. The password travels only through here: never logged, stored,
    put in an event or an error."""

    async def deliver_credentials(
        self, deployment: Deployment, owner: str, username: str, password: str
    ) -> None: ...


class DeploymentReads(Protocol):
    """What anyone may read of the deployments: their state, phases, audit trail and live
    stacks. The bot's notifier and its card ledger read through this alone.

    `events_after` is a cursor on the log: the events stored after `seq`, in the log's order,
    at most `limit`. Event ids are the log's order, but on PostgreSQL an event may become
    visible after one with a higher id (ids are taken before their write commits): a reader
    that must see every event keeps its cursor a while behind the newest it read."""

    async def get(self, deployment_id: str) -> Deployment: ...
    async def latest(self, stack: str) -> Deployment | None: ...
    async def list_latest(self) -> list[Deployment]: ...
    async def awaiting_approval(self, stack: str | None = None) -> list[Deployment]: ...
    async def live(self, stack: str) -> LiveStack | None: ...
    async def live_stacks(self) -> list[LiveStack]: ...  # every one, by name
    async def releases(self, stack: str) -> list[Deployment]: ...  # succeeded deploys, by number
    async def phases(self, deployment_id: str) -> list[PhaseRecord]: ...
    async def events(self, stack: str) -> list[Event]: ...
    async def events_for(self, deployment_id: str) -> list[Event]: ...
    async def events_after(self, seq: int, limit: int = 500) -> list[Event]: ...


class DeploymentStore(DeploymentReads, Protocol):
    """Deployments, their phase checkpoints, the audit trail and live stacks, written.

    One deployment holds a stack at a time (states in HOLDING; the database enforces it):
    `create` refuses while one does, approving a second is refused; requests waiting for
    approval hold nothing. Transitions are compare-and-set on `version` and keep the live
    stacks in the same write; `create` stores the new deployment's `events` in its own write
    (a replay stores none). Event ids (`Event.seq`) are the log's order."""

    async def create(
        self, deployment: Deployment, *, dedup_key: str | None = None,
        events: Sequence[Event] = (),
    ) -> Deployment: ...  # fmt: skip
    async def transition(
        self,
        deployment: Deployment,
        target: DeploymentState,
        *,
        error: str | None = None,
        leftovers: Sequence[str] | None = None,
        approver: str | None = None,
        event: Event | None = None,
        retry_at: datetime | None = None,
    ) -> Deployment: ...

    # Live stacks: a deploy that succeeds makes its stack live (its requester owns it unless
    # it already had an owner) and numbers its release; a stop that succeeds marks it
    # stopped, a start, restart or deploy running again; a `lifetime` sets its expiry; a
    # destroy ends it; `transfer` is compare-and-set on the owner
    async def transfer(self, stack: str, owner: str, to: str, event: Event) -> LiveStack: ...
    # A new expiry for a live stack (its reminder is due again), with its event
    async def extend(self, stack: str, expires_at: datetime, event: Event) -> LiveStack: ...
    # Records that the owner was reminded of the expiry `expires_at`, with its event; False
    # when someone did already (or the expiry changed): one reminder, however many replicas
    async def mark_noticed(self, stack: str, expires_at: datetime, event: Event) -> bool: ...

    # Phase checkpoints and the audit trail
    async def save_phase(self, record: PhaseRecord, event: Event | None = None) -> None: ...
    async def append_event(self, event: Event) -> None: ...


class WorkQueue(Protocol):
    """The work queue (engine/worker.py): leases, crash recovery, rollback retries."""

    async def claim(self, owner: str, lease_seconds: float, now: datetime) -> Deployment | None: ...
    async def heartbeat(
        self, deployment_id: str, owner: str, lease_seconds: float, now: datetime
    ) -> bool: ...
    async def release(self, deployment_id: str, owner: str) -> None: ...
    async def queued_before(self, cutoff: datetime) -> list[Deployment]: ...
    async def schedule_retry(self, deployment_id: str, at: datetime) -> None: ...
    async def give_up(self, deployment_id: str) -> None: ...


class Store(DeploymentStore, WorkQueue, Protocol):
    """The deployer's durable state on one database: deployments and the work queue.
    Implementations: adapters/stores/{memory,sqlite,postgres}. Nothing of Slack: the bot
    keeps its own state (bot/ledger), in tables of its own."""

    async def close(self) -> None: ...
