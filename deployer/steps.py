"""StackSteps: what each phase of the catalogue does and undoes, on the real ports.

Every do looks up before it creates (the adapters' `ensure_*`), so running it again after a
crash or a lost response makes nothing twice. Every undo finds its resource by id or, when
the id never came back, by name, and answers "nothing to undo" when it is already gone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TypeVar

from deployer.errors import DeployFailed, PermanentError
from deployer.ports import Clock, Dns, Paas, Prober, ProjectRef
from deployer.saga import PhaseContext, Step, Undo
from deployer.settings import DeployerSettings

Outputs = Mapping[str, str]
T = TypeVar("T")
GONE = "nothing to undo: already gone"


class StackSteps:
    def __init__(
        self, settings: DeployerSettings, paas: Paas, dns: Dns, prober: Prober, clock: Clock
    ) -> None:
        self._s = settings
        self._paas = paas
        self._dns = dns
        self._prober = prober
        self._clock = clock

    def do(self, phase: str) -> Step:
        step: Step = getattr(self, f"_do_{phase}")
        return step

    def undo(self, phase: str) -> Undo:
        step: Undo = getattr(self, f"_undo_{phase}")
        return step

    def leftover(self, phase: str, ctx: PhaseContext) -> str:
        spec, out = ctx.deployment.spec, ctx.outputs
        described = {
            "project": f"Dokploy project {spec.project_name}"
            f" ({out.get('project_id', 'id unknown')})",
            "remove_project": f"Dokploy project {spec.project_name}",
            "application": f"Dokploy application {spec.app_name}"
            f" ({out.get('application_id', 'id unknown')})",
            "remove_application": f"Dokploy application {spec.app_name}",
            "domain": f"Dokploy domain {spec.host}",
            "dns": f"DNS A record {self._dns_name(spec.name)}.{self._s.dns_zone}",
            "remove_dns": f"DNS A record {self._dns_name(spec.name)}.{self._s.dns_zone}",
        }
        if self._s.dns_mode == "wildcard" and phase in ("dns", "remove_dns"):
            return ""
        return described.get(phase, "")

    # -- deploy -----------------------------------------------------------------------------
    async def _do_preflight(self, ctx: PhaseContext) -> Outputs:
        projects = await self._paas.count_projects()
        zone = await self._dns.zone()
        return {"zone_id": str(zone.zone_id), "projects_before": str(projects)}

    async def _do_project(self, ctx: PhaseContext) -> Outputs:
        spec = ctx.deployment.spec
        ensure = partial(self._paas.ensure_project, spec.project_name, f"aistack stack {spec.name}")
        ref = await self._made(ctx, "project", ensure)
        return {"project_id": ref.project_id, "environment_id": ref.environment_id}

    async def _do_dns(self, ctx: PhaseContext) -> Outputs:
        name, ip = self._dns_name(ctx.deployment.stack), str(self._s.ingress_ip)
        if self._s.dns_mode == "wildcard":
            values = await self._dns.a_record(name) or []
            if ip not in values:
                raise PermanentError(
                    f"wildcard {name}.{self._s.dns_zone} does not point at the ingress {ip} "
                    f"(it holds {', '.join(values) or 'no record'}); fix the zone or use "
                    "AISTACK_DNS_MODE=record"
                )
            return {"dns_name": name}
        await self._made(ctx, "dns", partial(self._dns.upsert_a_record, name, ip, self._s.dns_ttl))
        return {"dns_name": name, "dns_ip": ip}

    async def _do_application(self, ctx: PhaseContext) -> Outputs:
        project = ProjectRef(ctx.outputs["project_id"], ctx.outputs["environment_id"])
        name = ctx.deployment.spec.app_name
        app = await self._made(
            ctx, "application", partial(self._paas.ensure_application, project, name)
        )
        return {"application_id": app.application_id, "app_name": app.app_name}

    async def _do_image(self, ctx: PhaseContext) -> Outputs:
        spec, app = ctx.deployment.spec, ctx.outputs["application_id"]
        if _kept(ctx, "application") and "image_before" not in ctx.outputs:
            await self._progress(ctx, image_before=await self._paas.image_of(app) or "")
        await self._paas.configure_image(app, spec.image, spec.env)
        return {"image": spec.image}

    async def _do_domain(self, ctx: PhaseContext) -> Outputs:
        spec, app = ctx.deployment.spec, ctx.outputs["application_id"]
        ensure = partial(
            self._paas.ensure_domain, app, spec.host, spec.container_port, self._s.https
        )
        domain_id = await self._made(ctx, "domain", ensure)
        return {"domain_id": domain_id}

    async def _do_deploy(self, ctx: PhaseContext) -> Outputs:
        # Each step is checkpointed, so a run resumed after a crash neither misses the
        # deploy request nor takes an older deployment for ours.
        app = ctx.outputs["application_id"]
        if "deploy_known" not in ctx.outputs:
            before = sorted(await self._paas.deployment_ids(app))
            await self._progress(ctx, deploy_known=",".join(before))
        if "deploy_requested" not in ctx.outputs:
            await self._paas.start_deploy(app, f"aistack {ctx.deployment.id[:8]}")
            await self._progress(ctx, deploy_requested="yes")
        known = set(filter(None, ctx.outputs["deploy_known"].split(",")))
        return {"deployment_id": await self._watch_deploy(app, known)}

    async def _made(self, ctx: PhaseContext, kind: str, ensure: Callable[..., Awaitable[T]]) -> T:
        """Run an `ensure_*` and record whether the resource was there before this deployment
        (a redeploy of a live stack), so that the undo keeps what it did not make.

        "Not there" is checkpointed just before the create is sent, so a run resumed after a
        crash, or a retry after a lost response, never takes its own creation for someone
        else's; finding it without creating means it existed."""
        flag = f"{kind}_existed"

        async def creating() -> None:
            if flag not in ctx.outputs:
                await self._progress(ctx, **{flag: "no"})

        made = await ensure(before_create=creating)
        if flag not in ctx.outputs:
            await self._progress(ctx, **{flag: "yes"})
        return made

    @staticmethod
    async def _progress(ctx: PhaseContext, **values: str) -> None:
        await ctx.save(values)
        ctx.outputs.update(values)

    async def _watch_deploy(self, app: str, known: set[str]) -> str:
        delay = self._s.poll_initial
        while True:
            run = await self._paas.newest_deployment(app, known)
            if run is not None and run.status == "done":
                return run.deployment_id
            if run is not None and run.status in ("error", "cancelled"):
                detail = f": {run.error_message}" if run.error_message else ""
                raise DeployFailed(
                    f"Dokploy deployment {run.deployment_id} ended {run.status}{detail} "
                    "(the build log is on the Dokploy server)"
                )
            await self._clock.sleep(delay)
            delay = min(delay * 1.5, self._s.poll_max)

    async def _do_health(self, ctx: PhaseContext) -> Outputs:
        url = ctx.deployment.spec.url
        started = self._clock.monotonic()
        while True:
            result = await self._prober.check(url)
            if result.ready:
                return {"url": url}
            if self._clock.monotonic() - started >= self._s.health_timeout:
                raise DeployFailed(
                    f"{url} did not answer within {self._s.health_timeout:.0f} s "
                    f"(last: {result.detail})"
                )
            await self._clock.sleep(self._s.health_interval)

    # -- undo -------------------------------------------------------------------------------
    async def _undo_project(self, ctx: PhaseContext) -> str:
        spec = ctx.deployment.spec
        if _kept(ctx, "project"):
            return f"kept project {spec.project_name}: it was there before this deployment"
        ref = await self._project(ctx)
        if ref is None:
            return GONE
        # project.remove leaves Swarm services running: remove our application first.
        app = await self._paas.find_application(ref.project_id, spec.app_name)
        if app is not None:
            await self._paas.delete_application(app.application_id)
        removed = await self._paas.remove_project(ref.project_id)
        return f"removed project {spec.project_name}" if removed else GONE

    async def _undo_dns(self, ctx: PhaseContext) -> str:
        if self._s.dns_mode == "wildcard":
            return "nothing to undo: wildcard mode creates no record"
        name = self._dns_name(ctx.deployment.stack)
        if _kept(ctx, "dns"):
            return f"kept DNS record {name}: it was there before this deployment"
        removed = await self._dns.delete_a_record(name)
        return f"removed DNS record {name}" if removed else GONE

    async def _undo_application(self, ctx: PhaseContext) -> str:
        if _kept(ctx, "application"):
            return f"kept application {ctx.deployment.spec.app_name}: it was there before"
        app_id = await self._application_id(ctx)
        if app_id is None:
            return GONE
        removed = await self._paas.delete_application(app_id)
        return f"removed application {ctx.deployment.spec.app_name}" if removed else GONE

    async def _undo_image(self, ctx: PhaseContext) -> str:
        """A redeploy put a new image on a live application: put the old one back."""
        before = ctx.outputs.get("image_before")
        if not _kept(ctx, "application") or not before:
            return "nothing to undo: the image goes with the application"
        await self._paas.configure_image(
            ctx.outputs["application_id"], before, ctx.deployment.spec.env
        )
        return f"put image {before} back on {ctx.deployment.spec.app_name}"

    async def _undo_domain(self, ctx: PhaseContext) -> str:
        if _kept(ctx, "domain"):
            return f"kept domain {ctx.deployment.spec.host}: it was there before"
        domain_id = ctx.outputs.get("domain_id")
        app_id = await self._application_id(ctx)
        if domain_id is None and app_id is not None:
            domain_id = await self._paas.find_domain(app_id, ctx.deployment.spec.host)
        if domain_id is None:
            return GONE
        removed = await self._paas.delete_domain(domain_id)
        return f"removed domain {ctx.deployment.spec.host}" if removed else GONE

    # -- teardown ---------------------------------------------------------------------------
    async def _do_locate(self, ctx: PhaseContext) -> Outputs:
        found: dict[str, str] = {}
        ref = await self._paas.find_project(ctx.deployment.spec.project_name)
        if ref is not None:
            found.update(project_id=ref.project_id, environment_id=ref.environment_id)
            app = await self._paas.find_application(ref.project_id, ctx.deployment.spec.app_name)
            if app is not None:
                found.update(application_id=app.application_id, app_name=app.app_name)
        return found

    async def _do_remove_dns(self, ctx: PhaseContext) -> Outputs:
        return {"dns": await self._undo_dns(ctx)}

    async def _do_remove_application(self, ctx: PhaseContext) -> Outputs:
        return {"application": await self._undo_application(ctx)}

    async def _do_remove_project(self, ctx: PhaseContext) -> Outputs:
        return {"project": await self._undo_project(ctx)}

    # -- lookups ----------------------------------------------------------------------------
    async def _project(self, ctx: PhaseContext) -> ProjectRef | None:
        if "project_id" in ctx.outputs and "environment_id" in ctx.outputs:
            return ProjectRef(ctx.outputs["project_id"], ctx.outputs["environment_id"])
        return await self._paas.find_project(ctx.deployment.spec.project_name)

    async def _application_id(self, ctx: PhaseContext) -> str | None:
        if "application_id" in ctx.outputs:
            return ctx.outputs["application_id"]
        ref = await self._project(ctx)
        if ref is None:
            return None
        app = await self._paas.find_application(ref.project_id, ctx.deployment.spec.app_name)
        return app.application_id if app else None

    def _dns_name(self, stack: str) -> str:
        if self._s.dns_mode == "wildcard":
            return self._s.wildcard_name
        return self._s.record_name(stack)


def _kept(ctx: PhaseContext, kind: str) -> bool:
    return ctx.outputs.get(f"{kind}_existed") == "yes"
