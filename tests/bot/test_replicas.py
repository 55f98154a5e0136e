"""Two bot replicas on one PostgreSQL: one pace per channel for both, cards that never go
back to an older state whichever replica draws them, and a killed replica's job and thread
replies finished by the survivor."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from bot.sandbox.slack import Message
from deployer import DeploymentState
from tests.bot.processes import CHANNEL, Bots, bots, expected_thread, thread_text
from tests.deployer.conftest import PG_URL, fresh_schema

S = DeploymentState
STACKS = ("ann", "bea", "cid")
FINAL = ("is live at", "was removed", "Nothing is left behind", "Rejected", "Expired")


def rank(text: str) -> tuple[int, int]:
    """How far along a card's text is: request, queued, phase i, rolling back, the end."""
    if any(words in text for words in FINAL):
        return (4, 0)
    if "rolling back" in text:
        return (3, 0)
    if phase := re.search(r"phase (\d+) of \d+", text):
        return (2, int(phase.group(1)))
    return (1, 0) if "queued" in text else (0, 0)


def drawn(card: Message) -> list[tuple[int, int]]:
    """Every version the card showed, oldest first."""
    return [rank(text) for text, _ in card.history] + [rank(card.text)]


async def _requested(world: Bots, driver: int, name: str) -> None:
    await world.drivers[driver].command("U0ALICE", f"deploy {name}")
    dep = await world.carded(name)
    ts = await world.card_ts(dep)
    assert ts
    await world.drivers[driver].click("U0BOB", "aistack_approve", dep.id, channel=CHANNEL,
                                      message_ts=ts)  # fmt: skip


async def test_two_replicas_keep_one_pace_never_draw_backwards_and_survive_a_kill(
    tmp_path: Path,
) -> None:
    async with fresh_schema() as schema:
        dsn = f"{PG_URL}?search_path={schema}"
        async with bots(tmp_path, dsn, deploy_delay=1.5, POST_INTERVAL="1",
                        CARD_INTERVAL="0.3") as world:  # fmt: skip
            await world.start()
            await world.start()
            for n, name in enumerate(STACKS):  # requests through both replicas, one channel
                await _requested(world, n % 2, name)
            await world.latest("cid", lambda d: d.state is S.RUNNING)
            world.running[0].kill()  # replica 0 dies mid-deploy; replica 1 goes on

            for name in STACKS:
                done = await world.latest(name, lambda d: d.state is S.SUCCEEDED)

                async def complete() -> bool:
                    replies = await world.thread(done)  # noqa: B023 (awaited in this iteration)
                    return bool(replies) and "is live at" in replies[-1].text

                await world.until(f"{name}'s thread to end with the outcome", complete)
                replies = await world.thread(done)
                assert thread_text(replies) == await expected_thread(world.store, done)
                ts = await world.card_ts(done)
                assert done.channel and ts
                versions = drawn(world.slack.card(done.channel, ts))
                assert versions == sorted(versions), (name, versions)  # never backwards
            posted = [c.at for c in world.slack.calls_to("chat.postMessage") if c.error is None]
            gaps = [round(b - a, 3) for a, b in itertools.pairwise(posted)]
            assert world.slack.max_posts_per_second(CHANNEL) <= 1, gaps  # both replicas
            assert world.slack.violations == []
