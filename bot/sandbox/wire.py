"""What the Slack fake records (calls, messages, ephemerals, Socket Mode connections) and
how it reads a request and words an answer: the fake's parts that hold no behaviour."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.sandbox.checks import ANY_METHOD, Param

HOST = "127.0.0.1"
TEAM_ID = "T0SANDBOX"
BOT_IDENTITY = {
    "team": "Sandbox",
    "user": "aistack",
    "team_id": TEAM_ID,
    "user_id": "U0AISTACK",
    "bot_id": "B0AISTACK",
}
SCOPES = "commands,chat:write,chat:write.public,users:read,usergroups:read"
TS_BASE = 1_700_000_000
APP_ID = "A0AISTACK"
# Not in the OpenAPI subset, nor in Slack's published v2 document: from the method's reference
# page. One argument, the app-level token, and it must come in the Authorization header.
SOCKET_METHOD = "apps.connections.open"
SOCKET_PARAMS = {"token": Param("token", "string", True)} | ANY_METHOD

Json = dict[str, Any]


@dataclass
class Call:
    method: str
    args: Json
    at: float  # monotonic seconds when it arrived
    status: int = 200
    error: str | None = None  # None when answered ok


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[Json]
    thread_ts: str | None = None
    # earlier versions as (text, blocks), oldest first
    history: list[tuple[str, list[Json]]] = field(default_factory=list)

    def to_slack(self) -> Json:
        """The message as Slack shows it (API answers, interaction payloads)."""
        out: Json = {"type": "message", "ts": self.ts, "text": self.text, "blocks": self.blocks}
        out |= {"user": BOT_IDENTITY["user_id"], "bot_id": BOT_IDENTITY["bot_id"]}
        return out | ({"thread_ts": self.thread_ts} if self.thread_ts else {})


@dataclass
class FakeSocket:
    """One Socket Mode connection, as Slack's end of it sees it."""

    ws: web.WebSocketResponse
    ticket: str
    received: list[Json] = field(default_factory=list)  # what the bot sent: acks, in order
    closed: bool = False


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[Json]
    message_ts: str
    thread_ts: str | None = None


async def read_args(request: web.Request) -> Json | None:
    """Query parameters merged with a JSON or form body; None when a JSON body is not an object."""
    args: Json = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return args
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return None
        return args | body if isinstance(body, dict) else None
    form = await request.post()
    return args | {k: v for k, v in form.items() if isinstance(v, str)}


def hello(connections: int) -> Json:
    info = {"host": "sandbox", "build_number": 1, "approximate_connection_time": 18060}
    return {"type": "hello", "num_connections": connections, "debug_info": info,
            "connection_info": {"app_id": APP_ID}}  # fmt: skip


def error_reply(error: str, **extra: Any) -> Json:
    return {"ok": False, "error": error, **extra}


def dm_channel(channel: str) -> str:
    """A user id given as the channel posts to the app's DM with that user (its Messages
    tab); Slack answers with the DM's own id, a D... channel."""
    return f"D{channel[1:]}" if channel[:1] in ("U", "W") else channel


def user_object(user_id: str, name: str, *, is_bot: bool = False) -> Json:
    """A user as users.info gives it: the fields our clients read, the rest at their default."""
    profile: Json = dict.fromkeys(("avatar_hash", "title", "phone", "skype"), "")
    profile |= {"real_name": name, "real_name_normalized": name, "display_name": name}
    profile |= {"display_name_normalized": name, "status_text": "", "status_emoji": ""}
    profile["fields"] = None
    user: Json = {"id": user_id, "team_id": TEAM_ID, "name": name.lower().replace(" ", ".")}
    user |= {"real_name": name, "deleted": False, "is_bot": is_bot, "is_app_user": False}
    user |= {"is_admin": False, "tz": "Etc/UTC", "updated": TS_BASE, "profile": profile}
    return user


def most_in_a_second(moments: Iterable[float]) -> int:
    """The most of `moments` (seconds) that fall within any 1-second window."""
    times = sorted(moments)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best
