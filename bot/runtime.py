"""Assembles a running bot and shuts it down cleanly.

Start: the store, one Slack client (auth.test first: a bad token fails here, not on the
first click), the deployer, the Bolt app, the web app, the workers and the expiry sweep.
Stop: take no more work, interrupt running sagas (their phases checkpoint), mark their cards
"paused", let the cards finish writing, close everything. The next start, or another
replica, resumes those deployments on the same cards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import structlog
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import Readiness, build_bolt, build_web
from bot.directory import Directory
from bot.listeners import Listeners
from bot.metrics import Metrics, MetricsNotifier
from bot.notifier import Notifiers, SlackNotifier
from bot.settings import BotSettings
from bot.slack_api import SlackWriter
from bot.tasks import Tasks
from deployer import ConfigError, Deployer, DeployerSettings, open_deployer
from deployer.adapters.stores import open_store
from deployer.ports import Clock, Store
from deployer.worker import Worker

log = structlog.get_logger("aistack.bot")
SHUTDOWN_GRACE = 10.0
CARD_SWEEP_SECONDS = 5.0


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


@asynccontextmanager
async def running_bot(
    settings: BotSettings,
    engine: DeployerSettings,
    *,
    store: Store | None = None,
    clock: Clock | None = None,
    workers: int = 8,
    post_interval: float = 1.0,
    slack_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[Bot]:
    own_store = store is None
    store = store or await open_store(engine.database_url)
    session = aiohttp.ClientSession()
    # listener work, card writers, and the long-running loops: each stopped its own way
    tasks, cards_tasks, background = Tasks(), Tasks(), Tasks()
    try:
        client = await _slack_client(settings, session)
        metrics = Metrics()
        metrics.track_tasks(lambda: len(tasks) + len(cards_tasks) + len(background))
        slack = SlackWriter(
            client, post_interval=post_interval, calls=metrics.slack_calls, sleep=slack_sleep
        )
        cards = SlackNotifier(slack, store, cards_tasks, interval=settings.card_interval,
                              monotonic=time.monotonic)  # fmt: skip
        notifier = Notifiers(MetricsNotifier(metrics), cards)
        async with open_deployer(engine, notifier, store=store, clock=clock) as deployer:
            bot = _assemble(settings, deployer, client, slack, cards, metrics, tasks, store)
            bot.worker = deployer.worker()
            background.spawn(bot.worker.run_forever(bot.stop, slots=workers), name="worker")
            background.spawn(_expire(deployer, settings, bot.stop), name="expiry")
            background.spawn(_keep_cards(cards, bot.stop), name="cards")
            try:
                yield bot
            finally:
                await _shutdown(bot, background, cards_tasks)
    finally:
        await tasks.cancel_all()
        await cards_tasks.cancel_all()
        await session.close()
        if own_store:
            await store.close()


def _assemble(
    settings: BotSettings, deployer: Deployer, client: AsyncWebClient, slack: SlackWriter,
    cards: SlackNotifier, metrics: Metrics, tasks: Tasks, store: Store,
) -> Bot:  # fmt: skip
    bolt = build_bolt(client)
    directory = Directory(client, settings.policy().groups, ttl=settings.group_cache_seconds)
    Listeners(deployer, settings, slack, directory, tasks).register(bolt)
    bot = Bot(settings, deployer, bolt, web.Application(), cards, slack, metrics, tasks, None)
    readiness = Readiness(store, client, accepting=lambda: not bot.stop.is_set())
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
    try:
        await client.auth_test()  # Bolt would only find out on the first request
    except SlackApiError as exc:
        raise ConfigError(
            f"Slack refused SLACK_BOT_TOKEN ({exc.response.get('error')}): check the token "
            "and that the app is installed in the workspace"
        ) from None
    return client


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
    """At start and then every few seconds: redraw cards another process left behind."""
    while not stop.is_set():
        try:
            await cards.redraw_stale()
        except Exception as exc:  # Slack or the store is down: try again next time
            log.warning("stale cards not redrawn", error=repr(exc))
        try:
            await asyncio.wait_for(stop.wait(), CARD_SWEEP_SECONDS)
        except TimeoutError:
            continue


async def _shutdown(bot: Bot, background: Tasks, cards: Tasks) -> None:
    bot.stop.set()
    interrupted = list(bot.worker.running.values()) if bot.worker else []
    await background.cancel_all()  # running sagas checkpoint their phases as interrupted
    await bot.tasks.drain(SHUTDOWN_GRACE)  # commands and clicks already acked finish
    await _settle(bot.notifier)
    for dep in interrupted:
        current = await bot.deployer.store.get(dep.id)
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
