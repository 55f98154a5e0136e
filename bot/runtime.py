"""Assembles a running bot and shuts it down cleanly.

Start: the store and the card ledger, one Slack client (auth.test first: a bad token or an
unreachable Slack fails here, in one line, not on the first click; in Socket Mode
apps.connections.open next, for the app token), the deployer, the Bolt app, the web app, the
workers, the expiry sweep, the lifecycle sweep (reminders, stops at expiry, destroys after
the grace: deployer/expiry.py) and the card sweep (cards and thread replies a dead process
owed: bot/notifier.py).
Stop: take no more work, interrupt running sagas (their phases checkpoint), mark their cards
"paused", let the cards finish writing, close everything. The next start, or another
replica, resumes those deployments on the same cards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Readiness, build_bolt, build_web
from bot.credentials import LoginFailures, SlackCourier
from bot.directory import Directory
from bot.ledger import CardLedger, open_ledger
from bot.listeners import Listeners
from bot.metrics import Metrics, MetricsNotifier
from bot.notifier import Notifiers, SlackNotifier
from bot.outbox import SlackLeases, owner_id
from bot.settings import BotSettings
from bot.slack_api import LedgerSlots, SlackWriter
from bot.tasks import Tasks
from deployer import (
    Clock,
    ConfigError,
    Deployer,
    DeployerSettings,
    Store,
    SystemClock,
    Worker,
    open_deployer,
    open_store,
)

log = structlog.get_logger("aistack.bot")
SHUTDOWN_GRACE = 10.0
CARD_SWEEP_SECONDS = 5.0
TICKET = re.compile(r"ticket=[^&\s'\"]*")  # a websocket URL's ticket opens a connection
T = TypeVar("T")


@dataclass
class Bot:
    settings: BotSettings
    deployer: Deployer
    bolt: AsyncApp
    web: web.Application
    notifier: SlackNotifier
    slack: SlackWriter
    metrics: Metrics
    tasks: Tasks
    worker: Worker | None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    socket: SocketLink | None = None  # Socket Mode only


class SocketLink:
    """Socket Mode: the websocket to Slack, whether it is up (for /readyz), and one log line
    per change instead of the SDK's tracebacks. The SDK client reconnects by itself."""

    def __init__(self, bolt: AsyncApp, app_token: str, url: str | None) -> None:
        self._handler = AsyncSocketModeHandler(bolt, app_token, logger=_sdk_logger())
        self._client = self._handler.client
        self._client.wss_uri = url  # the start check's URL: one apps.connections.open, not two
        self._client.on_message_listeners.append(self._on_frame)
        self._hello_on: object = None  # the websocket Slack last said hello on

    async def connected(self) -> bool:
        """Open, and Slack said hello on it: requests only flow after the hello."""
        client = self._client
        return await client.is_connected() and self._hello_on is client.current_session

    async def run(self) -> None:
        await self._handler.connect_async()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._handler.close_async()  # type: ignore[no-untyped-call]

    async def _on_frame(self, frame: aiohttp.WSMessage) -> None:
        try:
            message = json.loads(frame.data)
        except (TypeError, ValueError):
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "hello":  # received on the current session: see receive_messages
            self._hello_on = self._client.current_session
            log.info("Socket Mode connected", connections=message.get("num_connections"))
        elif kind == "disconnect":
            self._hello_on = None
            log.info("Slack asked the bot to reconnect", reason=message.get("reason"))


class _OneLine(logging.Handler):
    """The SDK's log records as one structlog line each: no traceback, no websocket ticket."""

    def emit(self, record: logging.LogRecord) -> None:
        detail = TICKET.sub("ticket=***", record.getMessage())[:300]
        log.log(record.levelno, "Socket Mode", detail=detail)


def _sdk_logger() -> logging.Logger:
    sdk = logging.getLogger("aistack.bot.socket_mode")
    sdk.setLevel(logging.WARNING)  # INFO is every session swap; our own lines say what matters
    sdk.propagate = False
    if not sdk.handlers:
        sdk.addHandler(_OneLine())
    return sdk


