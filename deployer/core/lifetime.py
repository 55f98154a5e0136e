"""How long a stack lives: durations as people write them (`7d`, `36h`, `90m`, `2w`), said
back in words, and the plain date a stack expires. Pure."""

from __future__ import annotations

import re
from datetime import datetime

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
    """An expiry as people read it in a message: `2026-12-07 10:00 UTC`."""
    return at.strftime("%Y-%m-%d %H:%M UTC")
