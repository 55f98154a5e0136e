"""3. Scale: 100 deploys at once through the bot, approvals included, with Slack's pacing."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.common import Row, Section, cpu_seconds, ratio, rss_mib
from bench.overhead import POLLING
from bot.sandbox.slack import FakeSlack
from bot.sandbox.world import GROUPS, PEOPLE, TOKEN, SandboxBot, sandbox_bot
from deployer import TERMINAL, Deployment, DeploymentState
from deployer.adapters.stores.memory import MemoryStore
from deployer.sandbox.server import Sandbox

S = DeploymentState
LATENCY = 0.01
DEPLOY_DELAY = 1.0
POST_INTERVAL = 1.0  # production pacing: one new message per channel per second
CARD_INTERVAL = 2.0
REQUESTER, APPROVER = "U0ALICE", "U0BOB"


def requester(stack: str) -> str:
    """The Slack user who asks for `stack`: one per stack."""
    return f"U0{stack.upper().replace('-', '')}"


class CountingStore(MemoryStore):
    """The in-memory store, counting how often workers ask it for work."""

    def __init__(self) -> None:
        super().__init__()
        self.claims = self.empty_claims = 0

    async def claim(self, owner: str, lease_seconds: float, now: datetime) -> Deployment | None:
        self.claims += 1
        claimed = await super().claim(owner, lease_seconds, now)
        self.empty_claims += claimed is None
        return claimed


@dataclass
class Batch:
    """One batch of deploys, from the first command to the last card drawn."""

    deploys: int
    channels: list[str]
    commands_s: float = 0.0  # sending every command
    last_card_s: float = 0.0  # until the last request card is posted (approval needs it)
    engine_s: float = 0.0  # until every deployment is terminal
    cards_s: float = 0.0  # until every card and thread is written too
    states: Counter[str] = field(default_factory=Counter)
    slack: Counter[str] = field(default_factory=Counter)  # Slack Web API calls by method
    slack_failed: int = 0
    channel_posts: int = 0  # chat.postMessage into the batch's channels (not direct messages)
    dokploy: Counter[str] = field(default_factory=Counter)
    dns: Counter[str] = field(default_factory=Counter)
    max_posts_per_s: int = 0
    queue_wait_s: list[float] = field(default_factory=list)  # queued -> running
    run_s: list[float] = field(default_factory=list)  # running -> succeeded
    cpu_s: float = 0.0
    claims: int = 0  # store.claim calls by the workers
    empty_claims: int = 0  # ... that found nothing to do
    late_card_s: float | None = None  # a request made once all ran: until its card is posted


async def run_batch(
    world: SandboxBot, jobs: list[tuple[str, str]], within: float, *, late: str | None = None
) -> Batch:
    """Every job's command, then an approver's click as soon as its card is up; wait for all.

    With `late`, one more request (never approved) is made in the first job's channel once
    every job has finished, while their threads are still being written: how long does a
    new request wait for its card in a busy channel? It is left out of every other figure."""
    fake, dokploy, dns = world.slack, world.engine.dokploy, world.engine.dns
    marks = len(fake.calls), len(dokploy.calls), len(dns.calls)
    channels = sorted({channel for _, channel in jobs})
    batch = Batch(len(jobs), channels)
    store = world.store
    assert isinstance(store, CountingStore)
    claims, empty = store.claims, store.empty_claims
    poll = 0.02 if len(jobs) == 1 else 0.05  # listing 100 deployments costs ~1.5 ms
    cpu0, started, mono0 = cpu_seconds(), time.perf_counter(), time.monotonic()
    for name, channel in jobs:
        # one person per stack, as the quota has it: each login goes to its own owner's DM
        reply = await world.driver.command(requester(name), f"deploy {name}", channel)
        if reply.status != 200:
            raise RuntimeError(f"deploy {name}: {reply.status} {reply.body}")
    batch.commands_s = time.perf_counter() - started
    waiting = {name for name, _ in jobs}
    async with asyncio.timeout(within):
        while True:
            latest = {d.stack: d for d in await store.list_latest() if d.stack in waiting}
            for dep in latest.values():
                if dep.state is S.REQUESTED and await world.card_ts(dep) is not None:
                    await world.click(APPROVER, "approve", dep)
            done = [d for d in latest.values() if d.state in TERMINAL]
            if len(done) == len(waiting):
                break
            await asyncio.sleep(poll)
        batch.engine_s = time.perf_counter() - started
        if late is not None:
            late_sent = time.monotonic()
            await world.driver.command(REQUESTER, f"deploy {late}", jobs[0][1])
        await world.bot.notifier.wait_idle()
        batch.cards_s = time.perf_counter() - started
        batch.cpu_s = cpu_seconds() - cpu0
        batch.claims, batch.empty_claims = store.claims - claims, store.empty_claims - empty
        if late is not None:
            late_dep = await world.carded(late, within=within)
    calls = fake.calls[marks[0] :]
    if late is not None:
        late_calls = [c for c in calls if f"*{late}*" in str(c.args.get("text", ""))]
        batch.late_card_s = late_calls[0].at - late_sent
        calls = [c for c in calls if c not in late_calls]
        await world.click(APPROVER, "reject", late_dep)  # no request left hanging
    batch.states = Counter(str(d.state) for d in latest.values())
    batch.slack = Counter(c.method for c in calls)
    batch.slack_failed = sum(c.error is not None for c in calls)
    batch.channel_posts = sum(1 for c in calls if c.method == "chat.postMessage"
                              and c.args.get("channel") in channels)  # fmt: skip
    cards = [c.at for c in calls if c.method == "chat.postMessage" and "thread_ts" not in c.args
             and c.args.get("channel") in channels]  # fmt: skip
    batch.last_card_s = max(cards, default=mono0) - mono0
    batch.dokploy = Counter(op for _, op in dokploy.calls[marks[1] :])
    batch.dns = Counter(op for _, op in dns.calls[marks[2] :])
    batch.max_posts_per_s = max(fake.max_posts_per_second(c) for c in channels)
    for dep in latest.values():
        at = {str(e.kind): e.at for e in await store.events_for(dep.id)}
        if "deployment.succeeded" in at:
            queued, running = at["deployment.queued"], at["deployment.running"]
            batch.queue_wait_s.append((running - queued).total_seconds())
            batch.run_s.append((at["deployment.succeeded"] - running).total_seconds())
    return batch


async def measure(
    deploys: int = 100, channels: int = 10, *, trace: bool = False
) -> tuple[Section, dict[str, Any]]:
    sandbox = Sandbox(deploy_delay=DEPLOY_DELAY, action_polls=1)
    # Sandbox does not expose it; FakeDokploy reads it when its app starts (below).
    sandbox.dokploy.build_concurrency = deploys
    fake = FakeSlack(bot_token=TOKEN, users=PEOPLE, usergroups=GROUPS)
    async with sandbox, fake.serve() as api_url:
        sandbox.dokploy.faults.latency = sandbox.dns.faults.latency = LATENCY
        async with sandbox_bot(
            upstreams=(sandbox, fake, api_url),
            store=CountingStore(),
            workers=deploys,
            post_interval=POST_INTERVAL,
            card_interval=CARD_INTERVAL,
            # 100 stacks (and a few more) for four people: lift the per-person and server
            # quotas (the defaults, 2 and 50, would refuse most; they are not measured here)
            engine=POLLING | {"max_stacks_per_user": 1000, "max_stacks": 1000},
        ) as world:
            await _warm_up(world)
            one = await run_batch(world, [("solo", "C0SOLO")], within=120)
            gc.collect()
            rss_before = rss_mib()
            if trace:  # it triples the CPU time of this section: off unless asked for
                tracemalloc.start()
            jobs = [(f"stack-{i:03d}", f"C0OPS{i % channels:02d}") for i in range(deploys)]
            many = await run_batch(world, jobs, within=900, late="late-request")
            traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
            tracemalloc.stop()
            rss_after = rss_mib()
            violations = len(fake.violations)
    memory = {
        "rss_peak_before_mib": rss_before,
        "rss_peak_after_mib": rss_after,
        "tracemalloc_peak_mib": traced_peak / 2**20 if traced_peak else None,
    }
    return _section(one, many, memory, violations), {
        "single": _raw(one),
        "batch": _raw(many),
        "memory": memory,
        "slack_violations": violations,
        "latency_s": LATENCY,
        "deploy_delay_s": DEPLOY_DELAY,
        "post_interval_s": POST_INTERVAL,
        "card_interval_s": CARD_INTERVAL,
        "workers": deploys,
        "dokploy_build_concurrency": deploys,
        "engine_settings": POLLING,
    }


async def _warm_up(world: SandboxBot) -> None:
    """One request left pending: Bolt's auth.test, the user group cache and the connection
    pools are then warm for the single deploy as they are for the batch."""
    reply = await world.driver.command(REQUESTER, "deploy warm-up", "C0WARM")
    if reply.status != 200:
        raise RuntimeError(f"warm-up: {reply.status} {reply.body}")
    await world.carded("warm-up")


def _raw(b: Batch) -> dict[str, Any]:
    raw = {k: v for k, v in vars(b).items() if not isinstance(v, list) or k == "channels"}
    raw["queue_wait_s"] = _spread(b.queue_wait_s)
    raw["run_s"] = _spread(b.run_s)
    return raw


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _per(counter: Counter[str], b: Batch) -> float:
    return sum(counter.values()) / b.deploys


def _section(one: Batch, many: Batch, memory: dict[str, float | None], violations: int) -> Section:
    def row(metric: str, a: float, b: float, fmt: str = ".2f") -> Row:
        return Row(metric, format(a, fmt), format(b, fmt), ratio(a, b))

    n, k = many.deploys, len(many.channels)
    rows = [
        row(
            "command round trip under load, mean (ms)",
            many.commands_s / n * 1000,
            one.commands_s * 1000,
            ".1f",
        ),
        Row(
            "wall time, last request card posted (s)",
            f"{many.last_card_s:.2f}",
            f"{one.last_card_s:.2f}",
        ),
        Row(
            "a request made after all ran: card posted after (s)",
            f"{many.late_card_s or 0:.2f}",
        ),
        row("wall time, all succeeded (s)", many.engine_s, one.engine_s),
        row("wall time, cards and threads drawn (s)", many.cards_s, one.cards_s),
        row("run time running->succeeded, median (s)", _med(many.run_s), _med(one.run_s)),
        row("run time running->succeeded, max (s)", max(many.run_s, default=0), _med(one.run_s)),
        row(
            "queue wait queued->running, max (ms)",
            max(many.queue_wait_s, default=0) * 1000,
            _med(one.queue_wait_s) * 1000,
            ".0f",
        ),
        Row(
            "deploys succeeded",
            f"{many.states['succeeded']}/{n}",
            f"{one.states['succeeded']}/{one.deploys}",
        ),
        row("Slack API calls per deploy", _per(many.slack, many), _per(one.slack, one), ".1f"),
    ]
    for method in sorted(set(many.slack) | set(one.slack)):
        rows.append(row(f"  {method}", many.slack[method] / n, one.slack[method], ".1f"))
    rows += [
        Row("Slack calls refused (errors, 429)", str(many.slack_failed), str(one.slack_failed)),
        Row(
            "chat.postMessage max per channel per s",
            str(many.max_posts_per_s),
            str(one.max_posts_per_s),
        ),
        row("Dokploy calls per deploy", _per(many.dokploy, many), _per(one.dokploy, one), ".1f"),
        row(
            "  deployment.all (polls)",
            many.dokploy["deployment.all"] / n,
            one.dokploy["deployment.all"],
            ".1f",
        ),
        row("DNS calls per deploy", _per(many.dns, many), _per(one.dns, one), ".1f"),
        row(
            f"store.claim calls per second ({n} slots)",
            many.claims / many.cards_s,
            one.claims / one.cards_s,
            ".0f",
        ),
        row(
            "  of which found nothing (%)",
            100 * many.empty_claims / max(many.claims, 1),
            100 * one.empty_claims / max(one.claims, 1),
            ".1f",
        ),
        row("CPU time, whole process (s)", many.cpu_s, one.cpu_s),
        Row(
            "peak RSS before -> after (MiB)",
            f"{memory['rss_peak_before_mib']:.0f} -> {memory['rss_peak_after_mib']:.0f}",
        ),
    ]
    traced = memory["tracemalloc_peak_mib"]
    shown = f"{traced:.1f}" if traced is not None else "off"
    rows.append(Row("tracemalloc peak during the batch (MiB)", shown))
    posts = many.channel_posts / n  # a direct message is paced in its own channel
    bound = n * posts * POST_INTERVAL
    rows.append(Row(f"{n} deploys in ONE channel, lower bound (s)", f"{bound:.0f}", "", "computed"))
    grew = (memory["rss_peak_after_mib"] or 0) - (memory["rss_peak_before_mib"] or 0)
    notes = [
        f"scale: {many.states['succeeded']}/{n} deploys succeeded, all in {many.engine_s:.1f} s "
        f"({ratio(many.engine_s, one.engine_s)} one deploy); each ran in {_med(many.run_s):.2f} s "
        f"(median, {_med(one.run_s):.2f} s alone), so the engine keeps up. What takes time is "
        f"Slack's pacing: the last request card could only be posted at {many.last_card_s:.1f} s "
        f"and the cards and threads finished at {many.cards_s:.1f} s ({posts:.0f} "
        f"chat.postMessage per deploy in its channel, {n // k} deploys per channel at "
        f"{1 / POST_INTERVAL:.0f}/s: >= {n * posts / k:.0f} s); in one channel that bound is "
        f"{bound:.0f} s. A request made in a busy channel once all {n} had finished waited "
        f"{many.late_card_s or 0:.1f} s for its card (a new card goes ahead of queued thread "
        f"replies, after the one being posted). "
        f"Max {many.max_posts_per_s} post/s in any channel; "
        f"{many.slack_failed} refused Slack calls; {violations} Slack contract violations. "
        f"DNS: {_per(many.dns, many):.0f} calls per deploy against Hetzner's 3600 requests/h "
        f"per token allow at most {3600 / max(_per(many.dns, many), 1):.0f} deploys/h.",
        f"workers: {many.claims} store.claim calls for {n} deploys ({many.empty_claims} empty): "
        f"one claim loop fills the {n} slots, polling once a second when idle or when woken. "
        f"CPU {many.cpu_s:.1f} s for the batch ({many.cpu_s / n * 1000:.0f} ms per deploy, the "
        f"in-process fakes included); peak RSS +{grew:.0f} MiB ({grew * 1024 / n:.0f} KiB/deploy).",
    ]
    title = (
        f"3. Scale: aistack = {n} concurrent deploys over {k} channels, baseline = 1 deploy, "
        f"same bot ({LATENCY * 1000:.0f} ms/call, build {DEPLOY_DELAY:.0f} s, "
        f"{n} worker slots, Slack pacing {POST_INTERVAL:.0f}/s/channel, card edits every "
        f"{CARD_INTERVAL:.0f} s)"
    )
    return Section(title, rows, notes)


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
