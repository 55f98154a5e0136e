"""The deploy phases' steps, one class per phase: what each does, undoes and leaves behind.

Each do is safe to run again after a crash or a lost response: `ensure_*` looks up before
it creates, except on a first attempt right after this deployment made the parent (nothing
can be inside a project made a moment ago). An undo keeps what the deploy found there,
does nothing for what it never sent a create for, and removes the rest by its recorded id.
Rollout starts a Dokploy deployment and waits for it and for the stack to answer: the deploy
and health phases use it, and so does the image undo, to bring the previous release back.
"""

from __future__ import annotations

from functools import partial

from deployer.core.states import Operation
from deployer.engine.outputs import PhaseOutputs, Run, survey_outputs
from deployer.engine.provenance import (
    GONE,
    NEVER_MADE,
    adoptable,
    fresh,
    kept,
    kept_it,
    removed,
    untouched,
)
from deployer.engine.saga import PhaseContext, Undone
from deployer.engine.steps.base import Deps, Outputs, Phase, application_of, made, project_of
from deployer.errors import DeployFailed, PermanentError, TransientError
from deployer.ports import Limits, ProjectRef


class PreflightStep(Phase):
    async def do(self, ctx: PhaseContext) -> Outputs:
        # Checked again here, not only when asked: a job queued before the list changed, or
        # one that reached the store another way, must not run an image from anywhere.
        refused = self._s.stack.image_refusal(ctx.deployment.spec.image)
        if refused is not None:
            raise PermanentError(refused)
        survey = await self._paas.survey_projects(ctx.deployment.spec.project_name)
        zone = await self._dns.zone()
        live = await self._recorded(ctx.deployment.stack)
        if ctx.deployment.restores is not None and not live:  # destroyed while it waited
            raise PermanentError(
                f"{ctx.deployment.stack} is not live any more: a roll back puts a release "
                "back on a live stack; deploy it instead"
            )
        return {
            "zone_id": str(zone.zone_id),
            "projects_before": str(survey.total),
            **survey_outputs(survey.named, live),
        }

    def leftover(self, ctx: PhaseContext) -> str:
        return ""  # only reads


class ProjectStep(Phase):
    async def do(self, ctx: PhaseContext) -> Outputs:
        spec, out = ctx.deployment.spec, PhaseOutputs(ctx)
        absent = False
        if out.existed("project") is None:  # a first run: the preflight's listing decides
            adopted = adoptable(out)
            if adopted is not None:
                await out.mark_existed("project", True)
                return {"project_id": adopted.project_id, "environment_id": adopted.environment_id}
            absent = True
        ensure = partial(self._paas.ensure_project, spec.project_name,
                         f"aistack stack {spec.name}", absent=absent)  # fmt: skip
        ref = await made(ctx, "project", ensure)
        return {"project_id": ref.project_id, "environment_id": ref.environment_id}

    async def undo(self, ctx: PhaseContext) -> Undone:
        spec = ctx.deployment.spec
        if kept(ctx, "project"):
            return kept_it(f"project {spec.project_name}")
        ref = await project_of(self._paas, ctx)
        if ref is None:
            return NEVER_MADE if untouched(ctx, "project") else GONE
        # project.remove leaves Swarm services running: make sure our application went first
        # (a teardown only gets here once its application is removed).
        app_id = ctx.outputs.get("application_id")
        if ctx.deployment.operation is Operation.DEPLOY and app_id and not kept(ctx, "application"):
            await self._paas.delete_application(app_id)
        gone = await self._paas.remove_project(ref.project_id)
        return removed(gone, f"project {spec.project_name} ({ref.project_id})")

    def leftover(self, ctx: PhaseContext) -> str:
        project_id = ctx.outputs.get("project_id", "id unknown")
        return f"Dokploy project {ctx.deployment.spec.project_name} ({project_id})"


