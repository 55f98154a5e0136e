import asyncio

import pytest

from deployer.adapters.resilience import QUICK, RetryPolicy, Upstream
from deployer.errors import PermanentError, TransientError, UpstreamUnavailable
from deployer.ports import compensating
from deployer.testing import RecordedSleeps


def flaky(failures: list[Exception]):
    calls = {"n": 0}

    async def operation() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return "ok"

    return operation, calls


async def test_transient_errors_are_retried_with_exponential_backoff() -> None:
    sleeps = RecordedSleeps()
    upstream = Upstream("dokploy", RetryPolicy(attempts=5, initial=1, maximum=16), sleep=sleeps)
    operation, calls = flaky([TransientError("503")] * 3)
    assert await upstream.call(operation) == "ok"
    assert calls["n"] == 4
    assert sleeps.waits == [1, 2, 4]


async def test_retry_after_hint_replaces_the_backoff() -> None:
    sleeps = RecordedSleeps()
    upstream = Upstream("dns", RetryPolicy(), sleep=sleeps)
    operation, _ = flaky([TransientError("429", retry_after=7.5)])
    await upstream.call(operation)
    assert sleeps.waits == [7.5]


async def test_permanent_errors_are_not_retried() -> None:
    sleeps = RecordedSleeps()
    upstream = Upstream("dokploy", RetryPolicy(), sleep=sleeps)
    operation, calls = flaky([PermanentError("400 bad input")])
    with pytest.raises(PermanentError, match="bad input"):
        await upstream.call(operation)
    assert calls["n"] == 1
    assert sleeps.waits == []


async def test_gives_up_after_the_attempt_limit_with_the_last_error() -> None:
    upstream = Upstream("dokploy", RetryPolicy(attempts=3), sleep=RecordedSleeps(), fail_max=100)
    operation, calls = flaky([TransientError(f"503 #{i}") for i in range(10)])
    with pytest.raises(TransientError, match="503 #2"):
        await upstream.call(operation)
    assert calls["n"] == 3


async def test_open_breaker_fails_fast_without_calling_the_upstream() -> None:
    upstream = Upstream("Dokploy", RetryPolicy(attempts=10), sleep=RecordedSleeps(), fail_max=3)
    operation, calls = flaky([TransientError("timeout")] * 20)
    with pytest.raises(UpstreamUnavailable, match="Dokploy is unavailable"):
        await upstream.call(operation)
    assert calls["n"] == 3  # the third failure opened the breaker; no retry after that
    with pytest.raises(UpstreamUnavailable):
        await upstream.call(operation)
    assert calls["n"] == 3


async def test_permanent_errors_do_not_open_the_breaker() -> None:
    upstream = Upstream("Dokploy", RetryPolicy(), sleep=RecordedSleeps(), fail_max=2)
    for _ in range(5):
        operation, _ = flaky([PermanentError("404")])
        with pytest.raises(PermanentError):
            await upstream.call(operation)
    operation, _ = flaky([])
    assert await upstream.call(operation) == "ok"


def opened(upstream: Upstream) -> None:
    """Trip the breaker as a run of failed forward work does."""
    upstream.breaker.open()


async def test_an_undo_gets_through_an_open_breaker_inside_compensating() -> None:
    upstream = Upstream("Dokploy", RetryPolicy(), sleep=RecordedSleeps(), fail_max=2)
    opened(upstream)
    operation, calls = flaky([])
    with compensating():
        assert await upstream.call(operation) == "ok"
    assert calls["n"] == 1
    with pytest.raises(UpstreamUnavailable):  # outside, the open breaker still fails fast
        await upstream.call(operation)
    assert calls["n"] == 1


async def test_compensating_reaches_tasks_created_inside_it() -> None:
    upstream = Upstream("Dokploy", RetryPolicy(), sleep=RecordedSleeps(), fail_max=2)
    opened(upstream)
    operation, calls = flaky([])
    with compensating():
        task = asyncio.create_task(upstream.call(operation))
    assert await task == "ok"
    assert calls["n"] == 1


async def test_compensating_keeps_the_retry_policy() -> None:
    sleeps = RecordedSleeps()
    upstream = Upstream("Dokploy", RetryPolicy(attempts=3), sleep=sleeps, fail_max=1)
    opened(upstream)
    operation, calls = flaky([TransientError(f"503 #{i}") for i in range(5)])
    with compensating(), pytest.raises(TransientError, match="503 #2") as caught:
        await upstream.call(operation)
    assert not isinstance(caught.value, UpstreamUnavailable)
    assert calls["n"] == 3 and sleeps.waits == [1, 2]


async def test_a_policy_given_to_one_call_replaces_the_upstream_policy() -> None:
    sleeps = RecordedSleeps()
    upstream = Upstream("Dokploy", RetryPolicy(attempts=5), sleep=sleeps)
    operation, calls = flaky([TransientError(f"refused #{i}") for i in range(5)])
    with pytest.raises(TransientError, match="refused #1"):
        await upstream.call(operation, policy=QUICK)
    assert calls["n"] == 2 and sleeps.waits == [0.5]
    assert upstream.breaker.fail_counter == 2  # counted like any failure, no more


async def test_failing_fast_still_names_the_last_failure() -> None:
    upstream = Upstream("Dokploy", RetryPolicy(attempts=10), sleep=RecordedSleeps(), fail_max=2)
    operation, _ = flaky([TransientError("Dokploy: 127.0.0.1:9: connection refused")] * 5)
    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        await upstream.call(operation)
    with pytest.raises(UpstreamUnavailable, match=r"last error: .*connection refused"):
        await upstream.call(operation)  # refused by the open breaker, not by the upstream
