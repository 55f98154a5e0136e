"""A local fake of the Dokploy REST API (v0.30.2), as an aiohttp server.

Behaviour follows `../shared/specs/dokploy-api.md` §7 and, where they differ, the recorded
exchanges of a real server. This module serves HTTP (auth gate, rate limit, dispatch) and runs
the deploy queue. The answers' shapes are in `dokploy_http.py`, input validation against the
OpenAPI document's own request schemas in `dokploy_validation.py`, rows and their shapes in
`dokploy_tables.py`, the procedures and their response shapes in `dokploy_state.py`, and what
a deployment does on the host (its build log, its container's environment) in `dokploy_host.py`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web

from deployer.sandbox.dokploy_host import run_build
from deployer.sandbox.dokploy_http import (
    BareResponse,
    health,
    json_body,
    security_headers,
    trpc_error,
    unauthorized,
)
from deployer.sandbox.dokploy_state import Store
from deployer.sandbox.dokploy_tables import ApiError, Row
from deployer.sandbox.dokploy_validation import (
    _openapi_path,
    coerce_query,
    load_procedures,
    validate,
)
from deployer.sandbox.faults import Faults, control_routes, fault_middleware


@dataclass(frozen=True)
class _Job:
    app_id: str
    title: str
    description: str
    rebuild: bool  # a redeploy: no pull, the service is recreated from the current settings


# -- the server -------------------------------------------------------------------------------


class FakeDokploy:
    """The fake server. `app()` builds the aiohttp app; tests and benchmarks read `calls`,
    `snapshot()`, `live_hosts()`, `stopped_hosts()`, `logins()` and `container_env()`, and
    steer it with `faults`, `fail_deploys` (by application name), `fail_images` (an image that
    cannot be pulled), `silent_images` (an image that deploys but whose container never answers),
    `lose_deploys` (that many next deploy requests vanish, as in a Dokploy restart, which
    loses its in-memory queue), `deploy_delay` and `container_prints` (what a running
    container writes to its output).

    `docker_error` makes it a host without a Docker engine, as the recording hosts were: the
    text is what the docker CLI prints there, and deploys, `start`, `reload` and
    `readLogs` fail the recorded way."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("sandbox-key",),
        deploy_delay: float = 0.05,
        faults: Faults | None = None,
        rate_limit: tuple[int, float] | None = None,
        build_concurrency: int = 4,
        docker_error: str | None = None,
    ) -> None:
        self.api_keys = set(api_keys)
        self.deploy_delay = deploy_delay
        self.faults = faults if faults is not None else Faults()
        self.rate_limit = rate_limit
        self.build_concurrency = build_concurrency
        self.fail_deploys: set[str] = set()
        self.fail_images: set[str] = set()
        self.silent_images: set[str] = set()
        self._ran: dict[str, str] = {}  # deploymentId -> the image its container runs
        self.lose_deploys = 0
        self.calls: list[tuple[str, str]] = []
        self.store = Store()
        self.store.docker_error = docker_error
        self.procedures = load_procedures(_openapi_path())
        self._usage: dict[str, tuple[float, int]] = {}  # api key -> (window start, units used)
        self._queue: asyncio.Queue[_Job] | None = None
        self._workers: list[asyncio.Task[None]] = []
        store = self.store
        self._handlers: dict[str, Callable[[Row], Any]] = {
            "project.all": store.project_all,
            "project.one": store.project_one,
            "project.create": store.project_create,
            "project.remove": store.project_remove,
            "environment.byProjectId": store.environment_by_project_id,
            "application.create": store.application_create,
            "application.one": store.application_one,
            "application.update": store.application_update,
            "application.saveDockerProvider": store.application_save_docker_provider,
            "application.saveEnvironment": store.application_save_environment,
            "application.deploy": lambda i: self._enqueue(i, "Manual deployment", False),
            "application.redeploy": lambda i: self._enqueue(i, "Rebuild deployment", True),
            "application.cancelDeployment": store.application_cancel_deployment,
            "application.stop": store.application_stop,
            "application.start": store.application_start,
            "application.reload": store.application_reload,
            "application.readLogs": store.application_read_logs,
            "application.delete": store.application_delete,
            "domain.create": store.domain_create,
            "domain.byApplicationId": store.domain_by_application_id,
            "domain.delete": store.domain_delete,
            "deployment.all": store.deployment_all,
            "deployment.readLogs": store.deployment_read_logs,
            "security.create": store.security_create,
            "security.one": store.security_one,
            "security.update": store.security_update,
            "security.delete": store.security_delete,
        }

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[fault_middleware(self.faults, self._op_of, self._render)]
        )
        app.router.add_routes(control_routes(self.faults, self.snapshot, self.reset))
        app.router.add_get("/api/health", health)
        app.router.add_route("*", "/api/{procedure:.+}", self._dispatch)
        app.on_response_prepare.append(security_headers)
        app.on_startup.append(self._start_workers)
        app.on_cleanup.append(self._stop_workers)
        return app

    # -- inspection, used by tests and benchmarks ---------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        s = self.store
        return {
            "projects": [{k: p[k] for k in ("projectId", "name")} for p in s.projects.values()],
            "applications": [
                {
                    **{k: a[k] for k in ("applicationId", "name", "appName", "applicationStatus")},
                    "containerEnv": s.container_env(a["applicationId"]),
                }
                for a in s.applications.values()
            ],
            "domains": [
                {k: d[k] for k in ("domainId", "host", "applicationId")} for d in s.domains.values()
            ],
            "deployments": len(s.deployments),
        }

    def reset(self) -> None:
        """Back to an empty server with no faults; queued deploys are dropped and running ones
        find no row to finish."""
        self.store.clear()
        self.faults.clear()
        self.calls.clear()
        self.fail_deploys.clear()
        self.fail_images.clear()
        self.silent_images.clear()
        self._ran.clear()
        self.lose_deploys = 0
        self._usage.clear()
        while self._queue is not None and not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()

    def live_hosts(self) -> dict[str, int]:
        """Hosts that would answer: newest deployment `done` and the service not stopped."""
        live: dict[str, int] = {}
        for domain in self.store.domains.values():
            app_id, port = domain["applicationId"], domain["port"]
            if app_id is not None and port is not None and self.store.is_running(app_id):
                live[domain["host"]] = port
        return live

    def logins(self, host: str) -> list[tuple[str, str]]:
        """The basic-auth logins (username, password) guarding `host`: its application's
        security rows, which Dokploy turns into a Traefik basicAuth middleware."""
        apps = {d["applicationId"] for d in self.store.domains.values() if d["host"] == host}
        return [(s["username"], s["password"]) for app in apps for s in self.store.security_of(app)]

    def stopped_hosts(self) -> set[str]:
        """Hosts whose application is stopped: Traefik still routes them, to no container."""
        return {d["host"] for d in self.store.domains.values()
                if d["applicationId"] in self.store.stopped}  # fmt: skip

    def container_prints(self, name: str, *lines: str) -> None:
        """The running container of the application named `name` writes `lines` to its
        output (what `application.readLogs` shows after the start lines)."""
        app = next(a for a in self.store.applications.values() if a["name"] == name)
        newest = self.store.deployments_of(app["applicationId"])[0]
        self.store.output.setdefault(newest["deploymentId"], []).extend(lines)

    def silent_hosts(self) -> set[str]:
        """Hosts whose running container never answers: its newest successful deployment
        ran one of `silent_images` (a crash loop; the ingress answers 502)."""
        silent = set()
        for domain in self.store.domains.values():
            done = [d for d in self.store.deployments_of(domain["applicationId"] or "")
                    if d["status"] == "done"][:1]  # fmt: skip
            if done and self._ran.get(done[0]["deploymentId"]) in self.silent_images:
                silent.add(domain["host"])
        return silent

    async def settled(self) -> None:
        """Return once every deployment asked for so far has finished: a test waits on this
        instead of polling."""
        assert self._queue is not None, "the aiohttp app has not started"
        await self._queue.join()

    def container_env(self, application_id: str) -> dict[str, str] | None:
        """What the application's container got as its environment (see Store.container_env)."""
        return self.store.container_env(application_id)

    # -- HTTP ---------------------------------------------------------------------------------

    @staticmethod
    def _op_of(request: web.Request) -> str:
        return request.match_info.get("procedure", request.path)

    @staticmethod
    def _render(status: int, _code: str, message: str, retry_after: float | None) -> web.Response:
        return trpc_error(status, message, retry_after=retry_after)

    def _authorized(self, request: web.Request) -> bool:
        key = request.headers.get("x-api-key")
        if key not in self.api_keys:
            return False
        if self.rate_limit is None:
            return True
        # better-auth's api-key limit; each REST call verifies the key twice (2 units).
        max_units, window = self.rate_limit
        now = time.monotonic()
        start, used = self._usage.get(key, (now, 0))
        if now - start > window:
            start, used = now, 0
        if used + 2 > max_units:
            return False
        self._usage[key] = (start, used + 2)
        return True

    async def _dispatch(self, request: web.Request) -> web.Response:
        name = request.match_info["procedure"]
        body: Any = None
        if request.method == "POST" and request.content_type == "application/json":
            # Next.js parses the body before any Dokploy code runs (even before the auth gate).
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return BareResponse(status=400, reason="Invalid JSON", body=b"Invalid JSON")
        if not self._authorized(request):
            return unauthorized()
        self.calls.append((request.method, name))
        procedure = self.procedures.get(name)
        if procedure is None or procedure.method != request.method:
            return trpc_error(404, "Not found")
        if request.method == "POST" and request.content_type != "application/json":
            ctype = request.headers.get(hdrs.CONTENT_TYPE)
            # The closing quote really is missing in Dokploy's message (recording 21).
            message = (
                f'Unsupported content-type "{ctype}' if ctype else "Missing content-type header"
            )
            return trpc_error(415, message, name)
        if request.method == "GET":
            data: Any = {
                k: (v[0] if len(v) == 1 else v)
                for k in request.query
                for v in [request.query.getall(k)]
            }
            if procedure.schema is not None:
                data = coerce_query(procedure.schema, data)
        else:
            data = body
        if procedure.schema is not None:
            issues = validate(name, procedure.schema, data)
            if issues:
                return trpc_error(400, "Input validation failed", name, issues)
            # zod objects strip unknown keys silently
            data = {k: v for k, v in data.items() if k in procedure.schema.get("properties", {})}
        handler = self._handlers.get(name)
        if handler is None:
            return trpc_error(501, f"sandbox: {name} is not implemented by the fake", name)
        try:
            result = handler(data or {})
        except ApiError as exc:
            return trpc_error(exc.status, exc.message, name)
        if result is None:  # void procedures (deploy, redeploy): 200 with an empty body
            return web.Response(body=b"", headers={hdrs.CONTENT_TYPE: "application/json"})
        return json_body(result)

    # -- deploy queue -------------------------------------------------------------------------

    def _enqueue(self, i: Row, default_title: str, rebuild: bool) -> None:
        app = self.store.application(i["applicationId"])
        assert self._queue is not None, "the aiohttp app has not started"
        title = i.get("title") or default_title
        job = _Job(app["applicationId"], title, i.get("description", ""), rebuild)
        if self.lose_deploys > 0:  # accepted with 200, then lost with the queue
            self.lose_deploys -= 1
            return
        self._queue.put_nowait(job)

    async def _start_workers(self, _: web.Application) -> None:
        self._queue = asyncio.Queue()
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.build_concurrency)]

    async def _stop_workers(self, _: web.Application) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            try:
                await self._build(job)
            finally:
                self._queue.task_done()

    async def _build(self, job: _Job) -> None:
        app = self.store.applications.get(job.app_id)
        if app is None:  # deleted while queued
            return
        # The row appears when a worker picks the job up, not when deploy is called (§4.2).
        deployment = self.store.add_deployment(app, job.title, job.description)
        app["applicationStatus"] = "running"
        await asyncio.sleep(self.deploy_delay)
        if deployment["deploymentId"] not in self.store.deployments:  # deleted or reset
            return
        build = run_build(
            app["dockerImage"],
            self.store.env_texts(app),
            rebuild=job.rebuild,
            docker_error=self.store.docker_error,
            failing=app["name"] in self.fail_deploys or app["dockerImage"] in self.fail_images,
        )
        self.store.finish_deployment(deployment, build)
        self._ran[deployment["deploymentId"]] = app["dockerImage"]
