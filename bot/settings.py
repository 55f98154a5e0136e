"""BotSettings: the Slack side of the configuration, read once at start-up."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.access import AccessPolicy
from deployer import ConfigError, describe_validation_error

PREFIX = "AISTACK_"  # the same prefix as the deployer's settings: one .env serves both

IdList = Annotated[frozenset[str], NoDecode]
OAUTH_VARIABLES = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
# What a right value looks like, by setting: people paste names (#ops, @bob) where ids go
PEOPLE_IDS = re.compile(r"[UWS][A-Z0-9]{2,}")
PEOPLE_FORM = "Slack user ids (U0123ABCD or W0123ABCD) or user group ids (S0123ABCD)"
CHANNEL_IDS = re.compile(r"[CGD][A-Z0-9]{2,}")
CHANNEL_FORM = "Slack channel ids (C0123ABCD; in Slack: the channel's name -> About -> Channel ID)"
APP_TOKEN_HELP = "create one under Basic Information -> App-Level Tokens with connections:write"


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
    slack_timeout: float = Field(default=30.0, gt=0)  # one Slack Web API call, start checks too
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
    def _people_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _only_ids(value, PEOPLE_IDS, PEOPLE_FORM)

    @field_validator("channels")
    @classmethod
    def _channel_ids(cls, value: frozenset[str]) -> frozenset[str]:
        return _only_ids(value, CHANNEL_IDS, CHANNEL_FORM)

    @field_validator("app_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """`SLACK_APP_TOKEN=` (an empty line in a compose file) means HTTP mode, not a token."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("app_token")
    @classmethod
    def _app_level_token(cls, value: SecretStr | None) -> SecretStr | None:
        """Slack refuses anything but an app-level token for Socket Mode; say so before asking it.
        The messages name the kind of token, never its value."""
        token = value.get_secret_value().strip() if value is not None else "xapp-"
        if token.startswith("xoxb-"):
            raise ValueError(
                "holds a bot token (xoxb-...), the one SLACK_BOT_TOKEN takes; Socket Mode needs "
                f"the app-level token (xapp-...): {APP_TOKEN_HELP}"
            )
        if not token.startswith("xapp-"):
            raise ValueError(f"must be an app-level token starting with xapp-: {APP_TOKEN_HELP}")
        return None if value is None else SecretStr(token)

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


def _only_ids(values: frozenset[str], pattern: re.Pattern[str], form: str) -> frozenset[str]:
    """Names are refused, not looked up: a channel or a person can be renamed, an id cannot."""
    bad = sorted(v for v in values if not pattern.fullmatch(v))
    if bad:
        shown = ", ".join(repr(v[:40]) for v in bad)
        raise ValueError(f"has {shown}: not a Slack id. Give {form}, comma-separated")
    return values


def _set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())