class DnsStep(Phase):
    async def do(self, ctx: PhaseContext) -> Outputs:
        name, ip = self._name(ctx.deployment.stack), str(self._s.dns.ingress_ip)
        if self._s.dns.mode == "wildcard":
            values = await self._dns.a_record(name) or []
            if ip not in values:
                raise PermanentError(
                    f"wildcard {name}.{self._s.dns.zone} does not point at the ingress {ip} "
                    f"(it holds {', '.join(values) or 'no record'}); fix the zone or use "
                    "AISTACK_DNS_MODE=record"
                )
            return {"dns_name": name}
        await made(ctx, "dns", partial(self._dns.upsert_a_record, name, ip, self._s.dns.ttl))
        return {"dns_name": name, "dns_ip": ip}

    async def undo(self, ctx: PhaseContext) -> Undone:
        if self._s.dns.mode == "wildcard":
            return Undone("nothing to undo: wildcard mode creates no record", changed=False)
        name = self._name(ctx.deployment.stack)
        if kept(ctx, "dns"):
            return kept_it(f"DNS record {name}")
        if untouched(ctx, "dns"):
            return NEVER_MADE
        return removed(await self._dns.delete_a_record(name), f"DNS record {name}")

    def leftover(self, ctx: PhaseContext) -> str:
        if self._s.dns.mode == "wildcard":
            return ""  # the wildcard is not ours
        return f"DNS A record {self._name(ctx.deployment.spec.name)}.{self._s.dns.zone}"

    def _name(self, stack: str) -> str:
        if self._s.dns.mode == "wildcard":
            return self._s.dns.wildcard_name
        return self._s.dns.record_name(stack)


class ApplicationStep(Phase):
    async def do(self, ctx: PhaseContext) -> Outputs:
        out, ids = PhaseOutputs(ctx), ctx.outputs
        project = ProjectRef(ids["project_id"], ids["environment_id"])
        live_app = out.live("application_id") if out.is_live("project_id") else None
        if live_app is not None and out.existed("application") is None:
            # the live stack's own application
            await out.mark_existed("application", True)
            name = out.live("app_name")
            app_name = ctx.deployment.spec.app_name if name is None else name
            return {"application_id": live_app, "app_name": app_name}
        absent = fresh(out, "project", "application")
        ensure = partial(self._paas.ensure_application, project, ctx.deployment.spec.app_name,
                         absent=absent)  # fmt: skip
        app = await made(ctx, "application", ensure)
        return {"application_id": app.application_id, "app_name": app.app_name}

    async def undo(self, ctx: PhaseContext) -> Undone:
        name = ctx.deployment.spec.app_name
        if kept(ctx, "application"):
            return kept_it(f"application {name}")
        app_id = await application_of(self._paas, ctx)
        if app_id is None:
            return NEVER_MADE if untouched(ctx, "application") else GONE
        return removed(await self._paas.delete_application(app_id), f"application {name}")

    def leftover(self, ctx: PhaseContext) -> str:
        app_id = ctx.outputs.get("application_id", "id unknown")
        return f"Dokploy application {ctx.deployment.spec.app_name} ({app_id})"


class ImageStep(Phase):
    def __init__(self, deps: Deps, rollout: Rollout) -> None:
        super().__init__(deps)
        self._rollout = rollout

    async def do(self, ctx: PhaseContext) -> Outputs:
        spec, app = ctx.deployment.spec, ctx.outputs["application_id"]
        limits = Limits.of(spec.memory_limit, spec.cpu_limit)
        if not kept(ctx, "application"):
            # a new application has no environment and no limits: write them only when set
            await self._paas.configure_image(app, spec.image, spec.env or None,
                                             limits if limits != Limits() else None)  # fmt: skip
            return {"image": spec.image}
        out = PhaseOutputs(ctx)
        if out.before() is None:
            await out.mark_before(await self._paas.app_settings(app))
        await self._paas.configure_image(app, spec.image, spec.env, limits)
        return {"image": spec.image}

    async def undo(self, ctx: PhaseContext) -> Undone:
        """A redeploy changed a live application: put its image and environment back, and
        when the new image was already deployed, deploy the old one again and wait until it
        answers, so the live stack is what it was before."""
        out, spec = PhaseOutputs(ctx), ctx.deployment.spec
        before = out.before()
        if not kept(ctx, "application") or before is None:
            return Undone("nothing to undo: the image goes with the application", changed=False)
        await self._paas.restore_settings(ctx.outputs["application_id"], before)
        put_back = f"put image {before.image} and its environment back on {spec.app_name}"
        if not out.requested("deploy"):
            return Undone(put_back)  # the running container never saw the new image
        title = f"aistack {ctx.deployment.id[:8]} restore"
        await self._rollout.deploy(ctx, title, run="restore")
        await self._rollout.wait_healthy(spec.url)
        return Undone(f"{put_back}, redeployed it, and {spec.url} answers")

    def leftover(self, ctx: PhaseContext) -> str:
        return (
            f"Dokploy application {ctx.deployment.spec.app_name}: the previous image and "
            "environment are not back"
        )


