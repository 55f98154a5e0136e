"""BotProcess: `python -m bot` as a real process, started, killed (SIGKILL) and restarted."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BotProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._env = env
        self._log = log
        self._process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> str:
        port = free_port()
        env = self._env | {"AISTACK_BOT_HOST": "127.0.0.1", "AISTACK_BOT_PORT": str(port)}
        with self._log.open("ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", env=env, stdout=out, stderr=out
            )
        self.url = f"http://127.0.0.1:{port}"
        await self._until_healthy()
        return f"{self.url}/slack/events"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease released, no card paused."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        """SIGTERM, as an orchestrator stops it; the exit code."""
        assert self._process is not None
        if self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self._process.wait(), 30)

    async def _until_healthy(self) -> None:
        async with asyncio.timeout(30), aiohttp.ClientSession() as http:
            while True:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise RuntimeError(f"the bot exited with {self._process.returncode}: "
                                       f"see {self._log}")  # fmt: skip
                try:
                    async with http.get(f"{self.url}/healthz") as reply:
                        if reply.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
