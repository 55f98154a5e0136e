"""`aistack-bot` / `python -m bot`: settings -> logging -> store -> deployer -> Slack app -> run.

HTTP mode serves /slack/events, /healthz, /readyz and /metrics; with SLACK_APP_TOKEN set it
runs in Socket Mode and serves the same health endpoints. SIGTERM stops it at any point: while
it starts (the start is given up), while the websocket connects, and while it runs (cleanly).
A start that cannot work (settings, Slack unreachable or refusing a token) is one line, exit 2.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

import structlog
from aiohttp import web

from bot.runtime import running_bot
from bot.settings import BotSettings, load_bot_settings
from deployer import AistackError, DeployerSettings, configure_logging, load_settings

log = structlog.get_logger("aistack.bot")


async def serve(settings: BotSettings, engine: DeployerSettings) -> None:
    starting = asyncio.current_task()
    assert starting is not None
    _on_stop_signals(starting.cancel)  # nothing to stop cleanly yet: give the start up
    async with running_bot(
        settings, engine, workers=settings.workers, post_interval=settings.post_interval
    ) as bot:
        _on_stop_signals(bot.stop.set)  # Socket Mode connects in the background meanwhile
        runner = web.AppRunner(bot.web, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.bot_host, settings.bot_port).start()
            log.info("aistack bot listening", port=settings.bot_port,
                     socket_mode=settings.socket_mode)  # fmt: skip
            await bot.stop.wait()
            log.info("aistack bot stopping: no new work, running deployments checkpoint")
        finally:
            await runner.cleanup()
    log.info("aistack bot stopped")


def _on_stop_signals(handler: Callable[[], object]) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handler)


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
    except asyncio.CancelledError:  # SIGTERM or SIGINT before the bot was up
        print("aistack-bot: stopped while starting", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