@asynccontextmanager
async def running_bot(
    settings: BotSettings,
    engine: DeployerSettings,
    *,
    store: Store | None = None,
    ledger: CardLedger | None = None,
    clock: Clock | None = None,
    engine_clock: Clock | None = None,
    slack_clock: Clock | None = None,
    workers: int = 8,
    post_interval: float = 1.0,
) -> AsyncIterator[Bot]:
    """The bot, started; stopped when the block ends. One clock for the whole process
    (`clock`; the system's by default): tests may give the engine's waits (`engine_clock`)
    or Slack's pacing (`slack_clock`) a clock of their own."""
    clock = clock or SystemClock()
    owned = AsyncExitStack()
    store, ledger = await _databases(engine, store, ledger, clock, owned)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.slack_timeout))
    # listener work, card writers, and the long-running loops: each stopped its own way
    tasks, cards_tasks, background = Tasks(), Tasks(), Tasks()
    try:
        client = await _slack_client(settings, session)
        socket_url = await _socket_url(client, settings) if settings.socket_mode else None
        metrics = Metrics()
        metrics.track_tasks(lambda: len(tasks) + len(cards_tasks) + len(background))
        slack = SlackWriter(client, post_interval=post_interval, calls=metrics.slack_calls,
                            clock=slack_clock or clock,
                            slots=LedgerSlots(ledger, clock))  # fmt: skip
        # `deployer` is opened below, with this notifier: cards ask it for plans (and whose
        # stack a request would take over) only later
        cards = SlackNotifier(slack, store, ledger, cards_tasks, interval=settings.card_interval,
                              clock=clock, approval_ttl=settings.approval_ttl,
                              plan_of=lambda spec, op, back: deployer.plan(spec, op, back),
                              takeover_of=lambda dep: deployer.takeover(dep),
                              leases=SlackLeases(ledger, owner_id(), clock=clock))  # fmt: skip
        notifier = Notifiers(MetricsNotifier(metrics), cards, LoginFailures(slack, store))
        async with open_deployer(
            engine, notifier, store=store, clock=engine_clock or clock,
            courier=SlackCourier(slack),  # logins go to their owners by direct message
        ) as deployer:  # fmt: skip
            bot = _assemble(settings, deployer, client, slack, cards, metrics, tasks, store,
                            socket_url, clock)  # fmt: skip
            try:
                bot.worker = deployer.worker()
                background.spawn(bot.worker.run_forever(bot.stop, slots=workers), name="worker")
                background.spawn(_expire(deployer, settings, bot.stop), name="expiry")
                background.spawn(deployer.keep_lifetimes(bot.stop), name="lifetimes")
                background.spawn(_keep_cards(cards, bot.stop), name="cards")
                if bot.socket is not None:
                    background.spawn(bot.socket.run(), name="socket mode")
                yield bot
            finally:
                await _shutdown(bot, background, cards_tasks)
    finally:
        await tasks.cancel_all()
        await cards_tasks.cancel_all()
        await session.close()
        await owned.aclose()


async def _databases(
    engine: DeployerSettings, store: Store | None, ledger: CardLedger | None, clock: Clock,
    owned: AsyncExitStack,
) -> tuple[Store, CardLedger]:  # fmt: skip
    """The deployer's store and the bot's card ledger on AISTACK_DATABASE_URL (closed with
    `owned`: the ledger first), or the two given (tests, the sandbox: a ledger reads the
    store it is given with, on the same database)."""
    if store is not None and ledger is not None:
        return store, ledger
    if store is not None or ledger is not None:
        raise TypeError("running_bot takes a store and its card ledger together, or neither")
    try:
        opened = await open_store(engine.store.database_url, clock=clock)
        owned.push_async_callback(opened.close)
        cards = await open_ledger(engine.store.database_url, opened, clock)
        owned.push_async_callback(cards.close)
    except BaseException:
        await owned.aclose()
        raise
    return opened, cards


def _assemble(
    settings: BotSettings, deployer: Deployer, client: AsyncWebClient, slack: SlackWriter,
    cards: SlackNotifier, metrics: Metrics, tasks: Tasks, store: Store, socket_url: str | None,
    clock: Clock,
) -> Bot:  # fmt: skip
    bolt = build_bolt(client)
    directory = Directory(client, settings.policy().groups, ttl=settings.group_cache_seconds,
                          clock=clock)  # fmt: skip
    Listeners(deployer, settings, slack, directory, tasks, cards, clock).register(bolt)
    bot = Bot(settings, deployer, bolt, web.Application(), cards, slack, metrics, tasks, None)
    if settings.app_token is not None:  # built here, in the running loop, as the SDK needs
        bot.socket = SocketLink(bolt, settings.app_token.get_secret_value(), socket_url)
    readiness = Readiness(store, client, accepting=lambda: not bot.stop.is_set(), clock=clock,
                          socket=bot.socket.connected if bot.socket else None)  # fmt: skip
    if settings.socket_mode:  # requests arrive over the websocket, unsigned: no /slack/events
        bot.web = build_web(None, readiness, metrics, None)
    else:
        assert settings.signing_secret is not None  # BotSettings requires it in HTTP mode
        secret = settings.signing_secret.get_secret_value()
        bot.web = build_web(bolt, readiness, metrics, secret)
    return bot


async def _slack_client(settings: BotSettings, session: aiohttp.ClientSession) -> AsyncWebClient:
    client = AsyncWebClient(
        token=settings.bot_token.get_secret_value(),
        base_url=settings.api_url or AsyncWebClient.BASE_URL,
        session=session,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=2)],
    )
    hint = "check the token and that the app is installed in the workspace"
    await _start_check(client.auth_test(), settings, "SLACK_BOT_TOKEN", hint)  # Bolt would
    return client  # only find out on the first request


