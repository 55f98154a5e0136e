"""The deployer's settings in groups: each part of the code reads the group it works with.

`DeployerSettings` (settings.py) is the environment contract: flat fields read from the
AISTACK_* variables (and .env), checked there, every error naming its variable. It builds
each group below once, from its already checked fields (`settings.dns`, `settings.stack`,
...). The groups read no environment and hold no defaults of their own (but the worker's idle
pause, which is no setting), so a variable's name, default and rule live in one place.

    dokploy     where Dokploy is and its key
    dns         the Hetzner Cloud DNS zone and how records are named after stacks
    stack       what a stack is made of: names, host, image (and which are allowed), env,
                and whether its URL asks for a login
    lifetime    how long a stack lives, when its owner is reminded, the grace once stopped
    health      how the readiness probe asks (with its own login), and for how long
    resilience  upstream requests: time limit, retry policy, circuit breaker
    deadlines   the saga's phase time limits, and the polling of a Dokploy deployment
    worker      leases, heartbeats, the queue limit, the pauses before a rollback retry
    store       where the state lives
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from ipaddress import IPv4Address
from typing import Literal

from pydantic import SecretStr

from deployer.adapters.resilience import RetryPolicy
from deployer.core.models import StackSpec
from deployer.core.names import validate_stack_name
from deployer.core.probe_login import PROBE_USER, probe_password
from deployer.errors import InvalidStackName


@dataclass(frozen=True, kw_only=True)
class DokployConfig:
    url: str  # no trailing slash
    api_key: SecretStr


@dataclass(frozen=True, kw_only=True)
class DnsConfig:
    url: str  # the Hetzner Cloud API base (AISTACK_HETZNER_URL), no trailing slash
    token: SecretStr
    zone: str
    mode: Literal["record", "wildcard"]
    ttl: int
    ingress_ip: IPv4Address
    poll_initial: float  # the first pause while waiting for a DNS action (AISTACK_DNS_POLL_*)
    domain_suffix: str  # the stacks' suffix, inside the zone: record names are made from it

    @property
    def record_label_suffix(self) -> str:
        """The suffix relative to the zone: `ai` for ai.example.com in example.com."""
        return self.domain_suffix.removesuffix(self.zone).rstrip(".")

    @property
    def wildcard_name(self) -> str:
        """The wildcard RRSet that covers every stack (`*.ai`), relative to the zone."""
        return ".".join(p for p in ("*", self.record_label_suffix) if p)

    def record_name(self, stack: str) -> str:
        """The RRSet name of a stack, relative to the zone (`alice.ai`)."""
        return ".".join(p for p in (stack, self.record_label_suffix) if p) or "@"

    def stack_of_record(self, record: str) -> str | None:
        """The stack an A record is for (`alice.ai` -> `alice`); None for any other record."""
        suffix = self.record_label_suffix
        name = record.removesuffix(f".{suffix}") if suffix else record
        if suffix and name == record:
            return None
        try:
            return validate_stack_name(name, suffix=self.domain_suffix)
        except InvalidStackName:  # www, @, *, a.b ...: not a stack of ours
            return None


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    domain_suffix: str
    image: str  # the default image (AISTACK_STACK_IMAGE)
    allowed_images: str  # AISTACK_ALLOWED_IMAGES as given: `image_patterns` reads it
    container_port: int
    project_pattern: str  # holds {name}
    app_pattern: str  # holds {name}
    env: Mapping[str, str] = field(repr=False)  # the container's (AISTACK_STACK_ENV)
    https: bool
    max_per_user: int  # stacks one person may hold (AISTACK_MAX_STACKS_PER_USER)
    max_total: int  # stacks the server may hold (AISTACK_MAX_STACKS)
    memory_limit: int | None  # bytes a stack's container may use (AISTACK_STACK_MEMORY)
    cpu_limit: int | None  # NanoCPUs it may use (AISTACK_STACK_CPUS)
    auth: Literal["basic", "none"]  # a login on the stack's URL (AISTACK_STACK_AUTH)

    @property
    def image_patterns(self) -> tuple[str, ...]:
        """The patterns an image must match; by default the default image's repository."""
        given = tuple(p.strip() for p in self.allowed_images.split(",") if p.strip())
        return given or (f"{repository(self.image)}:*",)

    def image_refusal(self, image: str) -> str | None:
        """Why `image` may not run here, naming it and the patterns; None when it may. A
        stack runs whatever it is told to: an image from anywhere is anyone's code."""
        patterns = self.image_patterns
        implied = image if _pinned(image) else f"{image}:latest"  # as Docker reads it
        if any(fnmatchcase(ref, p) for ref in (image, implied) for p in patterns):
            return None
        allowed = ", ".join(patterns)
        return f"the image {image} is not allowed here; AISTACK_ALLOWED_IMAGES allows {allowed}"

    def spec_for(self, raw_name: str, image: str | None = None) -> StackSpec:
        name = validate_stack_name(raw_name, suffix=self.domain_suffix)
        return StackSpec(
            name=name,
            project_name=self.project_pattern.format(name=name),
            app_name=self.app_pattern.format(name=name),
            host=f"{name}.{self.domain_suffix}",
            image=image or self.image,
            container_port=self.container_port,
            env=dict(self.env),
            memory_limit=self.memory_limit,
            cpu_limit=self.cpu_limit,
        )


