"""Retry and circuit breaking per upstream, built from settings.

Retry rules are small tenacity values combined: transient errors only, exponential backoff
(or the upstream's own Retry-After hint), bounded by attempts and a deadline. Sleep is
injected, so tests take no time. One breaker per upstream turns a run of failures into fast
`UpstreamUnavailable` answers until it half-opens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import structlog
from aiobreaker import CircuitBreaker, CircuitBreakerError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from deployer.errors import PermanentError, TransientError, UpstreamUnavailable

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
log = structlog.get_logger("aistack.resilience")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial: float = 1.0
    maximum: float = 16.0
    deadline: float = 120.0


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError) and not isinstance(exc, UpstreamUnavailable)


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential(multiplier=policy.initial, max=policy.maximum)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            return float(min(max(hint, 0.0), policy.deadline))
        return float(backoff(state))

    return wait


class Upstream:
    """One upstream (Dokploy, DNS): its breaker and its retry policy."""

    def __init__(
        self,
        name: str,
        policy: RetryPolicy,
        *,
        sleep: Sleep,
        fail_max: int = 5,
        reset_seconds: float = 30.0,
    ) -> None:
        self.name = name
        self.policy = policy
        self._sleep = sleep
        self.breaker = CircuitBreaker(
            fail_max=fail_max,
            timeout_duration=timedelta(seconds=reset_seconds),
            exclude=[PermanentError],
            name=name,
        )

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent operation with the breaker and the retry policy."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self.policy.attempts) | stop_after_delay(self.policy.deadline),
            wait=_wait(self.policy),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._through_breaker(operation)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _through_breaker(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            result: T = await self.breaker.call_async(operation)
        except CircuitBreakerError as exc:
            cause = exc.__cause__
            reason = f": last error: {cause}" if cause else ""
            raise UpstreamUnavailable(
                f"{self.name} is unavailable (circuit open after {self.breaker.fail_max} "
                f"failures); failing fast for {self.breaker.timeout_duration.seconds} s{reason}"
            ) from None
        return result

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying",
            upstream=self.name,
            attempt=state.attempt_number,
            wait=round(state.next_action.sleep, 2) if state.next_action else None,
            error=str(exc),
        )
