"""`make demo`: the bot for real, in HTTP mode, between the Slack fake and the deployer sandbox.

People type commands and click buttons through signed requests, as Slack sends them; the
transcript shows what they would read in the channel. Exits non-zero if a step did not happen.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from bot.ledger import CardLedger, open_ledger
from bot.sandbox import demo_lifecycle
from bot.sandbox.world import PEOPLE, SandboxBot, sandbox_bot
from deployer import TERMINAL, DeploymentState, Operation, Store, configure_logging, open_store

S = DeploymentState
NAMES = {**PEOPLE, "S0APPROVERS": "approvers"}
EVIL = "docker.io/evil/miner:latest"
DEV = "ghcr.io/sst/opencode:dev"


class DemoFailed(Exception):
    pass


class Transcript:
    """Prints the Slack traffic since the last look, as a person would read it."""

    def __init__(self, world: SandboxBot, out: Callable[[str], None] = print) -> None:
        self._world = world
        self._seen_calls = 0
        self._seen_hooks = 0
        self._out = out

    def show(self) -> None:
        calls = self._world.slack.calls[self._seen_calls :]
        self._seen_calls += len(calls)
        for call in calls:
            if call.error is not None:
                self._out(f"      (Slack answered {call.method}: {call.error}; the bot waits)")
            elif call.method == "chat.postMessage" and call.args.get("thread_ts"):
                self._out("    ↳ " + plain(str(call.args.get("text", ""))))
            elif call.method == "chat.postMessage" and str(call.args["channel"])[:1] in "UWD":
                who = NAMES.get("U" + str(call.args["channel"])[1:], "?")
                self._out(f"[direct message to {who}]  aistack:")
                blocks = hidden_passwords(call.args.get("blocks"))
                self._blocks(blocks, str(call.args.get("text", "")))
            elif call.method == "chat.postMessage":
                self._out("#ops  aistack:")
                self._blocks(call.args.get("blocks"), str(call.args.get("text", "")))
            elif call.method == "chat.update":
                self._out("#ops  (card edited) " + plain(str(call.args.get("text", ""))))
            elif call.method == "chat.postEphemeral":
                who = NAMES.get(str(call.args.get("user")), "?")
                self._out(f"      [only {who} sees] " + plain(str(call.args.get("text", ""))))
        hooks = self._world.slack.responses[self._seen_hooks :]
        self._seen_hooks += len(hooks)
        for said in hooks:
            public = said.get("response_type") == "in_channel"
            self._out("#ops  aistack:" if public else "      [only you see]")
            self._blocks(said.get("blocks"), str(said.get("text", "")))

    def _blocks(self, blocks: object, fallback: str) -> None:
        """A message's blocks, line by line: what the channel shows, buttons as [Label]."""
        lines = list(block_lines(blocks)) if isinstance(blocks, list) else []
        for line in lines or [plain(fallback)]:
            self._out("        " + line)


