"""A local fake of the Slack Web API, and a driver that talks to the bot as Slack does.

`FakeSlack` answers `/api/<method>` for the methods the bot uses (arguments checked against
`specs/slack-web-openapi-subset.json`) and captures `respond()` posts at `/hook/<id>`.
For Socket Mode it answers `apps.connections.open` with a `ws://` URL to its own `/link/`
websocket, which says `hello`, carries envelopes to the bot and records their acks.
`SlackDriver` sends signed slash commands and button clicks to the bot's HTTP endpoint.
Behaviour follows ../shared/specs/slack.md §1-§4.7, §6 and §7.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import WSMsgType, web

from bot.sandbox import checks
from bot.sandbox.checks import json_array
from bot.sandbox.slack_views import SlackViews
from bot.sandbox.wire import (
    APP_ID,
    BOT_IDENTITY,
    HOST,
    SCOPES,
    SOCKET_METHOD,
    SOCKET_PARAMS,
    TEAM_ID,
    TS_BASE,
    Call,
    Ephemeral,
    FakeSocket,
    Json,
    Message,
    dm_channel,
    error_reply,
    hello,
    most_in_a_second,
    read_args,
    user_object,
)

# the records and constants the tests and the driver read here, where the fake lives
__all__ = ["TEAM_ID", "TS_BASE", "Call", "Ephemeral", "FakeSlack", "Message"]


class FakeSlack:
    """Serve with `async with fake.serve() as base_url:`; end a test on `fake.violations == []`."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-sandbox",
        app_token: str = "xapp-sandbox",
        users: Mapping[str, str] | None = None,
        usergroups: Mapping[str, Iterable[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.users = dict(users or {})
        self.usergroups = {group: list(members) for group, members in (usergroups or {}).items()}
        self._clock = clock
        self._methods = checks.load_methods() | {SOCKET_METHOD: SOCKET_PARAMS}
        self.views = SlackViews(self.users, self._violate)  # Home tabs, modals, DMs opened
        self._handlers: dict[str, Callable[[Json], Json]] = {
            SOCKET_METHOD: self._open_connection,
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "usergroups.users.list": self._usergroup_users,
            "users.info": self._user_info,
            **self.views.handlers(),
        }
        self._ts = itertools.count(1)
        self._root: str | None = None
        self._changed = asyncio.Event()
        self._tickets = itertools.count(1)
        self._open_tickets: set[str] = set()  # issued by apps.connections.open, not yet used
        self.sockets: list[FakeSocket] = []  # every connection made, oldest first
        self.refuse_sockets = False  # True: the /link/ handshake answers 503, as in an outage
        self.socket_attempts = 0  # websocket handshakes tried, refused ones included
        self.reset()

    def reset(self) -> None:
        """Forget calls, messages, responses, violations and queued faults (ts keep increasing)."""
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[Ephemeral] = []
        self.responses: list[Json] = []
        self.responses_by_hook: dict[str, list[Json]] = {}
        self.violations: list[str] = []
        self._faults: dict[str, deque[tuple[int, str, int]]] = {}
        self.envelopes: dict[str, Json] = {}  # envelope_id -> envelope sent over a socket
        self.acks: dict[str, Json] = {}  # envelope_id -> the bot's ack
        self.views.reset()

    # -- knobs -----------------------------------------------------------------------------------

    def ratelimit_next(self, method: str, count: int, retry_after: int = 1) -> None:
        """Answer the next `count` calls of `method` with HTTP 429 and `Retry-After`."""
        self._faults.setdefault(method, deque()).extend([(429, "ratelimited", retry_after)] * count)

    def fail_next(self, method: str, error: str, count: int = 1) -> None:
        """Answer the next `count` calls of `method` with HTTP 200 `{"ok":false,"error":error}`."""
        self._faults.setdefault(method, deque()).extend([(200, error, 0)] * count)

    def heal(self, method: str) -> None:
        """Answer `method` normally again: the failures still queued for it are dropped."""
        self._faults.pop(method, None)

    async def send_envelope(self, kind: str, payload: Json) -> str:
        """Send a request (`slash_commands`, `interactive`, `events_api`) over the newest open
        socket, as Slack does in Socket Mode; its envelope_id, for `acks`."""
        envelope_id = f"E{len(self.envelopes) + 1:04d}"
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": kind != "events_api", "retry_attempt": 0,
                    "retry_reason": ""}  # fmt: skip
        self.envelopes[envelope_id] = envelope
        await self.open_sockets()[-1].ws.send_json(envelope)
        return envelope_id

    async def disconnect_sockets(self, reason: str = "refresh_requested") -> None:
        """Ask every connected bot to reconnect; like Slack, leave the closing to the bot."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox"}}
        for socket in self.open_sockets():
            await socket.ws.send_json(message)

    # -- inspection ------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def card(self, channel: str, ts: str) -> Message:
        return self.messages[(channel, ts)]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The replies under the message `ts`, oldest first."""
        replies = [m for m in self.messages.values() if m.channel == channel and m.thread_ts == ts]
        return sorted(replies, key=lambda m: m.ts)

    def direct_messages(self, user: str) -> list[Message]:
        """What the app sent `user` in its Messages tab, oldest first."""
        return [m for (channel, _), m in self.messages.items() if channel == dm_channel(user)]

    def open_sockets(self) -> list[FakeSocket]:
        return [s for s in self.sockets if not s.closed]

    def responses_for(self, hook_id: str) -> list[Json]:
        return self.responses_by_hook.get(hook_id, [])

    def max_posts_per_second(self, channel: str) -> int:
        """The most chat.postMessage calls accepted for `channel` within any 1-second window."""
        calls = self.calls_to("chat.postMessage")
        return most_in_a_second(c.at for c in calls if c.error is None
                                and c.args.get("channel") == channel)  # fmt: skip

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds, re-checked after every call and hook post.

        Wrap it in `asyncio.timeout(...)` so a test that waits in vain fails fast."""
        while not predicate():
            await self._changed.wait()

    # -- serving ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("GET", "/api/{method}", self._api)
        app.router.add_route("POST", "/api/{method}", self._api)
        app.router.add_post("/hook/{hook_id}", self._hook)
        app.router.add_get("/link/", self._socket)
        return app

    @asynccontextmanager
    async def serve(self, host: str = HOST, port: int = 0) -> AsyncIterator[str]:
        """Yield the base URL for `AsyncWebClient(base_url=...)`, ending in `/api/`."""
        runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            self._root = f"http://{host}:{runner.addresses[0][1]}"
            yield f"{self._root}/api/"
        finally:
            self._root = None
            for socket in self.open_sockets():  # else the runner waits for them to end
                await socket.ws.close()
            await runner.cleanup()

    def hook_url(self, hook_id: str) -> str:
        if self._root is None:
            raise RuntimeError("FakeSlack is not being served")
        return f"{self._root}/hook/{hook_id}"

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _violate(self, where: str, problems: Iterable[str]) -> None:
        self.violations += [f"{where}: {p}" for p in problems]

    # -- HTTP handlers ---------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await read_args(request)
        call = Call(method, args or {}, self._clock())
        self.calls.append(call)
        if args is None:
            self._violate(method, ["body is not a JSON object"])
            status, body, headers = 200, error_reply("invalid_json"), dict[str, str]()
        else:
            status, body, headers = self._answer(method, args, request.headers.get("Authorization"))
        call.status, call.error = status, None if body["ok"] else body["error"]
        self._notify()
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self, method: str, args: Json, auth: str | None
    ) -> tuple[int, Json, dict[str, str]]:
        handler = self._handlers.get(method)
        if handler is None or method not in self._methods:
            return 200, error_reply("unknown_method"), {}
        bearer = auth.removeprefix("Bearer ").strip() if auth else None
        token = bearer or args.get("token")
        if not token:
            return 200, error_reply("not_authed"), {}
        if method == SOCKET_METHOD and not bearer:
            self._violate(method, ["the app-level token goes in the Authorization header"])
            return 200, error_reply("not_authed"), {}
        if token != (self.app_token if method == SOCKET_METHOD else self.bot_token):
            wrong_kind = token in (self.bot_token, self.app_token)
            return 200, error_reply("not_allowed_token_type" if wrong_kind else "invalid_auth"), {}
        faults = self._faults.get(method)
        if faults:
            status, error, retry_after = faults.popleft()
            return (
                status,
                error_reply(error),
                {"Retry-After": str(retry_after)} if status == 429 else {},
            )
        problems = checks.check_arguments(self._methods[method], args, token_in_header=bool(bearer))
        if problems:
            self._violate(method, problems)
            return (
                200,
                error_reply("invalid_arguments", response_metadata={"messages": problems}),
                {},
            )
        headers = {"x-oauth-scopes": SCOPES} if method == "auth.test" else {}
        return 200, handler({k: v for k, v in args.items() if k != "token"}), headers

    async def _hook(self, request: web.Request) -> web.Response:
        hook_id = request.match_info["hook_id"]
        where = f"response_url {hook_id}"
        try:
            payload: Any = await request.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            self._violate(where, ["body is not a JSON object"])
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(payload)
        used = self.responses_by_hook.setdefault(hook_id, [])
        used.append(payload)
        error, problems = checks.response_problems(payload, uses=len(used))
        self._violate(where, problems)
        self._notify()
        return web.Response(status=400 if error else 200, text=error or "ok")

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        """The Socket Mode websocket: one connection per ticket, `hello` first, acks recorded."""
        ticket = request.query.get("ticket", "")
        self.socket_attempts += 1
        self._notify()
        if self.refuse_sockets:
            return web.Response(status=503, text="service_unavailable")
        if ticket not in self._open_tickets:
            return web.Response(status=401, text="invalid_ticket")
        self._open_tickets.discard(ticket)
        ws = web.WebSocketResponse()  # answers the client's pings itself
        await ws.prepare(request)
        socket = FakeSocket(ws, ticket)
        self.sockets.append(socket)
        await ws.send_json(hello(len(self.open_sockets())))
        self._notify()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._received(socket, message.data)
        finally:
            socket.closed = True
            self._notify()
        return ws

    def _received(self, socket: FakeSocket, data: str) -> None:
        try:
            message: Any = json.loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict) or message.get("envelope_id") not in self.envelopes:
            self._violate("socket", [f"not an ack of an envelope sent: {data[:80]!r}"])
            return
        socket.received.append(message)
        self.acks[message["envelope_id"]] = message
        self._notify()

    # -- methods (arguments already checked against the spec) ------------------------------------

    def _open_connection(self, args: Json) -> Json:
        if self._root is None:
            raise RuntimeError("FakeSlack is not being served")
        ticket = f"ticket-{next(self._tickets)}"
        self._open_tickets.add(ticket)
        root = self._root.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{root}/link/?ticket={ticket}&app_id={APP_ID}"}

    def _auth_test(self, args: Json) -> Json:
        return {"ok": True, "url": "https://sandbox.slack.com/", **BOT_IDENTITY}

    def _post_message(self, args: Json) -> Json:
        channel, thread_ts = dm_channel(args["channel"]), args.get("thread_ts")
        failed = self._check_message("chat.postMessage", args)
        if failed:
            return failed
        parent = self.messages.get((channel, thread_ts or ""))
        if thread_ts and (parent is None or parent.thread_ts):
            problem = f"thread_ts {thread_ts} is not a parent message in {channel}"
            self._violate("chat.postMessage", [problem])
        text, blocks = args.get("text", ""), json_array(args.get("blocks", [])) or []
        message = Message(channel, self._next_ts(), text, blocks, thread_ts)
        self.messages[(channel, message.ts)] = message
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.to_slack()}

    def _update(self, args: Json) -> Json:
        message = self.messages.get((args["channel"], args["ts"]))
        if message is None:
            return error_reply("message_not_found")
        failed = self._check_message("chat.update", args)
        if failed:
            return failed
        if "text" in args and "blocks" not in args:
            problem = "text without blocks removes the message's blocks; send both"
            self._violate("chat.update", [problem])
        message.history.append((message.text, message.blocks))
        message.text = args.get("text", message.text)
        if "blocks" in args:
            message.blocks = json_array(args["blocks"]) or []
        elif "text" in args:
            message.blocks = []
        answer = {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text}
        return answer | {"message": {"text": message.text, "blocks": message.blocks}}

    def _post_ephemeral(self, args: Json) -> Json:
        failed = self._check_message("chat.postEphemeral", args)
        if failed:
            return failed
        blocks = json_array(args.get("blocks", [])) or []
        channel, user, text = args["channel"], args["user"], args.get("text", "")
        ephemeral = Ephemeral(channel, user, text, blocks, self._next_ts(), args.get("thread_ts"))
        self.ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ephemeral.message_ts}

    def _usergroup_users(self, args: Json) -> Json:
        members = self.usergroups.get(args["usergroup"])
        if members is None:
            return error_reply("no_such_subteam")
        return {"ok": True, "users": list(members)}

    def _user_info(self, args: Json) -> Json:
        user_id = args.get("user", "")
        is_bot = user_id == BOT_IDENTITY["user_id"]
        name = BOT_IDENTITY["user"] if is_bot else self.users.get(user_id)
        if name is None:
            return error_reply("user_not_found")
        return {"ok": True, "user": user_object(user_id, name, is_bot=is_bot)}

    def _check_message(self, method: str, args: Json) -> Json | None:
        """Slack's own refusals as an error answer; every problem recorded as a violation."""
        error, problems = checks.message_problems(args)
        self._violate(method, problems)
        if error == "invalid_blocks":
            errors = [p for p in problems if "[json-pointer:" in p]
            return error_reply(error, errors=errors, response_metadata={"messages": errors})
        return None if error is None else error_reply(error)

    def _next_ts(self) -> str:
        micros = next(self._ts) * 100
        return f"{TS_BASE + micros // 1_000_000}.{micros % 1_000_000:06d}"
