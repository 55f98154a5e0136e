"""A stack's CPU and memory limits: read from what an operator writes, and said back in
words. Dokploy takes them as strings of whole bytes and NanoCPUs; a number gets a 400, and a
string such as "512m" is accepted but means 512 bytes (recorded on a real server), so the
conversion happens here, once, and only whole numbers leave it. Pure.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_UNITS = {"": 1, "b": 1, "k": 1024, "ki": 1024, "m": 1024**2, "mi": 1024**2, "g": 1024**3,
          "gi": 1024**3, "t": 1024**4, "ti": 1024**4}  # fmt: skip
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
MIN_MEMORY = 6 * 1024**2  # Docker refuses a memory limit under 6 MiB
NANO = 10**9
NONE = ("", "none", "0")


def memory_bytes(text: str) -> int | None:
    """Bytes from `4Gi`, `512m`, `2g` or `536870912` (binary units, as Docker reads them);
    None for `none`. Raises ValueError saying what would do."""
    if text.strip().lower() in NONE:
        return None
    found = _MEMORY.match(text)
    unit = found.group(2).lower() if found else ""
    if found is None or unit not in _UNITS:
        raise ValueError("must be a size such as 4Gi, 512Mi or 2g (or none)")
    value = int(Decimal(found.group(1)) * _UNITS[unit])
    if value < MIN_MEMORY:
        raise ValueError("must be at least 6Mi (Docker refuses less), or none")
    return value


def nano_cpus(text: str) -> int | None:
    """NanoCPUs from `2`, `0.5` or `1.25` CPUs; None for `none`."""
    if text.strip().lower() in NONE:
        return None
    try:
        cpus = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError("must be a number of CPUs such as 2 or 0.5 (or none)") from None
    if not cpus.is_finite() or cpus <= 0 or cpus * NANO != int(cpus * NANO):
        raise ValueError("must be a number of CPUs above 0, such as 2 or 0.5 (or none)")
    return int(cpus * NANO)


def said(memory: int | None, cpus: int | None) -> str | None:
    """The limits in words (`4 GiB memory, 2 CPUs`), None when there are none."""
    parts = []
    if memory is not None:
        parts.append(f"{_size(memory)} memory")
    if cpus is not None:
        count = Decimal(cpus) / NANO
        parts.append(f"{count.normalize():f} CPU{'' if count == 1 else 's'}")
    return ", ".join(parts) or None


def _size(value: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size:
            amount = Decimal(value) / size
            return f"{amount.quantize(Decimal('0.01')).normalize():f} {unit}"
    return f"{value} bytes"
