"""The day-two steps: stop, start and restart the live stack's container.

They act on the application the live deployment recorded (never on a name) and change
nothing a failure would need undone: a failed stop leaves the stack running, a failed start
leaves it stopped. Dokploy's `stop` answers 200 even when Docker failed (recording 89), so
the stop step does not take the answer for proof: it waits until the URL stops answering.
`start` and `reload` answer 500 when Docker fails them (recordings 90, 91): the adapter says
Dokploy could not do it, with the status (never Dokploy's text), and does not retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from deployer.engine.saga import PhaseContext
from deployer.engine.steps.base import Deps, Outputs, Phase
from deployer.errors import PermanentError
from deployer.ports import Paas

# (paas, application id, app name) -> the one call
Act = Callable[[Paas, str, str], Awaitable[None]]


class ContainerStep(Phase):
    """One call on the live application: application.stop, .start or .reload."""

    def __init__(self, deps: Deps, verb: str, act: Act) -> None:
        super().__init__(deps)
        self._verb, self._act = verb, act

    async def do(self, ctx: PhaseContext) -> Outputs:
        ids = await self._recorded(ctx.deployment.stack)
        app_id = ids.get("application_id")
        if app_id is None:
            raise PermanentError(
                f"{ctx.deployment.stack} is not live in our records: there is nothing to "
                f"{self._verb}"
            )
        await self._act(self._paas, app_id, ids.get("app_name", ctx.deployment.spec.app_name))
        if self._verb == "stop":
            return {"application_id": app_id, "probe": await self._until_down(ctx)}
        return {"application_id": app_id}

    async def _until_down(self, ctx: PhaseContext) -> str:
        """Wait until the URL no longer answers as a running stack does; its last answer."""
        url, health = ctx.deployment.spec.url, self._s.health
        started = self._clock.monotonic()
        while True:
            answer = await self._prober.check(url)
            if not answer.ready:
                return answer.detail
            if self._clock.monotonic() - started >= health.timeout:
                raise PermanentError(
                    f"Dokploy took the stop, but {url} still answers ({answer.detail}) after "
                    f"{health.timeout:.0f} s"
                )
            await self._clock.sleep(health.interval)

    def leftover(self, ctx: PhaseContext) -> str:
        return ""  # nothing made, nothing to undo


def container_steps(deps: Deps) -> dict[str, ContainerStep]:
    """stop, start and restart, by verb."""
    return {
        "stop": ContainerStep(deps, "stop", lambda paas, app, _: paas.stop_application(app)),
        "start": ContainerStep(deps, "start", lambda paas, app, _: paas.start_application(app)),
        "restart": ContainerStep(
            deps, "restart", lambda paas, app, name: paas.reload_application(app, name)
        ),
    }
