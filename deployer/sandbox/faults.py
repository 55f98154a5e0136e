"""Fault knobs shared by every sandbox fake, applied by one aiohttp middleware.

Each fake names its operations (`project.create`, `rrsets.create`, ...) and renders its own
error bodies; the knobs themselves are the same everywhere, so a test or the CLI can say
"add 50 ms", "5xx one call in ten", "hang on domain.create", "lose the response of the next
application.create", "answer the next 3 calls with 429" or "fail project.remove".
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (status, code, message, retry_after) -> the fake's own error response
ErrorRenderer = Callable[[int, str, str, float | None], web.Response]
CONTROL_PREFIX = "/_sandbox"


@dataclass
class FailRule:
    status: int = 500
    times: int | None = None  # None: every call until cleared
    message: str = "injected failure"


@dataclass
class Faults:
    latency: float = 0.0
    error_rate: float = 0.0
    hang_ops: dict[str, int | None] = field(default_factory=dict)
    hang_seconds: float = 3600.0
    lose_response_ops: dict[str, int] = field(default_factory=dict)
    burst_429: int = 0
    retry_after: float = 1.0
    fail_ops: dict[str, FailRule] = field(default_factory=dict)
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def update(self, data: dict[str, Any]) -> None:
        """Apply a JSON document of knobs (the control endpoint and the CLI use this)."""
        for key in ("latency", "error_rate", "hang_seconds", "retry_after"):
            if key in data:
                setattr(self, key, float(data[key]))
        if "burst_429" in data:
            self.burst_429 = int(data["burst_429"])
        if "hang_ops" in data:
            self.hang_ops = dict(data["hang_ops"])
        if "lose_response_ops" in data:
            self.lose_response_ops = {k: int(v) for k, v in data["lose_response_ops"].items()}
        if "fail_ops" in data:
            self.fail_ops = {k: FailRule(**v) for k, v in data["fail_ops"].items()}

    def clear(self) -> None:
        self.latency = self.error_rate = 0.0
        self.burst_429 = 0
        self.hang_ops.clear()
        self.lose_response_ops.clear()
        self.fail_ops.clear()

    def take(self, table: dict[str, Any], op: str) -> bool:
        """Consume one use of a counted knob for `op`; None counts mean 'always'."""
        if op not in table:
            return False
        remaining = table[op] if not isinstance(table[op], FailRule) else table[op].times
        if remaining is None:
            return True
        if remaining <= 1:
            del table[op]
        elif isinstance(table[op], FailRule):
            table[op].times = remaining - 1
        else:
            table[op] = remaining - 1
        return True

    def chance(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate


def fault_middleware(
    faults: Faults, op_of: Callable[[web.Request], str], render: ErrorRenderer
) -> Any:
    """Build the middleware that applies `faults` before (and after) the fake's handler."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        op = op_of(request)
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.take(faults.hang_ops, op):
            await asyncio.sleep(faults.hang_seconds)
        if faults.burst_429 > 0:
            faults.burst_429 -= 1
            return render(429, "rate_limited", "rate limit exceeded", faults.retry_after)
        rule = faults.fail_ops.get(op)
        if rule is not None and faults.take(faults.fail_ops, op):
            return render(rule.status, "injected", rule.message, None)
        if faults.chance(faults.error_rate):
            return render(503, "unavailable", "injected 5xx", None)
        response = await handler(request)
        if faults.take(faults.lose_response_ops, op):
            # The work is done but the client never hears of it: drop the connection.
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("sandbox: response deliberately lost")
        return response

    return middleware


def control_routes(
    faults: Faults, state: Callable[[], Any], reset: Callable[[], None]
) -> list[web.RouteDef]:
    """`/_sandbox/faults` (GET/POST), `/_sandbox/state` and `/_sandbox/reset` for every fake."""

    async def get_faults(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "latency": faults.latency,
                "error_rate": faults.error_rate,
                "burst_429": faults.burst_429,
                "hang_ops": faults.hang_ops,
                "lose_response_ops": faults.lose_response_ops,
                "fail_ops": {k: vars(v) for k, v in faults.fail_ops.items()},
            }
        )

    async def set_faults(request: web.Request) -> web.Response:
        faults.update(await request.json())
        return await get_faults(request)

    async def get_state(_: web.Request) -> web.Response:
        return web.json_response(state())

    async def do_reset(_: web.Request) -> web.Response:
        faults.clear()
        reset()
        return web.json_response({"ok": True})

    return [
        web.get(f"{CONTROL_PREFIX}/faults", get_faults),
        web.post(f"{CONTROL_PREFIX}/faults", set_faults),
        web.get(f"{CONTROL_PREFIX}/state", get_state),
        web.post(f"{CONTROL_PREFIX}/reset", do_reset),
    ]
