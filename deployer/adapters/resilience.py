"""Retry and circuit breaking per upstream, built from settings.

Retry rules are small tenacity values combined: transient errors only, exponential backoff
(or the upstream's own Retry-After hint), bounded by attempts and a deadline. Sleep is
injected, so tests take no time. One breaker per upstream turns a run of failures into fast
`UpstreamUnavailable` answers until it half-opens, except for the undo work of a rollback
(`deployer.ports.compensating()`), which bypasses the breaker so that a run of failures does
not also block the cleanup after it. An undo is a single idempotent cleanup per resource, so
it skips the breaker (not the retry policy) and gets its own chance.
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
from deployer.ports import is_compensating

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
log = structlog.get_logger("aistack.resilience")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial: float = 1.0
    maximum: float = 16.0
    deadline: float = 120.0


# A check that a person waits for (preflight): give up in seconds, not after minutes of retries.
QUICK = RetryPolicy(attempts=2, initial=0.5, maximum=1.0, deadline=5.0)


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
        self._last_failure: str | None = None  # kept for the "circuit open" message
        self.breaker = CircuitBreaker(
            fail_max=fail_max,
            timeout_duration=timedelta(seconds=reset_seconds),
            exclude=[PermanentError],
            name=name,
        )

    async def call(
        self, operation: Callable[[], Awaitable[T]], *, policy: RetryPolicy | None = None
    ) -> T:
        """Run an idempotent operation with the breaker and a retry policy (the upstream's own
        unless `policy` replaces it for this call). Inside `compensating()` the breaker is
        skipped: it neither refuses the call nor counts its outcome."""
        policy = policy or self.policy
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.deadline),
            wait=_wait(policy),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        bypass = is_compensating()
        async for attempt in retrying:
            with attempt:
                if bypass:
                    return await operation()
                return await self._through_breaker(operation)
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _through_breaker(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            result: T = await self.breaker.call_async(operation)
        except CircuitBreakerError as exc:
            cause = exc.__cause__
            if cause is not None:
                self._last_failure = str(cause)
            # Only the call that trips the breaker carries the cause: later ones get the last
            # failure we saw, so a fail-fast answer still says what is wrong with the upstream.
            reason = f": last error: {self._last_failure}" if self._last_failure else ""
            raise UpstreamUnavailable(
                f"{self.name} is unavailable (circuit open after {self.breaker.fail_max} "
                f"failures); failing fast for {self.breaker.timeout_duration.seconds} s{reason}"
            ) from None
        except TransientError as exc:
            self._last_failure = str(exc)
            raise
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
