"""Shared bits of the benchmark: statistics, the result table, a notifier that drops events."""

from __future__ import annotations

import math
import resource
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from deployer import Deployment, Event


@dataclass(frozen=True)
class Row:
    metric: str
    aistack: str
    baseline: str = ""
    ratio: str = ""


@dataclass(frozen=True)
class Section:
    title: str  # says what the aistack and baseline columns hold in this section
    rows: list[Row]
    notes: list[str]  # the interpretation lines printed under the table


class NullNotifier:
    async def notify(self, event: Event) -> None:
        return None

    async def deliver_credentials(
        self, deployment: Deployment, owner: str, username: str, password: str
    ) -> None:
        return None  # a bench's stacks are never logged into


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "mean": statistics.fmean(ms),
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def render(sections: Sequence[Section]) -> str:
    header = Row("metric", "aistack", "baseline", "ratio")
    rows = [r for s in sections for r in s.rows]
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in Row.__dataclass_fields__]

    def line(r: Row) -> str:
        cells = [r.metric.ljust(widths[0])]
        cells += [
            getattr(r, f).rjust(w)
            for f, w in zip(("aistack", "baseline", "ratio"), widths[1:], strict=True)
        ]
        return " | ".join(cells).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    out = [line(header), rule]
    for section in sections:
        out += [section.title, *map(line, section.rows), rule]
    return "\n".join(out)
