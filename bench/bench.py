"""`make bench`: every figure measured side by side in one run, printed as one table.

1. Slack ack latency: the bot's /slack/events vs a bare Bolt app that only acks.
2. Deploy overhead: one deploy through the saga vs the same calls in a straight line.
3. Scale: 100 concurrent deploys through the bot, approvals included, vs one deploy.

Everything runs in this process and talks only to 127.0.0.1. The figures are also written
to bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import ack, overhead, scale
from bench.common import Section, render
from deployer.logs import configure_logging

Step = Callable[[], Awaitable[tuple[Section, dict[str, Any]]]]
RESULTS = Path(__file__).with_name("results.json")


async def run(args: argparse.Namespace) -> tuple[list[Section], dict[str, Any]]:
    sections: list[Section] = []
    raw: dict[str, Any] = {}
    steps: list[tuple[str, Step]] = [
        ("ack", partial(ack.measure, args.requests, args.warmup)),
        ("overhead", partial(overhead.measure, args.repeats)),
        ("scale", partial(scale.measure, args.deploys, args.channels, trace=args.tracemalloc)),
    ]
    for key, step in steps:
        gc.collect()
        started = time.perf_counter()
        print(f"[bench] {key} ...", file=sys.stderr, flush=True)
        section, figures = await step()
        figures["section_wall_s"] = time.perf_counter() - started
        sections.append(section)
        raw[key] = figures
    return sections, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="signed commands per endpoint")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured commands first")
    parser.add_argument("--repeats", type=int, default=overhead.REPEATS, help="deploys per kind")
    parser.add_argument("--deploys", type=int, default=100, help="concurrent deploys")
    parser.add_argument("--channels", type=int, default=10, help="channels they are spread over")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace Python allocations during the scale batch (about triples its CPU time)",
    )
    args = parser.parse_args()
    configure_logging("warning")  # product warnings and errors still reach stderr
    started = time.perf_counter()
    sections, raw = asyncio.run(run(args))
    total = time.perf_counter() - started
    print(render(sections))
    print()
    for section in sections:
        for note in section.notes:
            print(f"- {note}")
    raw["run"] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": total,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "args": vars(args),
    }
    RESULTS.write_text(json.dumps(raw, indent=2, default=str) + "\n")
    print(f"\nwhole run: {total:.0f} s; figures written to {RESULTS}")


if __name__ == "__main__":
    main()
