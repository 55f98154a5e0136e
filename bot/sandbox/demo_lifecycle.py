"""The demo's second act: a stack's life between its deploy and its destroy.

An upgrade, an upgrade that never answers and is reverted on its own, a roll back from the
live card, the releases, a stop and a start, the container's logs with its secret masked,
the expiry reminder with Extend, and a new password for the stack's login. Each step checks
what people would see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bot.sandbox.slack import Message
from bot.sandbox.world import SandboxBot
from deployer import Deployment, DeploymentState, Operation

S = DeploymentState
DEV = "ghcr.io/sst/opencode:dev"
BROKEN = "ghcr.io/sst/opencode:broken"  # deploys, but its container never answers
SECRET = "sk-demo-7f3a9c0d"  # the stack's API key (AISTACK_STACK_ENV): never shown
ENGINE = {"stack_env": {"OPENAI_API_KEY": SECRET}, "health_timeout": 4.0,
          "stack_ttl": "2h", "expiry_notice": "2h"}  # fmt: skip


class Say(Protocol):
    def show(self) -> None: ...


Step = Callable[..., None]
Expect = Callable[[bool, str], None]


async def lifecycle(
    world: SandboxBot, say: Say, step: Step, expect: Expect, live: Deployment
) -> Deployment:
    """From alice's live stack through its day-two life; returns the live deployment."""
    live = await _upgrades(world, say, step, expect, live)
    live = await _roll_back(world, say, step, expect, live)
    await _stop_and_start(world, say, step, expect)
    await _logs(world, say, step, expect)
    await _reminder(world, say, step, expect, live)
    await _credentials(world, say, step, expect)
    return live


async def _upgrades(
    world: SandboxBot, say: Say, step: Step, expect: Expect, live: Deployment
) -> Deployment:
    step(say, "alice upgrades her stack to another tag", f"alice> /aistack deploy alice "
         f"--image {DEV}", "bob clicks [Approve]")  # fmt: skip
    upgraded = await _approved_deploy(world, f"deploy alice --image {DEV}", live)
    expect(upgraded.state is S.SUCCEEDED and upgraded.release == 2, "the upgrade failed")
    world.engine.dokploy.silent_images.add(BROKEN)
    step(say, "alice upgrades to an image whose container never answers: aistack puts "
         "release 2 back on its own", f"alice> /aistack deploy alice --image {BROKEN}",
         "bob clicks [Approve]")  # fmt: skip
    failed = await _approved_deploy(world, f"deploy alice --image {BROKEN}", upgraded)
    card = (await world.card(failed)).text
    expect(failed.state is S.ROLLED_BACK and "reverted to release 2" in card,
           f"the failed upgrade was not reverted: {card[:120]}")  # fmt: skip
    return upgraded


async def _approved_deploy(world: SandboxBot, text: str, after: Deployment) -> Deployment:
    await world.driver.command("U0ALICE", text)
    request = await world.carded("alice", lambda d: d.created_at > after.created_at)
    await world.click("U0BOB", "approve", request)
    return await world.settled("alice", within=60)


async def _roll_back(
    world: SandboxBot, say: Say, step: Step, expect: Expect, live: Deployment
) -> Deployment:
    step(say, "alice rolls back to the release before, from her live card",
         "alice clicks [Roll back] and confirms", "alice> /aistack releases alice")  # fmt: skip
    await world.click("U0ALICE", "roll_back", live)
    back = await world.until("alice", lambda d: d.restores == 1 and d.state is S.SUCCEEDED, 60)
    await world.driver.command("U0ALICE", "releases alice")
    releases = await world.told("U0ALICE", "roll back of 1")
    expect(back.release == 3 and SECRET not in releases, "release 1 is not back")
    return back


async def _stop_and_start(world: SandboxBot, say: Say, step: Step, expect: Expect) -> None:
    step(say, "alice stops her stack for the weekend; its data is kept",
         "alice> /aistack stop alice", "carol> /aistack status alice")  # fmt: skip
    stopped = await _run(world, "stop alice", Operation.STOP)
    await world.driver.command("U0CAROL", "status alice")
    await world.told("U0CAROL", "Stopped since")
    step(say, "and starts it again on Monday", "alice> /aistack start alice")
    started = await _run(world, "start alice", Operation.START)
    expect((stopped.state, started.state) == (S.SUCCEEDED, S.SUCCEEDED), "stop or start failed")


async def _run(world: SandboxBot, text: str, operation: Operation) -> Deployment:
    await world.driver.command("U0ALICE", text)
    await world.carded("alice", lambda d: d.operation is operation)
    return await world.settled("alice", within=60)


async def _logs(world: SandboxBot, say: Say, step: Step, expect: Expect) -> None:
    world.engine.dokploy.container_prints("opencode-alice", "agent ready on :4096",
                                          f"provider key {SECRET} loaded")  # fmt: skip
    step(say, "alice reads her container's last lines; the key it printed is masked",
         "alice> /aistack logs alice --tail 5")  # fmt: skip
    await world.driver.command("U0ALICE", "logs alice --tail 5")
    shown = await world.told("U0ALICE", "agent ready")
    expect(SECRET not in shown and "••••" in shown, "the logs showed the key")


async def _reminder(
    world: SandboxBot, say: Say, step: Step, expect: Expect, live: Deployment
) -> None:
    step(say, "alice's stack expires in 2 hours: aistack reminds her in a direct message "
         "and under its card", "(the lifecycle sweep runs)")  # fmt: skip
    await world.bot.deployer.sweep_lifetimes()
    await world.slack.wait_for(lambda: bool(_reminders(world)))
    dm = _reminders(world)[-1]
    step(say, "alice clicks [Extend] in her direct message: no approval needed",
         "alice clicks [Extend]")  # fmt: skip
    reply = await world.driver.click("U0ALICE", "aistack_extend", live.id,
                                     channel=dm.channel, message_ts=dm.ts)  # fmt: skip
    expect(reply.status == 200, "the Extend click was refused")
    await world.told("U0ALICE", "now expires")


def _reminders(world: SandboxBot) -> list[Message]:
    return [m for m in world.slack.direct_messages("U0ALICE") if "expires" in m.text]


async def _credentials(world: SandboxBot, say: Say, step: Step, expect: Expect) -> None:
    logins = len(_logins(world))
    step(say, "alice's login went to her alone when her stack was made; bob, an approver, "
         "renews it (say it leaked): the new password goes to alice alone",
         "bob> /aistack credentials alice")  # fmt: skip
    await world.driver.command("U0BOB", "credentials alice")
    await world.told("U0BOB", "on its way to")
    await world.slack.wait_for(lambda: len(_logins(world)) > logins)
    new = _logins(world)[-1]
    expect(not any(_texts(m) in t for m in [new] for t in world.said_to("U0BOB")),
           "bob saw the new password")  # fmt: skip


def _logins(world: SandboxBot) -> list[Message]:
    return [m for m in world.slack.direct_messages("U0ALICE") if "Password:" in _texts(m)]


def _texts(message: Message) -> str:
    return " ".join(str(b.get("text", {}).get("text", "")) for b in message.blocks
                    if isinstance(b.get("text"), dict))  # fmt: skip