@dataclass(frozen=True, kw_only=True)
class LifetimeConfig:
    """In seconds: AISTACK_STACK_TTL (None: stacks never expire), AISTACK_STACK_TTL_MAX,
    AISTACK_EXPIRY_NOTICE, AISTACK_STOPPED_GRACE, AISTACK_LIFECYCLE_INTERVAL."""

    ttl: float | None  # a new stack's lifetime
    ttl_max: float  # the longest one may ask for (--for, extend)
    notice: float  # the owner is reminded this long before the expiry
    grace: float  # how long a stack stopped at (or after) its expiry stays before it goes
    interval: float  # between two sweeps of the live stacks


@dataclass(frozen=True, kw_only=True)
class HealthConfig:
    path: str
    statuses: tuple[int, ...]  # the answers that mean "up"
    interval: float  # seconds between probes
    timeout: float  # seconds to wait for the stack to answer
    scheme: Literal["https", "http"]
    resolve: str | None  # `IP` or `IP:PORT` to probe instead of resolving the host
    # what the probe's login is derived from (the Dokploy API key); None: stacks have no
    # login (AISTACK_STACK_AUTH=none), the probe sends none
    login_key: SecretStr | None = field(repr=False)

    def login(self, host: str) -> tuple[str, str] | None:
        """aistack's own login on `host` (core/probe_login.py), or None."""
        if self.login_key is None:
            return None
        return PROBE_USER, probe_password(self.login_key.get_secret_value(), host)


@dataclass(frozen=True, kw_only=True)
class ResilienceConfig:
    http_timeout: float  # seconds per upstream request
    retry: RetryPolicy  # per upstream operation (AISTACK_RETRY_*)
    breaker_fail_max: int  # consecutive failures that open an upstream's breaker
    breaker_reset: float  # seconds before an open breaker lets a trial call through


@dataclass(frozen=True, kw_only=True)
class DeadlinesConfig:
    phase_timeout: float  # each phase's limit but deploy and health
    deploy_timeout: float  # the deploy phase's limit (queue + pull + start)
    # Dokploy keeps its deploy queue in memory: a job lost in a restart never shows up
    deploy_start_timeout: float
    poll_initial: float  # the pauses between polls of a Dokploy deployment (x1.25 each)
    poll_max: float


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    lease_seconds: float  # how long a worker holds a job without a heartbeat
    heartbeat_seconds: float  # shorter than the lease
    queue_limit_seconds: float  # a job queued longer is reported as not started
    rollback_retry_initial: float  # the pauses before a failed rollback is tried again
    rollback_retry_max: float
    idle_seconds: float = 1.0  # the poll for new work when nothing wakes the worker (no setting)


@dataclass(frozen=True, kw_only=True)
class StoreConfig:
    database_url: str


def repository(image: str) -> str:
    """The image reference without its tag or digest (a registry port is not a tag)."""
    name = image.partition("@")[0]
    return name.rpartition(":")[0] if _pinned(name) else name


def _pinned(image: str) -> bool:
    """It names a tag or a digest (the last path part's colon; a registry's port is not)."""
    return "@" in image or ":" in image.rpartition("/")[2]
