"""What a live stack's times call for, the lifetime a request records, and the maximum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deployer.core.lifetime import Due, due, lifetime_for, lifetime_refusal

T = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # the expiry
H, D = 3600.0, 86400.0


def at(hours: float) -> datetime:
    return T + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("now", "stopped_at", "noticed_for", "expected"),
    [
        (at(-24.01), None, None, None),  # before the notice window
        (at(-24), None, None, Due.NOTICE),
        (at(-1), None, T, None),  # reminded of this expiry already
        (at(-1), None, at(-48), Due.NOTICE),  # reminded of an earlier one: extended since
        (at(-1), at(-30), None, Due.NOTICE),  # stopped before: told when it goes
        (T, None, T, Due.STOP),
        (at(100), None, None, Due.STOP),  # the stop never happened: still due
        (at(72 - 0.01), T, T, None),  # stopped at expiry: the grace runs
        (at(72), T, T, Due.DESTROY),
        (at(72), at(-30), T, Due.DESTROY),  # stopped before: the grace counts from the expiry
        (at(72), at(10), T, None),  # stopped after (a late stop): from the stop
        (at(82), at(10), T, Due.DESTROY),
    ],
)
def test_what_the_times_call_for(
    now: datetime, stopped_at: datetime | None, noticed_for: datetime | None, expected: Due | None
) -> None:
    found = due(now, expires_at=T, stopped_at=stopped_at, noticed_for=noticed_for,
                notice=24 * H, grace=3 * D)  # fmt: skip
    assert found is expected


def test_a_stack_without_an_expiry_is_never_due() -> None:
    for stopped in (None, at(-1000)):
        assert due(at(10**6), expires_at=None, stopped_at=stopped, noticed_for=None,
                   notice=H, grace=H) is None  # fmt: skip


@pytest.mark.parametrize(
    ("asked", "live", "expires_at", "ttl", "expected"),
    [
        (None, False, None, 7 * D, 7 * D),  # a new stack: the default
        (2 * D, False, None, 7 * D, 2 * D),  # --for
        (None, False, None, None, None),  # stacks never expire by default
        (None, True, at(1), 7 * D, None),  # a redeploy keeps its expiry
        (D, True, at(1), 7 * D, D),  # ... unless --for says
        (None, True, None, 7 * D, None),  # a stack from before expiries keeps none
        (None, True, T, 7 * D, 7 * D),  # its expiry passed: a fresh one
        (None, True, T, None, 30 * D),  # ... the most allowed, when none is the default
    ],
)
def test_the_lifetime_a_deploy_or_start_records(
    asked: float | None, live: bool, expires_at: datetime | None, ttl: float | None,
    expected: float | None,
) -> None:  # fmt: skip
    assert lifetime_for(asked, T, live=live, expires_at=expires_at, ttl=ttl,
                        longest=30 * D) == expected  # fmt: skip


def test_a_lifetime_past_the_maximum_is_refused_saying_both() -> None:
    assert lifetime_refusal(30 * D, 30 * D) is None
    assert lifetime_refusal(36 * H, 30 * D) is None
    assert lifetime_refusal(31 * D, 30 * D) == (
        "31 days is longer than a stack may live here: at most 30 days (AISTACK_STACK_TTL_MAX)"
    )