async def _socket_url(client: AsyncWebClient, settings: BotSettings) -> str | None:
    """The app token's one check: Slack hands out a websocket URL for it, or says why not.
    None when rate limited: the SDK waits for Retry-After and asks again by itself."""
    assert settings.app_token is not None
    opening = client.apps_connections_open(app_token=settings.app_token.get_secret_value())
    hint = ("it must be the app's app-level token (xapp-...) with connections:write, and "
            "Socket Mode must be on in the app's settings")  # fmt: skip
    answer = await _start_check(opening, settings, "SLACK_APP_TOKEN", hint)
    url = answer.get("url") if answer is not None else None
    return url if isinstance(url, str) else None


async def _start_check(
    call: Awaitable[T], settings: BotSettings, variable: str, hint: str
) -> T | None:
    """One Slack call at start; every way it fails becomes one ConfigError line that names
    the API base and the cause (or the variable Slack refused), never a token. None when
    rate limited: Slack knew the token, so the start goes on."""
    base = settings.api_url or AsyncWebClient.BASE_URL
    try:
        async with asyncio.timeout(settings.slack_timeout):
            return await call
    except TimeoutError:
        cause = f"no answer within {settings.slack_timeout:g} s"
    except aiohttp.ClientError as exc:
        cause = unreachable_cause(exc)
    except SlackApiError as exc:
        data, status = exc.response.data, exc.response.status_code
        error = data.get("error") if isinstance(data, dict) else None  # text or bytes: not Slack
        if error == "ratelimited":
            log.warning("Slack rate limited a start check", check=variable)
            return None
        if error is not None:
            raise ConfigError(f"Slack refused {variable} ({error}): {hint}") from None
        # an answer, but not a Slack API's: a proxy, a captive portal, a wrong SLACK_API_URL
        cause = f"HTTP {status} without a Slack API answer; check SLACK_API_URL"
    raise ConfigError(f"Slack unreachable at {base}: {cause}") from None


def unreachable_cause(exc: aiohttp.ClientError) -> str:
    """What went wrong on the way to Slack, in words an operator can act on."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {exc.host} (DNS lookup failed: {exc.os_error.strerror or exc})"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate of {exc.host} not trusted ({exc.certificate_error})"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS handshake with {exc.host}:{exc.port} failed ({_reason(exc.os_error)})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({_reason(exc.os_error)})"
    return f"connection failed ({type(exc).__name__}: {exc})"


def _reason(error: OSError) -> str:
    """An ssl error's reason (WRONG_VERSION_NUMBER), else the errno's words (Connection refused):
    aiohttp's own text for a refused connection says neither."""
    reason = getattr(error, "reason", None)
    if reason:
        return str(reason)
    return os.strerror(error.errno) if error.errno and error.errno > 0 else str(error)


async def _expire(deployer: Deployer, settings: BotSettings, stop: asyncio.Event) -> None:
    every = min(60.0, settings.approval_ttl / 4)
    while not stop.is_set():
        try:
            await deployer.expire_requests(settings.approval_ttl)
        except Exception as exc:  # the store is down: try again next time
            log.warning("requests not expired", error=repr(exc))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            continue


async def _keep_cards(cards: SlackNotifier, stop: asyncio.Event) -> None:
    """At start and then every few seconds: post the cards and thread replies a dead process
    (this one before a restart, or another replica) left unposted, and redraw the cards it
    left behind."""
    while not stop.is_set():
        for sweep in (cards.post_unposted, cards.resume_threads, cards.redraw_stale):
            try:
                await sweep()
            except Exception as exc:  # Slack or the store is down: try again next time
                log.warning("cards not swept", sweep=sweep.__name__, error=repr(exc))
        try:
            await asyncio.wait_for(stop.wait(), CARD_SWEEP_SECONDS)
        except TimeoutError:
            continue


async def _shutdown(bot: Bot, background: Tasks, cards: Tasks) -> None:
    bot.stop.set()
    if bot.socket is not None:  # no new requests; those already acked finish below
        await bot.socket.close()
    interrupted = list(bot.worker.running.values()) if bot.worker else []
    await background.cancel_all()  # running sagas checkpoint their phases as interrupted
    await bot.tasks.drain(SHUTDOWN_GRACE)  # commands and clicks already acked finish
    await _settle(bot.notifier)
    for dep in interrupted:
        current = await bot.deployer.get(dep.id)
        try:
            await bot.notifier.refresh(current, paused=True)
        except Exception as exc:  # shutting down: log it, keep going
            log.warning("card not marked paused", deployment_id=dep.id, error=str(exc))
    await cards.cancel_all()  # idle writers waiting for events that will not come


async def _settle(notifier: SlackNotifier) -> None:
    try:
        await asyncio.wait_for(notifier.wait_idle(), SHUTDOWN_GRACE)
    except TimeoutError:
        log.warning("cards still being written at shutdown")
