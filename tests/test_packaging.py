"""The Docker image's inputs: the runtime lock holds exactly what the bot needs to run, pinned
as in requirements.lock and hash-checked; the Dockerfile installs it that way, from a base
pinned by digest, and its health check follows AISTACK_BOT_PORT."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterable
from importlib import metadata
from pathlib import Path

import pytest
from aiohttp import web
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
DOCKERFILE = (REPO / "Dockerfile").read_text()
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.M)


def pins(path: Path) -> dict[str, str]:
    return {canonicalize_name(n): v for n, v in PIN.findall(path.read_text())}


def hashes(path: Path) -> dict[str, int]:
    """Package -> how many sha256 hashes its entry lists."""
    counts: dict[str, int] = {}
    name = ""
    for line in path.read_text().splitlines():
        pinned = PIN.match(line)
        if pinned:
            name = canonicalize_name(pinned.group(1))
            counts[name] = 0
        elif re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}( \\)?", line):
            counts[name] += 1
    return counts


def runtime_needs(requirements: Iterable[str]) -> set[str]:
    """Every distribution the runtime requirements pull in, through the installed metadata
    (the virtualenv is installed from requirements.lock: same versions)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in metadata.requires(req.name) or []]
    return seen


RUNTIME_LOCK = REPO / "requirements-runtime.lock"
RUNTIME = {
    canonicalize_name(Requirement(r).name): Requirement(r) for r in PYPROJECT["dependencies"]
}
DEV = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["optional-dependencies"]["dev"]}


def test_every_runtime_dependency_is_pinned_as_in_requirements_lock() -> None:
    locked, full = pins(RUNTIME_LOCK), pins(REPO / "requirements.lock")
    for name, requirement in RUNTIME.items():
        assert name in locked, f"{name} (pyproject.toml) is not in requirements-runtime.lock"
        assert requirement.specifier.contains(locked[name]), f"{name}=={locked[name]}"
    assert {n: full.get(n) for n in locked} == locked  # one set of versions, tested by make test


def test_the_runtime_lock_holds_what_the_bot_needs_and_nothing_else() -> None:
    locked = set(pins(RUNTIME_LOCK))
    assert not locked & DEV, f"dev-only packages in the runtime lock: {sorted(locked & DEV)}"
    needed = runtime_needs(PYPROJECT["dependencies"])
    assert needed - locked == set(), "needed at run time but not locked"
    assert locked - needed == set(), "locked but not needed at run time (dev-only?)"


def test_every_locked_package_is_hash_checked() -> None:
    counts = hashes(RUNTIME_LOCK)
    assert counts and all(counts.values()), [n for n, c in counts.items() if not c]


def test_the_image_installs_the_runtime_lock_with_hashes_on_a_pinned_base() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.M)
    base = re.search(r"^ARG BASE=(\S+)$", DOCKERFILE, re.M)
    assert base and re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", base.group(1))
    assert stages == ["${BASE}", "${BASE}"]
    assert "pip install --require-hashes -r requirements-runtime.lock" in DOCKERFILE
    assert "requirements.lock" not in DOCKERFILE.replace("requirements-runtime.lock", "")
    assert "[dev]" not in DOCKERFILE


def healthcheck() -> list[str]:
    found = re.search(r"^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$", DOCKERFILE, re.M)
    assert found, "HEALTHCHECK ... CMD [exec form]"
    command: list[str] = json.loads(found.group(1))
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


@pytest.fixture
async def healthz_port() -> AsyncIterator[int]:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def run_healthcheck(port: int) -> int:
    process = await asyncio.create_subprocess_exec(
        *healthcheck(), env={"AISTACK_BOT_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(30):
        return await process.wait()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_health_check_asks_the_port_the_bot_listens_on(healthz_port: int) -> None:
    assert await run_healthcheck(healthz_port) == 0
    assert await run_healthcheck(closed_port()) == 1  # nothing there: unhealthy


def test_the_bot_and_the_cli_load_no_sandbox_and_no_jsonschema() -> None:
    # jsonschema is the sandbox extra's: the image has none, so nothing but the sandbox may
    # import it (a fresh interpreter: the tests themselves import the sandbox everywhere).
    probe = (
        "import sys, bot.__main__, deployer.cli; "
        "print(sorted(m for m in sys.modules if 'sandbox' in m or m.startswith('jsonschema')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=REPO).stdout.strip()  # fmt: skip
    assert loaded == "[]"
