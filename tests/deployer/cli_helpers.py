"""Run the real `aistack` CLI in a subprocess against a sandbox served by the test."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from deployer.sandbox.server import Sandbox

# Small real intervals: the subprocess has no fake clock, so keep its waits to milliseconds.
FAST = {
    "AISTACK_POLL_INITIAL": "0.05",
    "AISTACK_POLL_MAX": "0.1",
    "AISTACK_HEALTH_INTERVAL": "0.05",
    "AISTACK_DNS_POLL_INITIAL": "0.05",
    "AISTACK_HTTP_TIMEOUT": "2",
    "AISTACK_RETRY_INITIAL": "0.05",
    "AISTACK_RETRY_MAX": "0.2",
    "AISTACK_LEASE_SECONDS": "1",
    "AISTACK_HEARTBEAT_SECONDS": "0.3",
}


@dataclass
class Result:
    code: int
    output: str


def cli_env(sandbox: Sandbox, database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISTACK_")}
    return env | sandbox.env() | FAST | {"AISTACK_DATABASE_URL": f"sqlite:///{database}"}


async def aistack(env: dict[str, str], *args: str, stdin: bytes = b"") -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deployer.cli", *args,
        env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=Path(__file__).parent,
    )  # fmt: skip
    output, _ = await process.communicate(stdin)
    assert process.returncode is not None
    return Result(process.returncode, output.decode())


async def aistack_head(env: dict[str, str], *args: str) -> tuple[bytes, Result]:
    """`aistack ARGS | head -1`: read the first line of stdout, then close the pipe as `head`
    does; the Result holds the exit code and stderr only."""
    read_end, write_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deployer.cli", *args,
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=write_end,
            stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).parent,
        )  # fmt: skip
    finally:
        os.close(write_end)  # the child holds the only writer: EOF or EPIPE come from it
    with os.fdopen(read_end, "rb") as stdout:
        first = await asyncio.to_thread(stdout.readline)  # the loop keeps serving the sandbox
    _, errors = await process.communicate()
    assert process.returncode is not None
    return first, Result(process.returncode, errors.decode())


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deployer.cli", "worker", "--exit-when-idle",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
