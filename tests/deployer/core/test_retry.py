"""The pause before a failed rollback's next automatic try."""

from __future__ import annotations

from deployer.core.retry import rollback_retry_pause


def test_the_pause_doubles_from_the_first_and_stops_at_the_cap() -> None:
    pauses = [rollback_retry_pause(n, 60, 3600) for n in range(1, 9)]
    assert pauses == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_rollback_that_never_stops_failing_stays_at_the_cap() -> None:
    assert rollback_retry_pause(5_000, 60, 3600) == 3600  # no float overflow
    assert rollback_retry_pause(1, 90, 30) == 30  # the cap wins over the first pause
