"""`aistack demo`: the whole engine against the sandbox, as an operator would see it.

One deploy that succeeds, one that fails in the middle and rolls back, status, list and
destroy. It checks each outcome and the sandbox's contents, and exits non-zero if any step
did not happen as it should.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from deployer.adapters.stores import open_store
from deployer.assemble import open_deployer
from deployer.console import (
    TerminalNotifier,
    render_history,
    render_list,
    render_preflight,
    render_status,
)
from deployer.core.states import DeploymentState
from deployer.errors import AistackError
from deployer.sandbox.server import Sandbox

S = DeploymentState
LATENCY = 0.02  # seconds added to every fake API call, to look like a real network


class DemoFailed(AistackError):
    pass


async def run_demo(out: TerminalNotifier) -> int:
    say = _sayer(out)
    with tempfile.TemporaryDirectory(prefix="aistack-demo-") as folder:
        url = f"sqlite:///{folder}/demo.db"  # the durable store, as the CLI uses by default
        await _tour(out, say, url)
    say("\ndemo finished: every step happened as expected")
    return 0


async def _tour(out: TerminalNotifier, say: Callable[..., None], database_url: str) -> None:
    async with Sandbox(deploy_delay=1.5, action_polls=1) as sandbox:
        sandbox.dokploy.faults.latency = sandbox.dns.faults.latency = LATENCY
        settings = sandbox.settings(
            health_interval=0.5, poll_initial=0.5, poll_max=1.0, database_url=database_url
        )
        store = await open_store(database_url)
        async with open_deployer(settings, out, store=store) as deployer:
            say("\n== preflight")
            say(*render_preflight(await deployer.preflight()))
            say("\n== deploy alice (succeeds)")
            alice = await deployer.deploy("alice", requester="demo")
            _expect(alice.state is S.SUCCEEDED, f"alice should be live, is {alice.state}")
            say("\n== deploy bob (Dokploy's build fails; everything made is rolled back)")
            sandbox.dokploy.fail_deploys.add(deployer.spec("bob").app_name)
            bob = await deployer.deploy("bob", requester="demo")
            _expect(bob.state is S.ROLLED_BACK, f"bob should be rolled back, is {bob.state}")
            _expect(not _owned_by(sandbox.resources(), "bob"), "bob left resources behind")
            say("\n== status alice", *render_status(await deployer.status("alice")))
            say("\n== list", *render_list(await deployer.list_stacks()))
            say("\n== destroy alice")
            gone = await deployer.destroy("alice", requester="demo")
            _expect(gone.state is S.DESTROYED, f"alice should be destroyed, is {gone.state}")
            left = sandbox.resources()
            _expect(not any(left.values()), f"the sandbox should be empty, holds {left}")
            say("\n== list", *render_list(await deployer.list_stacks()))
            say(
                "\n== history bob (the audit trail)", *render_history(await deployer.history("bob"))
            )
        await store.close()


def _sayer(out: TerminalNotifier) -> Callable[..., None]:
    def say(*lines: str) -> None:
        for line in lines:
            out.console.print(line, markup=False)

    return say


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


def _owned_by(resources: dict[str, list[str]], name: str) -> list[str]:
    return [item for items in resources.values() for item in items if name in item]
