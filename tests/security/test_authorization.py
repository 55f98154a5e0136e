"""Who may do what: actions x actors through the real bot, one fresh sandbox per cell.

Expectations follow bot/access.py and the README ("the requester cannot approve
it", "a click by someone not allowed gets an explanation and changes nothing", "destroy:
its owner directly; others need approval", "Roll back (owner)"). Outcomes:

  ALLOWED   the change happens
  APPROVAL  the wish becomes a new request card that an approver must decide; nothing is
            removed yet
  REFUSED   only the actor is told why (an ephemeral, or the ack of their command) and
            nothing changes: the same records, no new card, the same resources in the fakes

The wrong channel: the card was posted in C0OPS, then the bot restarted with
AISTACK_CHANNELS=C0AISTACK and the actor acts in C0OPS. The README calls the setting "channel
ids where requests are taken", so a new request (a command, or the Roll back button, which
is a destroy request) is refused there; deciding on a request that already exists, or
cleaning up after one, still works where its card is.

The requester of a live stack is its owner: for destroy and Roll back one column covers both.
A request for someone else's live stack (dave's redeploy of alice's) would replace it, so its
owner may reject it, though not approve it; the owner or an approver may transfer a stack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from bot.ledger import MemoryLedger
from bot.sandbox.slack import FakeSlack
from bot.sandbox.world import GROUPS, PEOPLE, TOKEN, SandboxBot
from deployer import Deployment, DeploymentState, Operation
from deployer.adapters.stores.memory import MemoryStore
from deployer.sandbox.faults import FailRule
from deployer.sandbox.server import Sandbox
from tests.bot.blockkit import action_ids
from tests.security.conftest import ALICE, BOB, MALLORY, bot, handled, snapshot

S = DeploymentState
DAVE = "U0DAVE"  # a colleague: neither an approver nor the owner of alice's stack
ALLOWED, APPROVAL, REFUSED = "allowed", "needs approval", "refused"
ANY_NGINX = {"allowed_images": "ghcr.io/sst/opencode:*, nginx:*"}  # the cells redeploy nginx
Setup = Callable[[SandboxBot], Awaitable[Deployment | None]]


# -- scenes: what exists before the actor acts --------------------------------------------
async def asked(world: SandboxBot, user: str, text: str, name: str = "alice") -> Deployment:
    old = getattr(await world.store.latest(name), "id", None)
    reply = await world.driver.command(user, text)
    assert reply.status == 200, reply.body
    return await world.carded(name, lambda d: d.id != old, 5)


async def nothing(world: SandboxBot) -> None:
    pass


async def pending(world: SandboxBot) -> Deployment:
    return await asked(world, ALICE, "deploy alice")


async def pending_by_an_approver(world: SandboxBot) -> Deployment:
    return await asked(world, BOB, "deploy bob", "bob")


async def live(world: SandboxBot) -> Deployment:
    await world.click(BOB, "approve", await pending(world))
    dep = await world.settled("alice", within=10)
    assert dep.state is S.SUCCEEDED
    return dep


async def redeploy_pending(world: SandboxBot) -> Deployment:
    await live(world)
    return await asked(world, DAVE, "deploy alice --image nginx:1.27")


async def rollback_failed(world: SandboxBot) -> Deployment:
    world.engine.dokploy.fail_deploys.add("opencode-alice")
    world.engine.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400)
    await world.click(BOB, "approve", await pending(world))
    dep = await world.settled("alice", within=10)
    assert dep.state is S.ROLLBACK_FAILED and dep.requester == ALICE
    world.engine.dokploy.fail_deploys.clear()
    world.engine.dokploy.faults.clear()  # the cause is fixed: a retry would now succeed
    return dep


async def teardown_failed(world: SandboxBot) -> Deployment:
    await live(world)
    world.engine.dokploy.faults.fail_ops["project.remove"] = FailRule(status=400)
    await world.click(BOB, "approve", await asked(world, DAVE, "destroy alice"))
    dep = await world.settled("alice", within=10)
    assert dep.state is S.ROLLBACK_FAILED and dep.operation is Operation.DESTROY
    world.engine.dokploy.faults.clear()
    return dep


@asynccontextmanager
async def scene(setup: Setup, wrong_channel: bool) -> AsyncIterator[tuple[SandboxBot, Any]]:
    if not wrong_channel:
        async with bot(engine=ANY_NGINX) as world:
            yield world, await setup(world)
            await handled(world)
        assert world.slack.violations == []
        return
    fake = FakeSlack(bot_token=TOKEN, users=PEOPLE, usergroups=GROUPS)
    store = MemoryStore()
    ledger = MemoryLedger(store)  # a restart keeps the database: deployments and cards
    async with Sandbox(deploy_delay=0.01) as sandbox, fake.serve() as url:
        upstreams = (sandbox, fake, url)
        async with bot(upstreams=upstreams, store=store, ledger=ledger, engine=ANY_NGINX) as before:
            subject = await setup(before)
            await handled(before)
        restricted = frozenset({"C0AISTACK"})
        async with bot(
            upstreams=upstreams, store=store, ledger=ledger, channels=restricted, engine=ANY_NGINX
        ) as world:
            yield world, subject
            await handled(world)
    assert fake.violations == []


# -- the table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    action: str  # request | approve | reject | destroy | rollback | retry_rollback | transfer
    actor: str  # the column
    user: str
    setup: Setup
    expect: str
    says: str = ""  # part of the explanation a refused actor gets
    text: str = ""  # the command, for request and destroy

    @property
    def wrong_channel(self) -> bool:
        return self.actor == "wrong channel"


ONLY_APPROVERS = "only approvers can approve or reject"
ONLY_DECIDERS = "only approvers (or whoever asked) can reject"
MAY_STILL_REJECT = "It is your live stack: you may reject it"
ONLY_OWNER = "only the stack's owner or an approver can transfer it"
TO_DAVE = f"transfer alice <@{DAVE}>"
OTHER_CHANNEL = "<#C0AISTACK>"
# fmt: off
CELLS = [
    Cell("request", "requester", ALICE, nothing, ALLOWED, text="deploy alice"),
    Cell("request", "approver", BOB, nothing, ALLOWED, text="deploy bob"),
    Cell("request", "owner", ALICE, live, ALLOWED, text="deploy alice --image nginx:1.27"),
    Cell("request", "stranger", MALLORY, nothing, ALLOWED, text="deploy mallory"),
    Cell("request", "wrong channel", ALICE, nothing, REFUSED, OTHER_CHANNEL, "deploy alice"),
    Cell("approve", "requester", BOB, pending_by_an_approver, REFUSED, "someone else has to"),
    Cell("approve", "approver", BOB, pending, ALLOWED),
    Cell("approve", "owner", ALICE, redeploy_pending, REFUSED, MAY_STILL_REJECT),
    Cell("approve", "stranger", MALLORY, pending, REFUSED, ONLY_APPROVERS),
    Cell("approve", "wrong channel", BOB, pending, ALLOWED),
    Cell("reject", "requester", ALICE, pending, ALLOWED),
    Cell("reject", "approver", BOB, pending, ALLOWED),
    Cell("reject", "owner", ALICE, redeploy_pending, ALLOWED),
    Cell("reject", "stranger", MALLORY, pending, REFUSED, ONLY_DECIDERS),
    Cell("reject", "wrong channel", BOB, pending, ALLOWED),
    Cell("destroy", "owner", ALICE, live, ALLOWED, text="destroy alice"),
    Cell("destroy", "approver", BOB, live, APPROVAL, text="destroy alice"),
    Cell("destroy", "stranger", MALLORY, live, APPROVAL, text="destroy alice"),
    Cell("destroy", "wrong channel", ALICE, live, REFUSED, OTHER_CHANNEL, "destroy alice"),
    Cell("rollback", "owner", ALICE, live, ALLOWED),
    Cell("rollback", "approver", BOB, live, APPROVAL),
    Cell("rollback", "stranger", MALLORY, live, APPROVAL),
    Cell("rollback", "wrong channel", ALICE, live, REFUSED, OTHER_CHANNEL),
    Cell("retry_rollback", "requester", ALICE, rollback_failed, ALLOWED),
    Cell("retry_rollback", "approver", BOB, rollback_failed, ALLOWED),
    Cell("retry_rollback", "owner", ALICE, teardown_failed, ALLOWED),
    Cell("retry_rollback", "stranger", MALLORY, rollback_failed, REFUSED, "or an approver can"),
    Cell("retry_rollback", "wrong channel", BOB, rollback_failed, ALLOWED),
    Cell("transfer", "owner", ALICE, live, ALLOWED, text=TO_DAVE),
    Cell("transfer", "approver", BOB, live, ALLOWED, text=TO_DAVE),
    Cell("transfer", "stranger", MALLORY, live, REFUSED, ONLY_OWNER, TO_DAVE),
    Cell("transfer", "wrong channel", ALICE, live, REFUSED, OTHER_CHANNEL, TO_DAVE),
]
# fmt: on


def _param(cell: Cell) -> Any:
    return pytest.param(cell, id=f"{cell.action}-{cell.actor}")


@pytest.mark.parametrize("cell", [_param(c) for c in CELLS])
async def test_authorization_matrix(cell: Cell) -> None:
    async with scene(cell.setup, cell.wrong_channel) as (world, subject):
        await _act_and_check(world, subject, cell)


async def _act_and_check(world: SandboxBot, subject: Deployment | None, cell: Cell) -> None:
    store, channel = world.store, "C0OPS"
    before, posts, owned = await snapshot(world), _posts(world), await store.live("alice")
    events = len(await store.events("alice")) if subject else 0
    seen = len(world.slack.ephemerals)
    if cell.text:
        reply = await world.driver.command(cell.user, cell.text, channel)
    else:
        assert subject is not None
        action, ts = f"aistack_{cell.action}", await world.card_ts(subject)
        assert ts
        reply = await world.driver.click(cell.user, action, subject.id, channel=channel,
                                         message_ts=ts)  # fmt: skip
    assert reply.status == 200, reply.body
    await handled(world)
    told = [e.text for e in world.slack.ephemerals[seen:] if e.user == cell.user]
    told += [reply.body]  # a command refused in its ack: plain text
    told += [str(r.get("text")) for r in world.slack.responses_for(reply.response_url_hook or "")]

    if cell.expect == REFUSED:
        assert any(cell.says in t for t in told), told
        assert await snapshot(world) == before, "a refused action changed something"
        assert _posts(world) == posts, "a refused action posted a card"
        assert await store.live("alice") == owned, "a refused action changed the owner"
        return
    changed = await snapshot(world) != before
    recorded = subject is not None and len(await store.events("alice")) > events
    assert changed or recorded, f"nothing happened; {cell.user} was told {told}"
    if cell.expect == APPROVAL:
        dep = await store.latest("alice")
        assert dep and dep.operation is Operation.DESTROY and dep.state is S.REQUESTED
        assert dep.requester == cell.user and await world.card_ts(dep)
        assert "aistack_approve" in action_ids((await world.card(dep)).blocks)
        assert world.engine.resources() == before[1], "removed before anyone approved"
        return
    await CHECK_ALLOWED[cell.action](world, subject, cell)
    if cell.action == "request":
        assert world.engine.resources() == before[1], "deployed before anyone approved"


def _posts(world: SandboxBot) -> int:
    return len([c for c in world.slack.calls_to("chat.postMessage") if "thread_ts" not in c.args])


async def _requested(world: SandboxBot, subject: Any, cell: Cell) -> None:
    old = getattr(subject, "id", None)
    dep = await world.carded(cell.text.split()[1], lambda d: d.id != old, 5)
    assert dep.state is S.REQUESTED and dep.requester == cell.user
    assert "aistack_approve" in action_ids((await world.card(dep)).blocks)


async def _approved(world: SandboxBot, subject: Any, cell: Cell) -> None:
    done = await world.settled("alice", within=10)
    assert (done.id, done.state, done.approver) == (subject.id, S.SUCCEEDED, cell.user)
    assert world.engine.resources()["projects"] == ["ai-stack-alice"]


async def _rejected(world: SandboxBot, subject: Any, cell: Cell) -> None:
    done = await world.settled("alice", within=5)
    assert (done.id, done.state) == (subject.id, S.REJECTED)
    assert "Rejected" in (await world.card(done)).text
    if await world.bot.deployer.owner("alice") is None:
        assert not any(world.engine.resources().values())
    else:  # a request for a live stack was rejected: the stack is still there, untouched
        assert world.engine.resources()["projects"] == ["ai-stack-alice"]


async def _transferred(world: SandboxBot, subject: Any, cell: Cell) -> None:
    assert await world.bot.deployer.owner("alice") == DAVE
    moved = (await world.bot.deployer.history("alice"))[-1]
    assert (moved.kind, moved.actor) == ("stack.transferred", cell.user)
    assert (moved.data["from"], moved.data["to"]) == (ALICE, DAVE)


async def _destroyed(world: SandboxBot, subject: Any, cell: Cell) -> None:
    gone = await world.until("alice", lambda d: d.state is S.DESTROYED, 10)
    assert gone.requester == cell.user
    assert not any(world.engine.resources().values())


async def _cleaned(world: SandboxBot, subject: Any, cell: Cell) -> None:
    done = await world.until("alice", lambda d: d.state in (S.ROLLED_BACK, S.DESTROYED), 10)
    assert done.id == subject.id
    assert not any(world.engine.resources().values())


CHECK_ALLOWED = {
    "request": _requested,
    "approve": _approved,
    "reject": _rejected,
    "destroy": _destroyed,
    "rollback": _destroyed,
    "retry_rollback": _cleaned,
    "transfer": _transferred,
}


# -- beyond the table -----------------------------------------------------------------------
async def test_a_failed_teardown_is_retried_to_the_end_by_its_requester() -> None:
    """Retry teardown (a rollback_failed destroy) must run the teardown again, not fail."""
    async with scene(teardown_failed, wrong_channel=False) as (world, failed):
        await world.click(DAVE, "retry_rollback", failed)
        done = await world.until("alice", lambda d: d.state in (S.DESTROYED, S.ROLLED_BACK), 5)
        assert (done.id, done.state) == (failed.id, S.DESTROYED)
        assert not any(world.engine.resources().values())


async def test_a_failed_redeploy_by_someone_else_leaves_the_live_stack_alone() -> None:
    async with scene(redeploy_pending, wrong_channel=False) as (world, redeploy):
        kept = world.engine.resources()
        world.engine.dokploy.fail_images.add("nginx:1.27")  # the new image cannot be pulled
        await world.click(BOB, "approve", redeploy)
        failed = await world.settled("alice", within=10)
        assert failed.state is S.ROLLED_BACK
        assert world.engine.resources() == kept
