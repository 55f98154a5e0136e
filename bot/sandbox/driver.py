"""SlackDriver: signed slash commands and button clicks, sent to the bot as Slack sends them.

Used by the tests and by `make demo` (see ../shared/specs/slack.md §1-§2).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp

from bot.sandbox.slack import TEAM_ID, TS_BASE

Json = dict[str, Any]


@dataclass
class DriverResponse:
    status: int
    body: str
    response_url_hook: str | None = None  # find what respond() sent: fake.responses_for(hook)

    def json(self) -> Any | None:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class SlackDriver:
    """Signed slash commands and button clicks, POSTed to the bot's Request URL as Slack does."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        *,
        response_base: str,
        team_id: str = TEAM_ID,
        api_app_id: str = "A0AISTACK",
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.names = dict(names or {"C0OPS": "ops"})  # user/channel id -> name
        self._hook_root = response_base.rstrip("/").removesuffix("/api")
        self._triggers = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def signed_headers(
        self, body: str, *, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """Slack's request signature (§1): `v0=` + HMAC-SHA256 of `v0:<ts>:<body>`."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        key = (self.signing_secret if secret is None else secret).encode()
        mac = hmac.new(key, f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={mac}",
            "Content-Type": "application/x-www-form-urlencoded",
        }

    async def post_raw(self, body: str, headers: Mapping[str, str]) -> DriverResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.bot_url, data=body.encode(), headers=headers) as resp:
            return DriverResponse(resp.status, await resp.text())

    async def command(
        self, user: str, text: str, channel: str = "C0OPS", *, trigger_id: str | None = None
    ) -> DriverResponse:
        """`/aistack <text>` typed by `user` in `channel` (§2.1)."""
        hook = f"cmd-{secrets.token_hex(6)}"
        fields = {
            "team_id": self.team_id,
            "channel_id": channel,
            "channel_name": self._name(channel),
            "user_id": user,
            "user_name": self._name(user),
            "command": "/aistack",
            "text": text,
            "api_app_id": self.api_app_id,
            "response_url": f"{self._hook_root}/hook/{hook}",
            "trigger_id": trigger_id or self._trigger_id(),
            "is_enterprise_install": "false",
        }
        return await self._send(urlencode(fields), hook)

    async def click(self, user: str, action_id: str, value: str, **where: Any) -> DriverResponse:
        """A `block_actions` click on a button (§2.2), `where` as `click_payload` takes it;
        pass `message=fake.card(...).to_slack()`."""
        hook = f"act-{secrets.token_hex(6)}"
        payload = self.click_payload(user, action_id, value, hook=hook, **where)
        return await self._send(urlencode({"payload": json.dumps(payload)}), hook)

    def click_payload(
        self,
        user: str,
        action_id: str,
        value: str,
        *,
        channel: str,
        message_ts: str,
        hook: str,
        block_id: str | None = None,
        trigger_id: str | None = None,
        message: Mapping[str, Any] | None = None,
        ephemeral: bool = False,
    ) -> Json:
        """The `block_actions` payload of a click, as HTTP or a Socket Mode envelope carries it."""
        name = self._name(user)
        action: Json = {"type": "button", "action_id": action_id, "value": value}
        action |= {"block_id": block_id or f"block-{action_id}", "action_ts": f"{time.time():.6f}"}
        action |= {"text": {"type": "plain_text", "text": action_id}}
        shown = dict(message or {"type": "message", "ts": message_ts, "text": "", "blocks": []})
        container: Json = {"type": "message", "message_ts": message_ts, "channel_id": channel}
        container |= {"is_ephemeral": ephemeral}
        if shown.get("thread_ts"):
            container["thread_ts"] = shown["thread_ts"]
        payload: Json = {
            "type": "block_actions",
            "api_app_id": self.api_app_id,
            "token": "sandbox-verification-token",
            "trigger_id": trigger_id or self._trigger_id(),
            "user": {"id": user, "username": name, "name": name, "team_id": self.team_id},
            "team": {"id": self.team_id, "domain": "sandbox"},
            "is_enterprise_install": False,
            "container": container,
            "channel": {"id": channel, "name": self._name(channel)},
            "response_url": f"{self._hook_root}/hook/{hook}",
            "state": {"values": {}},
            "actions": [action],
        }
        if not ephemeral:
            payload["message"] = shown
        return payload

    async def _send(self, body: str, hook: str) -> DriverResponse:
        response = await self.post_raw(body, self.signed_headers(body))
        response.response_url_hook = hook
        return response

    def _name(self, some_id: str) -> str:
        return self.names.get(some_id, some_id.lower())

    def _trigger_id(self) -> str:
        return f"{TS_BASE}.{next(self._triggers)}.{secrets.token_hex(8)}"