class DomainStep(Phase):
    async def do(self, ctx: PhaseContext) -> Outputs:
        spec, app = ctx.deployment.spec, ctx.outputs["application_id"]
        ensure = partial(
            self._paas.ensure_domain, app, spec.host, spec.container_port, self._s.stack.https,
            absent=fresh(PhaseOutputs(ctx), "application", "domain"),
        )  # fmt: skip
        domain_id = await made(ctx, "domain", ensure)
        return {"domain_id": domain_id}

    async def undo(self, ctx: PhaseContext) -> Undone:
        host = ctx.deployment.spec.host
        if kept(ctx, "domain"):
            return kept_it(f"domain {host}")
        domain_id = ctx.outputs.get("domain_id")
        if domain_id is None and untouched(ctx, "domain"):
            return NEVER_MADE
        app_id = await application_of(self._paas, ctx)
        if domain_id is None and app_id is not None:
            domain_id = await self._paas.find_domain(app_id, host)
        if domain_id is None:
            return GONE
        return removed(await self._paas.delete_domain(domain_id), f"domain {host}")

    def leftover(self, ctx: PhaseContext) -> str:
        return f"Dokploy domain {ctx.deployment.spec.host}"


class DeployStep:
    def __init__(self, rollout: Rollout) -> None:
        self._rollout = rollout

    async def do(self, ctx: PhaseContext) -> Outputs:
        title = f"aistack {ctx.deployment.id[:8]}"
        return {"deployment_id": await self._rollout.deploy(ctx, title)}

    def leftover(self, ctx: PhaseContext) -> str:
        return ""  # a failed deploy is undone with the image and the application


class HealthStep:
    def __init__(self, rollout: Rollout) -> None:
        self._rollout = rollout

    async def do(self, ctx: PhaseContext) -> Outputs:
        await self._rollout.wait_healthy(ctx.deployment.spec.url)
        return {"url": ctx.deployment.spec.url}

    def leftover(self, ctx: PhaseContext) -> str:
        return ""  # only reads


class Rollout:
    def __init__(self, deps: Deps) -> None:
        self._s, self._paas = deps.settings, deps.paas
        self._prober, self._clock = deps.prober, deps.clock

    async def deploy(self, ctx: PhaseContext, title: str, run: Run = "deploy") -> str:
        """Start a Dokploy deployment and wait for its end. Each step is checkpointed, so a
        run resumed after a crash neither misses the request nor takes an older deployment
        for ours. An application made by this deployment has no older deployment to skip."""
        app, out = ctx.outputs["application_id"], PhaseOutputs(ctx)
        known = out.known_deployments(run)
        if known is None:
            new_app = out.existed("application") is False and run == "deploy"
            known = set() if new_app else await self._paas.deployment_ids(app)
            await out.mark_known(run, known)
        if not out.requested(run):
            await self._paas.start_deploy(app, title)
            await out.mark_requested(run)
        return await self._watch(app, known)

    async def wait_healthy(self, url: str) -> None:
        started = self._clock.monotonic()
        while True:
            result = await self._prober.check(url)
            if result.ready:
                return
            if self._clock.monotonic() - started >= self._s.health.timeout:
                raise DeployFailed(
                    f"{url} did not answer within {self._s.health.timeout:.0f} s "
                    f"(last: {result.detail})"
                )
            await self._clock.sleep(self._s.health.interval)

    async def _watch(self, app: str, known: set[str]) -> str:
        limits = self._s.deadlines
        delay, asked = limits.poll_initial, self._clock.monotonic()
        while True:
            run = await self._paas.newest_deployment(app, known)
            if run is not None and run.status == "done":
                return run.deployment_id
            if run is not None and run.status in ("error", "cancelled"):
                raise DeployFailed(await self._failure(run.deployment_id, run.status))
            waited = self._clock.monotonic() - asked
            if run is None and waited >= limits.deploy_start_timeout:
                raise DeployFailed(
                    f"Dokploy did not start the deployment within "
                    f"{limits.deploy_start_timeout:.0f} s of "
                    "application.deploy (a Dokploy restart loses its queue); deploy again"
                )
            await self._clock.sleep(delay)
            delay = min(delay * 1.25, limits.poll_max)

    async def _failure(self, deployment_id: str, status: str) -> str:
        # The row's errorMessage stays empty; the build log's tail names the failed step.
        try:
            tail = await self._paas.deployment_log_tail(deployment_id)
        except TransientError:
            tail = ""  # the failure stands; only its detail is lost
        detail = f": {tail}" if tail else " (the build log is on the Dokploy server)"
        return f"Dokploy deployment {deployment_id} ended {status}{detail}"
