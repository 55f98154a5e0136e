"""The notifier's writers (one card writer and one thread writer per deployment) and the
pure helpers they share: what a writer owes, how lines join into replies."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from bot.blocks import MAX_TEXT
from deployer import TERMINAL, Deployment, Event, EventKind


@dataclass
class Writer:
    """One writer task of one deployment; what it has taken but not written is unsettled."""

    kind: ClassVar[str]
    deployment_id: str
    unsettled: int = 0
    done: bool = False
    keeper: asyncio.Task[None] | None = None  # renews the writer's lease while it writes

    def owed(self) -> int:
        return self.unsettled


@dataclass
class CardWriter(Writer):
    kind = "card"
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    ending: asyncio.Event = field(default_factory=asyncio.Event)  # a terminal event is queued

    def owed(self) -> int:
        return self.unsettled + self.queue.qsize()


@dataclass(frozen=True)
class Line:
    event: Event
    text: str | None  # None for an outcome: it is rendered from the store when posted
    due: float  # monotonic time it happened
    counted: bool = False  # one of the lines this process was told of (wait_idle waits on it)

    @property
    def outcome(self) -> bool:
        return ends(self.event)

    @property
    def last_phase(self) -> bool:
        e = self.event
        return e.kind == EventKind.PHASE_DONE and e.index is not None and e.index == e.total


@dataclass
class ThreadWriter(Writer):
    kind = "thread"
    lines: deque[Line] = field(default_factory=deque)  # read back from the store, not posted
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    heard: int = 0  # lines this process was told of, not yet read back from the store
    through: int = 0  # the seq of the last event read back
    replying: bool = False  # lines are taken into a reply not posted yet: the cursor waits
    since: float = -math.inf  # when the writer started: a backlog is due from then on

    def owed(self) -> int:
        return self.unsettled + self.heard + sum(line.counted for line in self.lines)


def ends(event: Event) -> bool:
    """A transition into a terminal state: the card shows it at once, the thread may say it."""
    return event.kind.transition and event.state in TERMINAL


def shown(drawn: Deployment | None, dep: Deployment) -> bool:
    """The card already shows this ending (a terminal state does not change while it lasts)."""
    return (
        drawn is not None
        and drawn.state in TERMINAL
        and (drawn.version, drawn.state) == (dep.version, dep.state)
    )


def posted_through(target: ThreadWriter) -> int:
    """The cursor after a reply: every event before the next line still to post."""
    return (target.lines[0].event.seq or 1) - 1 if target.lines else target.through


def chunks(texts: list[str]) -> list[str]:
    """Lines joined into as few replies as Slack's text limit allows; none is cut or lost."""
    chunks: list[str] = []
    for text in texts:
        if chunks and len(chunks[-1]) + 1 + len(text) <= MAX_TEXT:
            chunks[-1] += "\n" + text
        else:
            chunks.append(text)
    return chunks


async def batch(queue: asyncio.Queue[Event]) -> list[Event]:
    """At least one event, and every other one already waiting."""
    return [await queue.get(), *waiting(queue)]


def waiting(queue: asyncio.Queue[Event]) -> list[Event]:
    events = []
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            events.append(queue.get_nowait())
    return events
