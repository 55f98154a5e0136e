"""DeployerSettings: the environment contract, read from AISTACK_* variables (and .env) at
start-up. One flat field per variable, checked here, each error naming its variable; the code
reads the groups built from them (`settings.dns`, `settings.worker`: config.py says which)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from ipaddress import IPv4Address
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from deployer.adapters.resilience import RetryPolicy
from deployer.config import (
    DeadlinesConfig,
    DnsConfig,
    DokployConfig,
    HealthConfig,
    LifetimeConfig,
    ResilienceConfig,
    StackConfig,
    StoreConfig,
    WorkerConfig,
)
from deployer.core.lifetime import duration_seconds
from deployer.core.limits import memory_bytes, nano_cpus
from deployer.errors import ConfigError

PREFIX = "AISTACK_"


class DeployerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # Dokploy (settings.dokploy)
    dokploy_url: str
    dokploy_api_key: SecretStr
    # Hetzner Cloud DNS (settings.dns)
    hetzner_url: str = "https://api.hetzner.cloud/v1"
    hetzner_token: SecretStr
    dns_zone: str
    dns_mode: Literal["record", "wildcard"] = "record"
    dns_ttl: int = Field(default=60, ge=60)
    ingress_ip: IPv4Address
    # Stack defaults (settings.stack)
    domain_suffix: str
    stack_image: str = "ghcr.io/sst/opencode:latest"
    # Images a stack may run: comma-separated fnmatch patterns (`ghcr.io/sst/opencode:*`);
    # empty: the default image's repository with any tag; `*`: any image at all
    allowed_images: str = ""
    container_port: int = Field(default=4096, ge=1, le=65535)
    project_pattern: str = "ai-stack-{name}"
    app_pattern: str = "opencode-{name}"
    stack_env: dict[str, str] = Field(default_factory=dict)
    https: bool = True
    # How many stacks one person, and the server, may hold (settings.stack)
    max_stacks_per_user: int = Field(default=2, ge=1)
    max_stacks: int = Field(default=50, ge=1)
    # What one stack's container may use (settings.stack): sent to Dokploy as its limits
    stack_memory: str = "4Gi"
    stack_cpus: str = "2"
    # A stack's URL asks for a login (HTTP basic auth through Dokploy) unless `none`
    stack_auth: Literal["basic", "none"] = "basic"
    # How long a stack lives (settings.lifetime): durations such as 7d, 36h, 90m, 2w
    stack_ttl: str = "7d"  # none: stacks never expire (unless asked for with --for)
    stack_ttl_max: str = "30d"  # the longest --for, or extend, allowed
    expiry_notice: str = "24h"  # the owner is reminded this long before the expiry
    stopped_grace: str = "3d"  # stopped at expiry, destroyed this long after if not started
    lifecycle_interval: float = Field(default=60.0, gt=0)  # seconds between the sweeps
    # Health check (settings.health)
    health_path: str = "/"
    health_statuses: list[int] = Field(default_factory=lambda: [200, 301, 302, 401])
    health_interval: float = Field(default=2.0, gt=0)
    health_timeout: float = Field(default=300.0, gt=0)
    health_scheme: Literal["https", "http"] = "https"
    health_resolve: str | None = None
    # Resilience (settings.resilience)
    http_timeout: float = Field(default=15.0, gt=0)
    retry_attempts: int = Field(default=5, ge=1)
    retry_initial: float = Field(default=1.0, ge=0)
    retry_max: float = Field(default=16.0, ge=0)
    retry_deadline: float = Field(default=120.0, gt=0)
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset: float = Field(default=30.0, gt=0)
    # Deadlines and the polling of a deployment (settings.deadlines)
    poll_initial: float = Field(default=1.0, gt=0)
    poll_max: float = Field(default=5.0, gt=0)
    phase_timeout: float = Field(default=180.0, gt=0)
    deploy_timeout: float = Field(default=900.0, gt=0)
    # Dokploy keeps its deploy queue in memory: a job lost in a restart never shows up
    deploy_start_timeout: float = Field(default=60.0, gt=0)
    dns_poll_initial: float = Field(default=1.0, gt=0)  # settings.dns.poll_initial
    # State (settings.store) and worker (settings.worker)
    database_url: str = "sqlite:///./aistack.db"
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    queue_limit: float = Field(default=600.0, gt=0)
    rollback_retry_initial: float = Field(default=60.0, gt=0)
    rollback_retry_max: float = Field(default=3600.0, gt=0)

    @field_validator("dokploy_url", "hetzner_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("dns_zone", "domain_suffix")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.strip().lower().rstrip(".")
        if not value or " " in value or "." not in value:
            raise ValueError("must be a domain name such as example.com")
        return value

    @field_validator("project_pattern", "app_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if "{name}" not in value:
            raise ValueError("must contain {name}, for example ai-stack-{name}")
        return value

    @field_validator("stack_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        memory_bytes(value)  # raises ValueError saying what would do
        return value

    @field_validator("stack_cpus")
    @classmethod
    def _cpus(cls, value: str) -> str:
        nano_cpus(value)
        return value

    @field_validator("stack_ttl_max", "expiry_notice", "stopped_grace")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_seconds(value)  # raises ValueError saying what would do
        return value

    @field_validator("stack_ttl")
    @classmethod
    def _ttl(cls, value: str) -> str:
        try:
            _ttl_seconds(value)
        except ValueError as exc:
            raise ValueError(f"{exc}, or none (stacks never expire)") from None
        return value

    @field_validator("stack_env")
    @classmethod
    def _env_reaches_the_container(cls, value: dict[str, str]) -> dict[str, str]:
        """Dokploy stores the env as dotenv text and parses it at deploy time: a pair that
        cannot make that trip unchanged is refused at start-up, not found broken in a stack.
        ConfigError, not ValueError: pydantic's own error would quote the values (secrets)."""
        from deployer.adapters.dotenv import unrepresentable

        for key, text in value.items():
            reason = unrepresentable(key, text)
            if reason is not None:
                raise ConfigError(f"invalid configuration: AISTACK_STACK_ENV key {key!r} {reason}")
        return value

    @model_validator(mode="after")
    def _suffix_in_zone(self) -> DeployerSettings:
        if self.domain_suffix != self.dns_zone and not self.domain_suffix.endswith(
            "." + self.dns_zone
        ):
            raise ValueError(
                f"AISTACK_DOMAIN_SUFFIX ({self.domain_suffix}) must be inside "
                f"AISTACK_DNS_ZONE ({self.dns_zone})"
            )
        return self

    @model_validator(mode="after")
    def _heartbeat_inside_lease(self) -> DeployerSettings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                "AISTACK_HEARTBEAT_SECONDS must be shorter than AISTACK_LEASE_SECONDS, "
                "or a healthy worker would lose its lease"
            )
        return self

    @model_validator(mode="after")
    def _ttl_within_max(self) -> DeployerSettings:
        ttl = _ttl_seconds(self.stack_ttl)
        if ttl is not None and ttl > duration_seconds(self.stack_ttl_max):
            raise ValueError(
                f"AISTACK_STACK_TTL_MAX ({self.stack_ttl_max}) must be at least "
                f"AISTACK_STACK_TTL ({self.stack_ttl}): the default lifetime is one people "
                "may ask for"
            )
        return self

    # -- the groups the code reads (config.py): built once each, from the checked fields --
    @cached_property
    def dokploy(self) -> DokployConfig:
        return DokployConfig(url=self.dokploy_url, api_key=self.dokploy_api_key)

    @cached_property
    def dns(self) -> DnsConfig:
        return DnsConfig(
            url=self.hetzner_url, token=self.hetzner_token, zone=self.dns_zone,
            mode=self.dns_mode, ttl=self.dns_ttl, ingress_ip=self.ingress_ip,
            poll_initial=self.dns_poll_initial, domain_suffix=self.domain_suffix,
        )  # fmt: skip

    @cached_property
    def stack(self) -> StackConfig:
        return StackConfig(
            domain_suffix=self.domain_suffix, image=self.stack_image,
            allowed_images=self.allowed_images, container_port=self.container_port,
            project_pattern=self.project_pattern, app_pattern=self.app_pattern,
            env=dict(self.stack_env), https=self.https,
            max_per_user=self.max_stacks_per_user, max_total=self.max_stacks,
            memory_limit=memory_bytes(self.stack_memory), cpu_limit=nano_cpus(self.stack_cpus),
            auth=self.stack_auth,
        )  # fmt: skip

    @cached_property
    def lifetime(self) -> LifetimeConfig:
        return LifetimeConfig(
            ttl=_ttl_seconds(self.stack_ttl),
            ttl_max=duration_seconds(self.stack_ttl_max),
            notice=duration_seconds(self.expiry_notice),
            grace=duration_seconds(self.stopped_grace), interval=self.lifecycle_interval,
        )  # fmt: skip

    @cached_property
    def health(self) -> HealthConfig:
        return HealthConfig(
            path=self.health_path, statuses=tuple(self.health_statuses),
            interval=self.health_interval, timeout=self.health_timeout,
            scheme=self.health_scheme, resolve=self.health_resolve,
            login_key=self.dokploy_api_key if self.stack_auth == "basic" else None,
        )  # fmt: skip

    @cached_property
    def resilience(self) -> ResilienceConfig:
        retry = RetryPolicy(attempts=self.retry_attempts, initial=self.retry_initial,
                            maximum=self.retry_max, deadline=self.retry_deadline)  # fmt: skip
        return ResilienceConfig(
            http_timeout=self.http_timeout, retry=retry,
            breaker_fail_max=self.breaker_fail_max, breaker_reset=self.breaker_reset,
        )  # fmt: skip

    @cached_property
    def deadlines(self) -> DeadlinesConfig:
        return DeadlinesConfig(
            phase_timeout=self.phase_timeout, deploy_timeout=self.deploy_timeout,
            deploy_start_timeout=self.deploy_start_timeout,
            poll_initial=self.poll_initial, poll_max=self.poll_max,
        )  # fmt: skip

    @cached_property
    def worker(self) -> WorkerConfig:
        return WorkerConfig(
            lease_seconds=self.lease_seconds, heartbeat_seconds=self.heartbeat_seconds,
            queue_limit_seconds=self.queue_limit,
            rollback_retry_initial=self.rollback_retry_initial,
            rollback_retry_max=self.rollback_retry_max,
        )  # fmt: skip

    @cached_property
    def store(self) -> StoreConfig:
        return StoreConfig(database_url=self.database_url)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with `update`, checked again like any settings. (Pydantic's own would
        skip the validators and keep the groups built from the old values.)"""
        if not update:
            return super().model_copy(deep=deep)
        return self.model_validate({**self.model_dump(), **update})


def load_settings(**overrides: Any) -> DeployerSettings:
    """Build the settings or raise ConfigError naming every bad variable (never its value)."""
    try:
        return DeployerSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, PREFIX)) from None
    except SettingsError as exc:  # a complex value (dict, list) that is not valid JSON
        field = _field_named_in(exc)
        var = f"{PREFIX}{field.upper()}" if field else "a setting"
        raise ConfigError(
            f'invalid configuration: {var} must be JSON, e.g. {{"KEY": "value"}} or [200, 401]'
        ) from None


def _ttl_seconds(text: str) -> float | None:
    """AISTACK_STACK_TTL in seconds; None for `none`: stacks never expire."""
    return None if text.strip().lower() == "none" else duration_seconds(text)


def _field_named_in(exc: SettingsError) -> str | None:
    """The field a SettingsError is about, read from its text: pydantic-settings names it
    only there (`error parsing value for field "stack_env" from source ...`); the error has
    no field attribute, and its cause is the JSON decoder's error, which names no field."""
    found = re.search(r'field "(\w+)"', str(exc))
    return found.group(1) if found else None


def describe_validation_error(exc: ValidationError, prefix: str) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        # fields read under their own name (an alias such as SLACK_BOT_TOKEN) keep it
        var = field if field.isupper() else f"{prefix}{field.upper()}" if field else "settings"
        problem = "is required but not set" if err["type"] == "missing" else err["msg"]
        problem = problem.removeprefix("Value error, ")
        lines.append(f"{var} {problem}" if field else problem)
    return "invalid configuration: " + "; ".join(lines)
