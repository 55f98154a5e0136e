"""Every background task the bot starts is owned here: no fire-and-forget, shutdown drains."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger("aistack.bot.tasks")


class Tasks:
    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(work, name=name)
        self._running.add(task)  # a strong reference until it ends
        task.add_done_callback(self._reap)
        return task

    def __len__(self) -> int:
        return len(self._running)

    async def drain(self, grace: float) -> None:
        """Wait for running tasks to finish, then cancel whatever is still going."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        await self.cancel_all()

    async def cancel_all(self) -> None:
        pending = set(self._running)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", task=task.get_name(), error=repr(task.exception()))