def block_lines(blocks: list[object]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        texts = [block.get("text"), *(block.get("fields") or [])]
        texts += [e for e in block.get("elements") or [] if e.get("type") != "button"]
        for text in texts:
            if isinstance(text, dict) and text.get("text"):
                lines += [plain(part) for part in str(text["text"]).splitlines() if part.strip()]
        buttons = [e for e in block.get("elements") or [] if e.get("type") == "button"]
        if buttons:
            lines.append("  ".join(f"[{e['text']['text']}]" for e in buttons))
    return lines


def hidden_passwords(blocks: object) -> object:
    """A login's password, as the owner's direct message holds it, left out of the printout."""
    if isinstance(blocks, dict):
        return {k: hidden_passwords(v) for k, v in blocks.items()}
    if isinstance(blocks, list):
        return [hidden_passwords(item) for item in blocks]
    if isinstance(blocks, str):
        return re.sub(r"Password: `[^`]*`", "Password: `(only its owner sees it)`", blocks)
    return blocks


def plain(text: str) -> str:
    """mrkdwn as it reads on screen: mentions as @names, no markup, one line."""
    text = re.sub(r"<@(\w+)>", lambda m: "@" + NAMES.get(m.group(1), m.group(1)), text)
    text = re.sub(r"<!subteam\^(\w+)>", lambda m: "@" + NAMES.get(m.group(1), m.group(1)), text)
    text = re.sub(r"<#(\w+)>", r"#\1", text)
    # bold stars go, but not inside code: `ghcr.io/sst/opencode:*` keeps its star
    parts = text.split("`")
    text = "".join(p if i % 2 else p.replace("*", "") for i, p in enumerate(parts))
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


async def run() -> None:
    with tempfile.TemporaryDirectory(prefix="aistack-demo-") as folder:
        url = f"sqlite:///{folder}/aistack.db"  # the default store kind
        store = await open_store(url)
        try:
            ledger = await open_ledger(url, store)
            try:
                await _run(store, ledger)
            finally:
                await ledger.close()
        finally:
            await store.close()


async def _run(store: Store, ledger: CardLedger) -> None:
    async with sandbox_bot(
        store=store, ledger=ledger, deploy_delay=1.5, card_interval=1.0, post_interval=0.2,
        engine={"health_interval": 0.3, "poll_initial": 0.3, "poll_max": 0.6,
                "dns_poll_initial": 0.2, **demo_lifecycle.ENGINE},
    ) as world:  # fmt: skip
        world.engine.dokploy.faults.latency = world.engine.dns.faults.latency = 0.02
        say = Transcript(world)
        await _tour(world, say)
        if world.slack.violations:
            raise DemoFailed(f"Slack calls broke the API contract: {world.slack.violations}")
        if any(world.engine.resources().values()):
            raise DemoFailed(f"left behind in the sandbox: {world.engine.resources()}")


async def _tour(world: SandboxBot, say: Transcript) -> None:
    step(say, "alice asks what a deploy would do", "alice> /aistack deploy alice --dry-run")
    await world.driver.command("U0ALICE", "deploy alice --dry-run")
    await world.told("U0ALICE", "Dry run")
    step(say, "alice asks for her stack", "alice> /aistack deploy alice")
    await world.driver.command("U0ALICE", "deploy alice")
    dep = await world.carded("alice")
    step(say, "alice clicks Approve on her own request: refused, she is not an approver "
         "(she may still withdraw it with Reject)", "alice clicks [Approve]")  # fmt: skip
    await world.click("U0ALICE", "approve", dep)
    await world.told("U0ALICE", "withdraw it with Reject")
    step(say, "bob, an approver, approves", "bob clicks [Approve]")
    await world.click("U0BOB", "approve", dep)
    live = await world.settled("alice", within=60)
    expect(live.state is S.SUCCEEDED, "alice is not live")
    step(say, "anyone asks about it", "carol> /aistack status alice", "carol> /aistack list")
    await world.driver.command("U0CAROL", "status alice")
    await world.driver.command("U0CAROL", "list")
    await world.slack.wait_for(lambda: len(world.slack.responses) >= 3)
    await _takeover(world, say)
    await _failing(world, say)
    live = await demo_lifecycle.lifecycle(world, say, step, expect, live)
    card = await world.card(live)
    label = next(
        b["text"]["text"] for b in _buttons(card.blocks) if b["action_id"] == "aistack_destroy"
    )
    step(say, "alice removes her live stack from its card", f"alice clicks [{label}] and confirms")
    await world.click("U0ALICE", "destroy", live)
    # the click is handled in its own task: wait for the destroy it makes, not the latest
    removal = await world.until(
        "alice", lambda d: d.operation is Operation.DESTROY and d.state in TERMINAL, within=60
    )
    expect(removal.state is S.DESTROYED, "alice not removed")
    say.show()


async def _takeover(world: SandboxBot, say: Transcript) -> None:
    """Nobody takes over someone else's stack unseen: an image from anywhere is refused at
    once; a redeploy of alice's stack says so first, naming her, and she rejects it."""
    step(say, "mallory tries to run her own image on alice's stack",
         f"mallory> /aistack deploy alice --image {EVIL}")  # fmt: skip
    await world.driver.command("U0MALLORY", f"deploy alice --image {EVIL}")
    await world.told("U0MALLORY", "is not allowed here")
    step(say, "mallory asks to redeploy alice's stack with another tag; the card says whose "
         "stack it replaces", f"mallory> /aistack deploy alice --image {DEV}")  # fmt: skip
    await world.driver.command("U0MALLORY", f"deploy alice --image {DEV}")
    takeover = await world.carded("alice", lambda d: d.requester == "U0MALLORY")
    first = (await world.card(takeover)).text.splitlines()[0]
    expect(
        "replaces <@U0ALICE>'s live stack" in first, f"the card reads like a new deploy: {first}"
    )
    step(say, "alice, the owner, rejects it", "alice clicks [Reject]")
    await world.click("U0ALICE", "reject", takeover)
    done = await world.until("alice", lambda d: d.id == takeover.id and d.state is not S.REQUESTED)
    expect((done.state, done.approver) == (S.REJECTED, "U0ALICE"), "alice could not reject it")


async def _failing(world: SandboxBot, say: Transcript) -> None:
    world.engine.dokploy.fail_deploys.add("opencode-carol")
    step(say, "carol's deploy fails in the middle (the image will not start)",
         "carol> /aistack deploy carol", "bob clicks [Approve]")  # fmt: skip
    await world.driver.command("U0CAROL", "deploy carol")
    dep = await world.carded("carol")
    await world.click("U0BOB", "approve", dep)
    expect((await world.settled("carol", within=60)).state is S.ROLLED_BACK, "no rollback")


def step(say: Transcript, title: str, *actions: str) -> None:
    say.show()
    print(f"\n== {title}")
    for action in actions:
        print(f"   {action}")


def expect(condition: bool, problem: str) -> None:
    if not condition:
        raise DemoFailed(problem)


def main() -> int:
    configure_logging("error")
    try:
        asyncio.run(run())
    except (DemoFailed, TimeoutError) as exc:
        print(f"\ndemo FAILED: {exc or 'a step timed out'}", file=sys.stderr)
        return 1
    print("\ndemo finished: every step happened as it should")
    return 0


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b.get("type") == "actions" for e in b.get("elements", [])]


if __name__ == "__main__":
    sys.exit(main())
