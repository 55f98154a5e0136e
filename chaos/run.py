"""`make chaos`: many deploys and teardowns while the upstreams and the bot misbehave.

A real bot process (HTTP mode, SQLite store) serves people driven through signed requests;
each round starts work and injects one fault: Dokploy 5xx, hangs, lost create responses,
429 bursts from Slack and Dokploy, a Dokploy outage (the breaker opens, deploys fail fast,
undos are retried once it is back), failing builds, and SIGKILL of the bot. At the end, with
the faults gone, the invariants must hold: every deployment terminal, nothing orphaned in
Dokploy or DNS, every card showing its final state, the audit trail complete.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.ledger import SqliteLedger
from bot.sandbox.driver import SlackDriver
from bot.sandbox.slack import FakeSlack
from bot.sandbox.world import APPROVERS, GROUPS, PEOPLE, SECRET, TOKEN
from chaos.process import BotProcess
from deployer import TERMINAL, Deployment, DeploymentState
from deployer.adapters.stores.sqlite import SqliteStore
from deployer.sandbox.server import Sandbox

S = DeploymentState
FAULTS = ("dokploy_5xx", "dokploy_429", "dns_429", "hang", "lost_response", "slack_429",
          "slack_error", "outage", "failing_build", "none")  # fmt: skip
CREATES = ("project.create", "application.create", "domain.create")
CARD_SAYS = {S.SUCCEEDED: "is live at", S.ROLLED_BACK: "Nothing is left behind",
             S.DESTROYED: "was removed", S.REJECTED: "Rejected", S.EXPIRED: "Expired"}  # fmt: skip


@dataclass
class Report:
    deploys: int = 0
    teardowns: int = 0
    kills: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    final: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        final = ", ".join(f"{k} {v}" for k, v in sorted(self.final.items()))
        return (f"chaos: {self.deploys} deploys, {self.teardowns} teardowns, {self.kills} bot "
                f"kills (SIGKILL), faults: {faults}; final states: {final}; all invariants "
                f"held; {self.seconds:.0f} s")  # fmt: skip


def chaos_env(sandbox: Sandbox, api_url: str, database: Path) -> dict[str, str]:
    fast = {
        f"AISTACK_{key}": value
        for key, value in (
            ("POLL_INITIAL", "0.1"), ("POLL_MAX", "0.3"), ("HEALTH_INTERVAL", "0.1"),
            ("DNS_POLL_INITIAL", "0.1"), ("HTTP_TIMEOUT", "1"), ("RETRY_INITIAL", "0.1"),
            ("RETRY_MAX", "0.5"), ("RETRY_DEADLINE", "5"), ("BREAKER_FAIL_MAX", "4"),
            ("BREAKER_RESET", "1"), ("LEASE_SECONDS", "1.5"), ("HEARTBEAT_SECONDS", "0.4"),
            ("ROLLBACK_RETRY_INITIAL", "0.5"), ("ROLLBACK_RETRY_MAX", "2"),
            ("APPROVAL_TTL", "20"), ("CARD_INTERVAL", "0.3"), ("POST_INTERVAL", "0"),
            ("WORKERS", "8"), ("HEALTH_TIMEOUT", "20"),
            # a few people make many stacks here: the quota is not what chaos tests
            ("MAX_STACKS_PER_USER", "1000"), ("MAX_STACKS", "1000"),
        )
    }  # fmt: skip
    slack = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api_url,
             "AISTACK_APPROVERS": APPROVERS}  # fmt: skip
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("AISTACK_", "SLACK_"))}  # fmt: skip
    return base | sandbox.env() | fast | slack | {"AISTACK_DATABASE_URL": f"sqlite:///{database}"}


class Chaos:
    def __init__(self, sandbox: Sandbox, slack: FakeSlack, api_url: str, store: SqliteStore,
                 ledger: SqliteLedger, bot: BotProcess, rng: random.Random) -> None:  # fmt: skip
        self.sandbox, self.slack, self.api_url = sandbox, slack, api_url
        self.store, self.ledger, self.bot, self.rng = store, ledger, bot, rng
        self.report = Report()
        self.driver: SlackDriver | None = None
        self._names = 0

    async def connect(self, url: str) -> None:
        if self.driver is not None:
            await self.driver.close()
        self.driver = SlackDriver(url, SECRET, response_base=self.api_url, names=PEOPLE)

    async def round(self, index: int, kill_every: int) -> None:
        self._heal()
        fault = self.rng.choice(FAULTS)
        self.report.faults[fault] += 1
        await self._inject(fault)
        live = [d for d in await self.store.list_latest() if d.state is S.SUCCEEDED]
        if live and self.rng.random() < 0.35:
            await self._teardown(self.rng.choice(live))
        else:
            await self._deploy(failing=fault == "failing_build")
        if kill_every and index % kill_every == kill_every - 1:
            await asyncio.sleep(self.rng.uniform(0.05, 0.6))  # inside phases, or between them
            self.bot.kill()
            self.report.kills += 1
            await self.connect(await self.bot.start())
        await asyncio.sleep(self.rng.uniform(0.1, 0.4))

    async def _deploy(self, *, failing: bool) -> None:
        assert self.driver is not None
        self._names += 1
        name = f"user{self._names:03d}"
        if failing:
            self.sandbox.dokploy.fail_deploys.add(f"opencode-{name}")
        self.report.deploys += 1
        await self.driver.command("U0ALICE", f"deploy {name}")
        carded = await self._carded(name)
        if carded is not None:
            dep, ts = carded
            await self.driver.click("U0BOB", "aistack_approve", dep.id, channel=dep.channel or "",
                                    message_ts=ts)  # fmt: skip

    async def _teardown(self, live: Deployment) -> None:
        ts = await self._card_ts(live)
        assert self.driver is not None and ts
        self.report.teardowns += 1
        await self.driver.click(live.requester, "aistack_destroy", live.id,
                                channel=live.channel or "", message_ts=ts)  # fmt: skip

    async def _card_ts(self, dep: Deployment) -> str | None:
        card = await self.ledger.card(dep.id)
        return None if card is None else card.ts

    async def _carded(self, name: str) -> tuple[Deployment, str] | None:
        """The request and its card once posted (None if the bot died before that)."""
        for _ in range(300):
            dep = await self.store.latest(name)
            if dep is not None and (ts := await self._card_ts(dep)):
                return dep, ts
            await asyncio.sleep(0.01)
        return None

    async def _inject(self, fault: str) -> None:
        dokploy, dns = self.sandbox.dokploy.faults, self.sandbox.dns.faults
        if fault == "dokploy_5xx":
            dokploy.error_rate = 0.2
        elif fault == "dokploy_429":
            dokploy.retry_after, dokploy.burst_429 = 0.2, 3
        elif fault == "dns_429":
            dns.retry_after, dns.burst_429 = 0.2, 3
        elif fault == "hang":
            dokploy.hang_ops[self.rng.choice([*CREATES, "deployment.all"])] = 1
        elif fault == "lost_response":
            dokploy.lose_response_ops[self.rng.choice(CREATES)] = 1
            dns.lose_response_ops["rrsets.create"] = 1
        elif fault == "slack_429":
            self.slack.ratelimit_next("chat.update", 2, retry_after=1)
        elif fault == "slack_error":
            self.slack.fail_next("chat.postMessage", "internal_error", count=2)
        elif fault == "outage":
            dokploy.error_rate = 1.0  # every Dokploy call fails until the next round heals

    def _heal(self) -> None:
        self.sandbox.dokploy.faults.clear()
        self.sandbox.dns.faults.clear()

    async def settle(self, within: float) -> None:
        """With the faults gone, wait until every deployment is terminal and clean."""
        self._heal()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            deps = await self._all()
            if deps and all(d.state in TERMINAL and d.state is not S.ROLLBACK_FAILED
                            for d in deps):  # fmt: skip
                return
            await asyncio.sleep(0.2)
        stuck = {d.stack: str(d.state) for d in await self._all() if d.state not in TERMINAL
                 or d.state is S.ROLLBACK_FAILED}  # fmt: skip
        raise AssertionError(f"not settled after {within:.0f} s: {stuck}")

    async def _posted(self, dep: Deployment) -> tuple[Deployment, str]:
        """The deployment once its card is posted, and the card: every acknowledged request
        gets one, even when the bot died before posting it (the restarted bot's sweep posts
        it)."""
        for _ in range(300):
            if ts := await self._card_ts(dep):
                return await self.store.get(dep.id), ts
            await asyncio.sleep(0.05)
            dep = await self.store.get(dep.id)
        raise AssertionError(f"{dep.stack}'s {dep.operation} ({dep.state}) never got its card")

    async def _all(self) -> list[Deployment]:
        found: list[Deployment] = []
        for latest in await self.store.list_latest():
            events = await self.store.events(latest.stack)
            ids = [e.deployment_id for e in events if e.kind == "deployment.requested"]
            found += [await self.store.get(i) for i in ids]
        return found

    async def check(self) -> None:
        deps = await self._all()
        self.report.final = Counter(str(d.state) for d in deps)
        latest = {d.stack: d for d in await self.store.list_latest()}
        live = sorted(n for n, d in latest.items() if d.state is S.SUCCEEDED)
        expected = {
            "projects": sorted(f"ai-stack-{n}" for n in live),
            "applications": sorted(f"opencode-{n}" for n in live),
            "domains": sorted(f"{n}.ai.example.test" for n in live),
            "dns": sorted(f"{n}.ai/A" for n in live),
        }
        held = {k: sorted(v) for k, v in self.sandbox.resources().items()}
        assert held == expected, f"orphans or missing resources: {held} != {expected}"
        for dep in deps:
            await self._check_card(dep)
            kinds = [e.kind for e in await self.store.events_for(dep.id)]
            assert kinds[0] == "deployment.requested", (dep.stack, kinds)
            states = [
                k for k in kinds if k.startswith("deployment.") and k != "deployment.not_started"
            ]
            assert states[-1] == f"deployment.{dep.state}", (dep.stack, kinds)
        assert not self.slack.violations, self.slack.violations

    async def _check_card(self, dep: Deployment) -> None:
        dep, ts = await self._posted(dep)
        if dep.state not in CARD_SAYS:
            return
        for _ in range(300):  # the bot may still be drawing it (stale cards: every 5 s)
            if CARD_SAYS[dep.state] in self.slack.card(dep.channel or "", ts).text:
                return
            await asyncio.sleep(0.05)
        card = self.slack.card(dep.channel or "", ts)
        edits = [text for text, _ in card.history[-3:]]
        events = [e.kind for e in await self.store.events_for(dep.id)][-6:]
        raise AssertionError(
            f"{dep.stack} is {dep.state} but its card says: {card.text} "
            f"(earlier edits {edits}; last events {events})"
        )


async def run_chaos(*, rounds: int, kill_every: int, seed: int, workdir: Path) -> Report:
    started = time.monotonic()
    slack = FakeSlack(bot_token=TOKEN, users=PEOPLE, usergroups=GROUPS)
    async with Sandbox(deploy_delay=0.2, action_polls=1) as sandbox, slack.serve() as api_url:
        database = workdir / "chaos.db"
        bot = BotProcess(chaos_env(sandbox, api_url, database), workdir / "bot.log")
        url = await bot.start()
        store = await SqliteStore.open(database)
        ledger = await SqliteLedger.open(database, store)
        chaos = Chaos(sandbox, slack, api_url, store, ledger, bot, random.Random(seed))
        try:
            await chaos.connect(url)
            for index in range(rounds):
                await chaos.round(index, kill_every)
            await chaos.settle(within=90)
            await chaos.check()
            assert await bot.stop() == 0, "the bot did not stop cleanly on SIGTERM"
        finally:
            bot.kill()
            if chaos.driver is not None:
                await chaos.driver.close()
            await ledger.close()
            await store.close()
    chaos.report.seconds = time.monotonic() - started
    return chaos.report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--kill-every", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aistack-chaos-") as folder:
        try:
            report = asyncio.run(run_chaos(rounds=args.rounds, kill_every=args.kill_every,
                                           seed=args.seed, workdir=Path(folder)))  # fmt: skip
        except AssertionError as exc:
            print(f"chaos: an invariant broke: {exc}", file=sys.stderr)
            print((Path(folder) / "bot.log").read_text()[-4000:], file=sys.stderr)
            return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
