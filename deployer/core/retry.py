"""When a failed rollback (or teardown) is tried again: the one rule, pure."""

from __future__ import annotations


def rollback_retry_pause(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait after the `attempt`-th failure (1, 2, ...) before the next try:
    `initial` after the first, doubling after each one since, never more than `maximum`."""
    pause = initial
    # Doubled step by step, not as initial * 2 ** (attempt - 1): a rollback that has failed
    # a thousand times would overflow a float, and the loop stops at the cap anyway.
    for _ in range(attempt - 1):
        if pause >= maximum:
            break
        pause *= 2
    return min(pause, maximum)
