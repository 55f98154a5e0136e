"""How long a stack lives: durations as people write them (`7d`, `36h`, `90m`, `2w`), said
back in words, the plain date a stack expires, and what its times call for (a reminder, a
stop at expiry, a destroy after the grace). Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d{1,5})\s*([mhdw])\s*$", re.IGNORECASE)
EXAMPLE = "3d, 36h, 90m or 2w"


def duration_seconds(text: str) -> float:
    """Seconds from `3d`, `36h`, `90m` or `2w`; raises ValueError saying what would do."""
    found = _DURATION.match(text)
    if found is None or int(found.group(1)) == 0:
        raise ValueError(f"{text.strip()[:20]!r} is not a duration: use {EXAMPLE}")
    return float(int(found.group(1)) * _UNITS[found.group(2).lower()])


def said(seconds: float) -> str:
    """A duration in the largest whole unit that fits it: `7 days`, `36 hours`, `90 minutes`."""
    for unit, size in (("week", 7 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{int(seconds)} seconds"


def when(at: datetime) -> str:
    """A moment as people read it in a message: `2026-12-07 10:00 UTC`."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class Due(StrEnum):
    """What a live stack's times call for now (see `due`)."""

    NOTICE = "notice"  # remind the owner of the coming expiry
    STOP = "stop"  # it expired while running
    DESTROY = "destroy"  # stopped, expired, and the grace has passed


def destroy_at(expires_at: datetime, stopped_at: datetime, grace: float) -> datetime:
    """When a stopped stack goes: the grace counts from its stop or its expiry, the later."""
    return max(stopped_at, expires_at) + timedelta(seconds=grace)


def due(
    now: datetime, *, expires_at: datetime | None, stopped_at: datetime | None,
    noticed_for: datetime | None, notice: float, grace: float,
) -> Due | None:  # fmt: skip
    """The step a live stack is due for: a reminder within `notice` seconds of its expiry
    (once per expiry, stopped or running: a stopped one is destroyed after it too), a stop
    once it expired running, a destroy `grace` seconds after it expired and stopped."""
    if expires_at is None:
        return None
    if expires_at <= now:
        if stopped_at is None:
            return Due.STOP
        return Due.DESTROY if destroy_at(expires_at, stopped_at, grace) <= now else None
    if noticed_for != expires_at and expires_at - timedelta(seconds=notice) <= now:
        return Due.NOTICE
    return None


def lifetime_refusal(seconds: float, longest: float) -> str | None:
    """Why a lifetime asked for (`--for`, extend) is refused; None when it may be had."""
    if seconds <= longest:
        return None
    return (f"{said(seconds)} is longer than a stack may live here: at most {said(longest)} "
            "(AISTACK_STACK_TTL_MAX)")  # fmt: skip


def lifetime_for(
    asked: float | None, now: datetime, *, live: bool, expires_at: datetime | None,
    ttl: float | None, longest: float,
) -> float | None:  # fmt: skip
    """The lifetime a deploy or start records: what was asked (`--for`); for a new stack the
    default (`ttl`, None: it never expires); for a live one whose expiry has passed a fresh
    default (the longest allowed when stacks never expire by default), or it would be
    stopped again at once; None for a live one otherwise: it keeps its expiry."""
    if asked is not None:
        return asked
    if not live:
        return ttl
    if expires_at is not None and expires_at <= now:
        return ttl if ttl is not None else longest
    return None


def span(seconds: float) -> str:
    """How long, roughly: `under a minute`, `42 min`, `5 h`, `3 days`."""
    minutes = int(max(seconds, 0.0) // 60)
    if minutes < 60:
        return f"{minutes} min" if minutes else "under a minute"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"
