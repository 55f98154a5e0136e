"""`aistack-bot` / `python -m bot`: settings -> logging -> store -> deployer -> Slack app -> run.

HTTP mode serves /slack/events, /healthz, /readyz and /metrics; with SLACK_APP_TOKEN set it
runs in Socket Mode and serves the same health endpoints. SIGTERM stops it cleanly.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.runtime import Bot, running_bot
from bot.settings import BotSettings, load_bot_settings
from deployer import AistackError, DeployerSettings, load_settings
from deployer.logs import configure_logging

log = structlog.get_logger("aistack.bot")


async def serve(settings: BotSettings, engine: DeployerSettings) -> None:
    async with running_bot(
        settings, engine, workers=settings.workers, post_interval=settings.post_interval
    ) as bot:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, bot.stop.set)
        runner = web.AppRunner(bot.web, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.bot_host, settings.bot_port).start()
        log.info("aistack bot listening", port=settings.bot_port, socket_mode=settings.socket_mode)
        try:
            await _receive(bot)
        finally:
            await runner.cleanup()


async def _receive(bot: Bot) -> None:
    if not bot.settings.socket_mode:
        await bot.stop.wait()
        return
    assert bot.settings.app_token is not None
    # built inside the running loop: its client opens a session at construction
    handler = AsyncSocketModeHandler(bot.bolt, bot.settings.app_token.get_secret_value())
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await bot.stop.wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


def main() -> int:
    configure_logging("info")
    try:
        settings, engine = load_bot_settings(), load_settings()
    except AistackError as exc:
        print(f"aistack-bot: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings, engine))
    except AistackError as exc:
        print(f"aistack-bot: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
