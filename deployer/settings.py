"""DeployerSettings: one typed object, read from AISTACK_* variables (and .env) at start-up."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from ipaddress import IPv4Address
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from deployer.core.models import StackSpec
from deployer.core.names import validate_stack_name
from deployer.errors import ConfigError, InvalidStackName

PREFIX = "AISTACK_"


class DeployerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", extra="ignore", frozen=True
    )

    # Dokploy
    dokploy_url: str
    dokploy_api_key: SecretStr
    # Hetzner Cloud DNS
    hetzner_url: str = "https://api.hetzner.cloud/v1"
    hetzner_token: SecretStr
    dns_zone: str
    dns_mode: Literal["record", "wildcard"] = "record"
    dns_ttl: int = Field(default=60, ge=60)
    ingress_ip: IPv4Address
    # Stack defaults
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
    # Health check
    health_path: str = "/"
    health_statuses: list[int] = Field(default_factory=lambda: [200, 301, 302, 401])
    health_interval: float = Field(default=2.0, gt=0)
    health_timeout: float = Field(default=300.0, gt=0)
    health_scheme: Literal["https", "http"] = "https"
    health_resolve: str | None = None
    # Resilience
    http_timeout: float = Field(default=15.0, gt=0)
    retry_attempts: int = Field(default=5, ge=1)
    retry_initial: float = Field(default=1.0, ge=0)
    retry_max: float = Field(default=16.0, ge=0)
    retry_deadline: float = Field(default=120.0, gt=0)
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset: float = Field(default=30.0, gt=0)
    poll_initial: float = Field(default=1.0, gt=0)
    poll_max: float = Field(default=5.0, gt=0)
    phase_timeout: float = Field(default=180.0, gt=0)
    deploy_timeout: float = Field(default=900.0, gt=0)
    # Dokploy keeps its deploy queue in memory: a job lost in a restart never shows up
    deploy_start_timeout: float = Field(default=60.0, gt=0)
    dns_poll_initial: float = Field(default=1.0, gt=0)
    # State and worker
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

    @property
    def record_label_suffix(self) -> str:
        """The suffix relative to the zone: `ai` for ai.example.com in example.com."""
        return self.domain_suffix.removesuffix(self.dns_zone).rstrip(".")

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

    @property
    def image_patterns(self) -> tuple[str, ...]:
        """The patterns an image must match; by default the default image's repository."""
        given = tuple(p.strip() for p in self.allowed_images.split(",") if p.strip())
        return given or (f"{repository(self.stack_image)}:*",)

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
            image=image or self.stack_image,
            container_port=self.container_port,
            env=dict(self.stack_env),
        )


def repository(image: str) -> str:
    """The image reference without its tag or digest (a registry port is not a tag)."""
    name = image.partition("@")[0]
    return name.rpartition(":")[0] if _pinned(name) else name


def _pinned(image: str) -> bool:
    """It names a tag or a digest (the last path part's colon; a registry's port is not)."""
    return "@" in image or ":" in image.rpartition("/")[2]


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
