"""The Bolt app and the aiohttp web app around it: /slack/events, /healthz, /readyz, /metrics."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from deployer import AistackError, Clock, Store

log = structlog.get_logger("aistack.bot.app")
READY_CACHE_SECONDS = 30.0


def build_bolt(client: AsyncWebClient) -> AsyncApp:
    app = AsyncApp(
        client=client,
        # Signatures are checked once, at the door of /slack/events (build_web), before any
        # parsing; Socket Mode requests are not signed at all.
        request_verification_enabled=False,
        process_before_response=False,
    )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error(
            "listener failed", error=repr(error), type=body.get("type") or body.get("command")
        )

    return app


class Readiness:
    """Ready when the store answers and Slack accepts our token (checked at most every 30 s),
    and in Socket Mode while the websocket is up: without it no request reaches the bot."""

    def __init__(
        self,
        store: Store,
        client: AsyncWebClient,
        accepting: Callable[[], bool],
        clock: Clock,
        socket: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._client = client
        self._accepting = accepting
        self._socket = socket
        self._slack_ok_at = float("-inf")

    async def check(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if not self._accepting():
            problems["worker"] = "shutting down"
        if self._socket is not None and not await self._socket():
            problems["socket"] = "not connected to Slack (Socket Mode)"
        try:
            await self._store.latest("readyz-probe")
        except AistackError as exc:
            problems["store"] = str(exc)
        if self._clock.monotonic() - self._slack_ok_at > READY_CACHE_SECONDS:
            try:
                await self._client.auth_test()
                self._slack_ok_at = self._clock.monotonic()
            except Exception as exc:  # any failure means "not ready", said in the body
                problems["slack"] = type(exc).__name__
        return problems


def build_web(
    bolt: AsyncApp | None, readiness: Readiness, metrics: Metrics, signing_secret: str | None
) -> web.Application:
    # Bolt parses a body before it checks its signature, so a forged malformed body would be
    # a 500 with a traceback: check at the door, then let Bolt do the rest.
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
        assert bolt is not None and verifier is not None
        body = await request.text()
        if not _signed(verifier, body, request.headers):
            return web.json_response({"error": "invalid request"}, status=401)
        if not _well_formed(body):  # Bolt would answer it with a 500
            return web.json_response({"error": "malformed request"}, status=400)
        try:
            response = await bolt.async_dispatch(await to_bolt_request(request))
        except Exception as exc:  # signed but malformed: Slack never sends it
            log.warning("malformed Slack request", error=type(exc).__name__)
            return web.json_response({"error": "malformed request"}, status=400)
        return await to_aiohttp_response(response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness.check()
        return web.json_response({"ok": not problems, **problems}, status=503 if problems else 200)

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip

    web_app = web.Application()
    routes: list[web.RouteDef] = [
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.get("/metrics", prometheus),
    ]
    if bolt is not None:  # HTTP mode; Socket Mode receives over its websocket instead
        routes.append(web.post("/slack/events", slack_events))
    web_app.add_routes(routes)
    return web_app


def _signed(verifier: SignatureVerifier, body: str, headers: Mapping[str, str]) -> bool:
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp.isdigit() or not signature:
        return False
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


def _well_formed(body: str) -> bool:
    """An interaction payload is a JSON object; a button click's actions carry ids."""
    form = parse_qs(body)
    if "payload" not in form:
        return True  # a slash command: form fields Bolt reads with defaults
    try:
        payload = json.loads(form["payload"][0])
    except ValueError:
        return False
    if not isinstance(payload, dict):
        return False
    if payload.get("type") != "block_actions":
        return True
    actions = payload.get("actions")
    return (
        isinstance(actions, list)
        and bool(actions)
        and all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions)
    )
