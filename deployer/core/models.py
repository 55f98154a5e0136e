"""The domain's values: what a stack is, what a deployment holds, what happened when."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from deployer.core.events import EventKind
from deployer.core.lifetime import span, when
from deployer.core.states import DeploymentState, Operation, PhaseState


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class StackSpec(Frozen):
    """Everything needed to build one stack; derived from settings and the request."""

    name: str
    project_name: str
    app_name: str
    host: str
    image: str
    container_port: int
    env: dict[str, str] = Field(default_factory=dict)
    memory_limit: int | None = None  # bytes (AISTACK_STACK_MEMORY); None: no limit
    cpu_limit: int | None = None  # NanoCPUs (AISTACK_STACK_CPUS); None: no limit

    @property
    def url(self) -> str:
        return f"https://{self.host}"


class Deployment(Frozen):
    """One request to deploy or destroy a stack, and where it stands."""

    id: str = Field(default_factory=new_id)
    stack: str
    operation: Operation = Operation.DEPLOY
    state: DeploymentState = DeploymentState.REQUESTED
    version: int = 0
    requester: str = ""
    approver: str | None = None
    # Where the request came from, stored with it: its answer goes there
    channel: str | None = None
    spec: StackSpec
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    error: str | None = None
    leftovers: tuple[str, ...] = ()
    # Times it entered rollback_failed (a rollback or teardown that left things behind): the
    # pause before its next automatic retry grows with it. The store counts it.
    rollback_attempts: int = 0
    # How long the stack lives from this deployment's success (seconds): a new stack, a
    # deploy or start asked `--for`; None keeps the expiry it has.
    lifetime: float | None = None
    # The release this deployment puts back (a roll back); None for anything else.
    restores: int | None = None
    # The release it became, numbered per stack from 1: the store sets it when a deploy
    # succeeds.
    release: int | None = None


class PhaseRecord(Frozen):
    """The checkpoint of one phase of one deployment."""

    deployment_id: str
    name: str
    state: PhaseState = PhaseState.PENDING
    attempt: int = 0
    outputs: dict[str, str] = Field(default_factory=dict)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class Event(Frozen):
    """One thing that happened to a deployment: audited, logged, and sent to the notifier."""

    deployment_id: str
    stack: str
    kind: EventKind  # stored as its string; read back as the member
    at: datetime = Field(default_factory=utcnow)
    actor: str = "aistack"
    phase: str | None = None
    state: str | None = None
    duration: float | None = None
    index: int | None = None
    total: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    # Its place in the store's log (the events table's id), once stored: the Slack thread's
    # outbox is a cursor on it. None on an event not read back from a store.
    seq: int | None = None


class ProjectView(Frozen):
    """What Dokploy holds for one stack, read live (status and list)."""

    project_id: str
    project_name: str
    environment_id: str | None = None
    application_id: str | None = None
    app_name: str | None = None
    application_status: str | None = None
    created_at: str | None = None


class Probe(Frozen):
    """What a stack's URL answered to one request (`status --check`)."""

    ready: bool  # an accepted answer (AISTACK_HEALTH_STATUSES)
    detail: str  # `HTTP 401`, `connection refused (...)`, ...
    at: datetime

    @property
    def words(self) -> str:
        """`answers (401: login required)`, `answers (200)`, `does not answer: ...`."""
        if not self.ready:
            return f"does not answer: {self.detail}"
        code = self.detail.removeprefix("HTTP ")
        return f"answers ({code}: login required)" if code == "401" else f"answers ({code})"


class StackStatus(Frozen):
    """A stack as the operator sees it: our record joined with what the upstreams hold."""

    name: str
    url: str
    deployment: Deployment | None  # the latest, whatever its state
    owner: str | None = None  # who deployed it live (None: the records say it is not live)
    phases: tuple[PhaseRecord, ...] = ()
    live: ProjectView | None = None
    dns_values: tuple[str, ...] | None = None
    drift: tuple[str, ...] = ()
    # What the live row knows (all None when the stack is not live)
    release: int | None = None  # the number of the release it runs
    up_since: datetime | None = None  # when it last started running (None: stopped)
    stopped_at: datetime | None = None  # since when it is stopped (None: running)
    expires_at: datetime | None = None  # when it is stopped at expiry (None: never)
    probe: Probe | None = None  # asked for (`--check`) and running: its URL's answer now

    def life(self, now: datetime | None = None) -> str:
        """`running for 3 h · release 4 · expires 2026-12-07 10:00 UTC`, or `stopped since
        ...`; "" when the stack is not live (or nothing is known of how it runs)."""
        known = (self.up_since, self.stopped_at, self.release, self.expires_at)
        if self.owner is None or all(x is None for x in known):
            return ""
        if self.stopped_at is not None:
            parts = [f"stopped since {when(self.stopped_at)}"]
        elif self.up_since is not None and now is not None:
            parts = [f"running for {span((now - self.up_since).total_seconds())}"]
        else:
            parts = [f"running since {when(self.up_since)}" if self.up_since else "running"]
        if self.release is not None:
            parts.append(f"release {self.release}")
        if self.expires_at is not None:
            parts.append(f"expires {when(self.expires_at)}")
        return " · ".join(parts)

    def belongs_to(self, user: str) -> bool:
        """The user owns it live, or is the one asking for it right now."""
        return user in (self.owner, self.deployment.requester if self.deployment else None)
