"""BotSettings: the Slack side of the configuration, read once at start-up."""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from deployer import ConfigError
from deployer.core.access import AccessPolicy
from deployer.settings import PREFIX, describe_validation_error

IdList = Annotated[frozenset[str], NoDecode]
OAUTH_VARIABLES = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


class BotSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    bot_token: SecretStr = Field(validation_alias="SLACK_BOT_TOKEN")
    signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    api_url: str | None = Field(default=None, validation_alias="SLACK_API_URL")
    approvers: IdList = frozenset()
    deployers: IdList = frozenset()
    channels: IdList = frozenset()
    approval_required: bool = True
    allow_self_approval: bool = False
    approval_ttl: float = Field(default=3600.0, gt=0)
    card_interval: float = Field(default=2.0, ge=0)
    post_interval: float = Field(default=1.0, ge=0)
    group_cache_seconds: float = Field(default=300.0, ge=0)
    workers: int = Field(default=8, ge=1, le=200)
    bot_host: str = "0.0.0.0"  # a container serves Slack on every interface
    bot_port: int = Field(default=3000, ge=0, le=65535)

    @field_validator("approvers", "deployers", "channels", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("approvers", "deployers")
    @classmethod
    def _slack_ids(cls, value: frozenset[str]) -> frozenset[str]:
        bad = sorted(v for v in value if not (v[:1] in "UWS" and v[1:].isalnum() and v.isupper()))
        if bad:
            raise ValueError(f"expects Slack user ids (U...) or user group ids (S...), got {bad}")
        return value

    @model_validator(mode="after")
    def _complete(self) -> BotSettings:
        if self.app_token is None and not _set(self.signing_secret):
            raise ValueError(
                "SLACK_SIGNING_SECRET is required in HTTP mode (set SLACK_APP_TOKEN for "
                "Socket Mode instead); without it Bolt answers every request with 500"
            )
        if self.approval_required and not self.approvers:
            raise ValueError(
                "AISTACK_APPROVERS is empty while approval is on: list Slack user or group ids, "
                "or set AISTACK_APPROVAL_REQUIRED=false"
            )
        return self

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    def policy(self) -> AccessPolicy:
        return AccessPolicy(
            approvers=self.approvers,
            deployers=self.deployers,
            channels=self.channels,
            approval_required=self.approval_required,
            allow_self_approval=self.allow_self_approval,
        )


def load_bot_settings(**overrides: Any) -> BotSettings:
    present = [v for v in OAUTH_VARIABLES if os.environ.get(v)]
    if present:
        raise ConfigError(
            f"{' and '.join(present)} set: remove them. aistack is a single-workspace app; with "
            "both set, Bolt silently switches to the OAuth flow and ignores SLACK_BOT_TOKEN"
        )
    try:
        return BotSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, PREFIX)) from None


def _set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())
