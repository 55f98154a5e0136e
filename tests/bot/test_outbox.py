"""Every acknowledged action ends somewhere visible, across a SIGKILL of the bot.

A real `python -m bot` process (SQLite store) is killed while Slack refuses its posts
(internal_error: the bot is retrying); the restarted bot posts what the dead one owed.
"""

from __future__ import annotations

from pathlib import Path

from deployer import Deployment, DeploymentState, Operation
from tests.bot.processes import CHANNEL, Bots, bots, expected_thread, phase_steps, thread_text

S = DeploymentState


async def _live(world: Bots, name: str) -> None:
    driver = world.drivers[-1]
    await driver.command("U0ALICE", f"deploy {name}")
    dep = await world.carded(name)
    ts = await world.card_ts(dep)
    assert ts
    await driver.click("U0BOB", "aistack_approve", dep.id, channel=CHANNEL,
                       message_ts=ts)  # fmt: skip
    done = await world.latest(name, lambda d: d.state is S.SUCCEEDED)

    async def all_posted() -> bool:  # so the refusals a test sets up hit only what follows
        replies = await world.thread(done)
        return bool(replies) and "is live at" in replies[-1].text

    await world.until(f"{name}'s thread to end with the outcome", all_posted)


async def test_an_acknowledged_destroy_is_carded_and_done_after_a_kill(tmp_path: Path) -> None:
    async with bots(tmp_path, f"sqlite:///{tmp_path / 'aistack.db'}") as world:
        driver = await world.start()
        await _live(world, "alice")
        live = await world.latest("alice", lambda d: True)
        live_ts = await world.card_ts(live)
        assert live_ts
        cards = len(world.cards())
        calls = len(world.slack.calls)
        # Slack refuses every post until the bot is dead: however slow the machine, the card
        # cannot get through before the kill
        world.slack.fail_next("chat.postMessage", "internal_error", count=10_000)
        clicked = await driver.click(  # the owner's Destroy
            "U0ALICE", "aistack_destroy", live.id, channel=CHANNEL, message_ts=live_ts
        )
        assert clicked.status == 200  # acknowledged
        await world.failed_post(calls)  # the card is being retried...
        world.running[-1].kill()  # ...when the bot dies
        world.slack.heal("chat.postMessage")

        request = await world.latest("alice", lambda d: d.operation is Operation.DESTROY)
        assert await world.card_ts(request) is None and request.channel == CHANNEL
        kinds = [e.kind for e in await world.store.events_for(request.id)]
        # what the click decided, stored in one write before the card
        assert kinds[:3] == ["deployment.requested", "deployment.approved", "deployment.queued"]

        await world.start()
        done = await world.carded("alice", lambda d: d.state is S.DESTROYED)
        assert done.id == request.id
        card = await world.until("the card says it was removed", lambda: _says(world, done))
        assert len(world.cards()) == cards + 1  # one card for the request, not two
        assert "was removed" in card


async def _says(world: Bots, dep: Deployment) -> str | None:
    ts = await world.card_ts(dep)
    assert dep.channel and ts
    text = world.slack.card(dep.channel, ts).text
    return text if "was removed" in text else None


async def test_thread_replies_due_at_a_kill_are_posted_in_order_after_it(tmp_path: Path) -> None:
    async with bots(tmp_path, f"sqlite:///{tmp_path / 'aistack.db'}") as world:
        driver = await world.start()
        await driver.command("U0ALICE", "deploy ben")
        dep = await world.carded("ben")
        ts = await world.card_ts(dep)
        assert ts
        await driver.click("U0BOB", "aistack_approve", dep.id, channel=CHANNEL,
                           message_ts=ts)  # fmt: skip

        async def replied() -> bool:
            # and the owner's login is out (a DM, phase 7): the refusals hit thread replies
            return bool(await world.thread(dep)) and bool(world.slack.direct_messages("U0ALICE"))

        await world.until("a first thread reply", replied)
        calls = len(world.slack.calls)
        world.slack.fail_next("chat.postMessage", "internal_error", count=10_000)
        await world.failed_post(calls)  # a reply is due and being retried...
        world.running[-1].kill()  # ...when the bot dies
        world.slack.heal("chat.postMessage")
        posted = phase_steps(await world.thread(dep))
        assert posted and sorted(posted) != list(range(1, 10))  # replies were still due

        await world.start()
        done = await world.latest("ben", lambda d: d.state is S.SUCCEEDED)

        async def complete() -> bool:
            replies = await world.thread(done)
            return bool(replies) and "is live at" in replies[-1].text

        await world.until("the thread to end with the outcome", complete)
        replies = await world.thread(done)
        # every phase, in the order it happened, once; the outcome once
        assert thread_text(replies) == await expected_thread(world.store, done)
        assert sorted(phase_steps(replies)) == list(range(1, 10))
        assert world.slack.violations == []
