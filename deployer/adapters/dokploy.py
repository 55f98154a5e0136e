"""DokployPaas: the Paas port over Dokploy's REST API (see ../shared/specs/dokploy-api.md).

GET with query parameters for reads, POST with JSON for writes, `x-api-key` on every call.
Every public method is idempotent, so the retry policy may repeat it: creates look up by
name first, deletes treat "not found" as already done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import Field, SecretStr, TypeAdapter

from deployer.adapters.http import HttpReply, UpstreamModel, new_session, send, trimmed
from deployer.errors import AuthError, PermanentError, TransientError
from deployer.models import ProjectView
from deployer.ports import AppRef, BeforeCreate, DeploymentRun, ProjectRef
from deployer.resilience import Upstream

NAME = "Dokploy"
T = TypeVar("T")


class _App(UpstreamModel):
    applicationId: str
    name: str
    appName: str | None = None
    applicationStatus: str | None = None
    dockerImage: str | None = None


class _Environment(UpstreamModel):
    environmentId: str
    isDefault: bool = False
    applications: list[_App] = Field(default_factory=list)


class _Project(UpstreamModel):
    projectId: str
    name: str
    createdAt: str | None = None
    environments: list[_Environment] = Field(default_factory=list)


class _Created(UpstreamModel):
    project: _Project
    environment: _Environment


class _Domain(UpstreamModel):
    domainId: str
    host: str


class _Deployment(UpstreamModel):
    deploymentId: str
    status: str
    errorMessage: str | None = None


_projects = TypeAdapter(list[_Project])
_environments = TypeAdapter(list[_Environment])
_domains = TypeAdapter(list[_Domain])
_deployments = TypeAdapter(list[_Deployment])


class DokployPaas:
    def __init__(self, base_url: str, api_key: SecretStr, upstream: Upstream, timeout: float):
        self._api = f"{base_url}/api"
        self._upstream = upstream
        self._session = new_session(timeout, {"x-api-key": api_key.get_secret_value()})

    async def close(self) -> None:
        await self._session.close()

    # -- projects ---------------------------------------------------------------------------
    async def count_projects(self) -> int:
        return len(await self._call(self._all_projects))

    async def find_project(self, name: str) -> ProjectRef | None:
        async def find() -> ProjectRef | None:
            return _ref(_newest_named(await self._all_projects(), name))

        return await self._call(find)

    async def ensure_project(
        self, name: str, description: str, *, before_create: BeforeCreate | None = None
    ) -> ProjectRef:
        async def ensure() -> ProjectRef:
            found = _ref(_newest_named(await self._all_projects(), name))
            if found:
                return found
            await _announce(before_create)
            body = {"name": name, "description": description}
            created = _Created.model_validate(await self._post("project.create", body))
            return ProjectRef(created.project.projectId, created.environment.environmentId)

        return await self._call(ensure)

    async def remove_project(self, project_id: str) -> bool:
        return await self._call(lambda: self._delete("project.remove", {"projectId": project_id}))

    # -- applications -----------------------------------------------------------------------
    async def find_application(self, project_id: str, name: str) -> AppRef | None:
        return await self._call(lambda: self._find_app(project_id, name))

    async def ensure_application(
        self, project: ProjectRef, name: str, *, before_create: BeforeCreate | None = None
    ) -> AppRef:
        async def ensure() -> AppRef:
            found = await self._find_app(project.project_id, name)
            if found:
                return found
            await _announce(before_create)
            body = {"name": name, "appName": name, "environmentId": project.environment_id}
            app = _App.model_validate(await self._post("application.create", body))
            return AppRef(app.applicationId, app.appName or name)

        return await self._call(ensure)

    async def image_of(self, application_id: str) -> str | None:
        async def read() -> str | None:
            raw = await self._get("application.one", applicationId=application_id)
            return _App.model_validate(raw).dockerImage

        return await self._call(read)

    async def delete_application(self, application_id: str) -> bool:
        body = {"applicationId": application_id}
        return await self._call(lambda: self._delete("application.delete", body))

    async def configure_image(
        self, application_id: str, image: str, env: Mapping[str, str]
    ) -> None:
        provider = {
            "applicationId": application_id,
            "dockerImage": image,
            "username": None,
            "password": None,
            "registryUrl": None,
        }
        # saveEnvironment overwrites all four fields: send buildArgs/buildSecrets explicitly.
        environment = {
            "applicationId": application_id,
            "env": _dotenv(env),
            "buildArgs": None,
            "buildSecrets": None,
            "createEnvFile": True,
        }

        async def configure() -> None:
            await self._post("application.saveDockerProvider", provider)
            await self._post("application.saveEnvironment", environment)

        await self._call(configure)

    # -- domains ----------------------------------------------------------------------------
    async def ensure_domain(
        self, application_id: str, host: str, port: int, https: bool, *,
        before_create: BeforeCreate | None = None,
    ) -> str:  # fmt: skip
        async def ensure() -> str:
            for domain in await self._app_domains(application_id):
                if domain.host == host:
                    return domain.domainId
            await _announce(before_create)
            body = {
                "host": host,
                "applicationId": application_id,
                "domainType": "application",
                "port": port,
                "https": https,
                "path": "/",
                "certificateType": "letsencrypt" if https else "none",
            }
            return _Domain.model_validate(await self._post("domain.create", body)).domainId

        return await self._call(ensure)

    async def find_domain(self, application_id: str, host: str) -> str | None:
        async def find() -> str | None:
            domains = await self._app_domains(application_id)
            return next((d.domainId for d in domains if d.host == host), None)

        return await self._call(find)

    async def delete_domain(self, domain_id: str) -> bool:
        return await self._call(lambda: self._delete("domain.delete", {"domainId": domain_id}))

    # -- deployments ------------------------------------------------------------------------
    async def deployment_ids(self, application_id: str) -> set[str]:
        rows = await self._call(lambda: self._deployments(application_id))
        return {row.deploymentId for row in rows}

    async def start_deploy(self, application_id: str, title: str) -> None:
        body = {"applicationId": application_id, "title": title}
        await self._call(lambda: self._post("application.deploy", body))

    async def newest_deployment(self, application_id: str, known: set[str]) -> DeploymentRun | None:
        rows = await self._call(lambda: self._deployments(application_id))
        # deployment.all is sorted newest first; a row we had not seen is ours.
        for row in rows:
            if row.deploymentId not in known:
                return DeploymentRun(row.deploymentId, row.status, row.errorMessage)
        return None

    async def stacks(self, project_prefix: str) -> list[ProjectView]:
        projects = await self._call(self._all_projects)
        return [_view(p) for p in projects if p.name.startswith(project_prefix)]

    # -- plumbing ---------------------------------------------------------------------------
    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await self._upstream.call(operation)

    async def _all_projects(self) -> list[_Project]:
        return _projects.validate_python(await self._get("project.all"))

    async def _find_app(self, project_id: str, name: str) -> AppRef | None:
        envs = _environments.validate_python(
            await self._get("environment.byProjectId", projectId=project_id)
        )
        for env in envs:
            for app in env.applications:
                if app.name == name:
                    return AppRef(app.applicationId, app.appName or name)
        return None

    async def _app_domains(self, application_id: str) -> list[_Domain]:
        raw = await self._get("domain.byApplicationId", applicationId=application_id)
        return _domains.validate_python(raw)

    async def _deployments(self, application_id: str) -> list[_Deployment]:
        raw = await self._get("deployment.all", applicationId=application_id)
        return _deployments.validate_python(raw)

    async def _delete(self, procedure: str, body: dict[str, Any]) -> bool:
        try:
            await self._post(procedure, body)
        except _NotFound:
            return False  # already gone: an undo accepts "nothing to undo"
        return True

    async def _get(self, procedure: str, **params: str) -> Any:
        reply = await send(self._session, NAME, "GET", f"{self._api}/{procedure}", params=params)
        return _checked(procedure, reply)

    async def _post(self, procedure: str, body: dict[str, Any]) -> Any:
        reply = await send(self._session, NAME, "POST", f"{self._api}/{procedure}", body=body)
        return _checked(procedure, reply)


class _NotFound(PermanentError):
    pass


def _checked(procedure: str, reply: HttpReply) -> Any:
    """Translate Dokploy's answer (spec §2) into a value or an aistack error."""
    if reply.status < 400:
        return reply.json()
    body = reply.json()
    code = body.get("code", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else reply.text
    where = f"{NAME} {procedure}"
    if reply.status == 401 and not code:
        raise AuthError(
            f"{where}: 401 Unauthorized: the API key is invalid, expired or rate-limited "
            "(Dokploy answers all three the same way); check AISTACK_DOKPLOY_API_KEY"
        )
    if reply.status == 429 or reply.status >= 500:
        # A 500 message may echo SQL and its parameters: never pass it on.
        raise TransientError(
            f"{where}: {reply.status} {code or 'server error'}", retry_after=_retry_after(reply)
        )
    if reply.status == 404 and code == "NOT_FOUND":
        raise _NotFound(f"{where}: {trimmed(message)}")
    raise PermanentError(f"{where}: {reply.status} {code}: {trimmed(message)}".rstrip(": "))


async def _announce(before_create: BeforeCreate | None) -> None:
    if before_create is not None:
        await before_create()


def _retry_after(reply: HttpReply) -> float | None:
    value = reply.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _newest_named(projects: list[_Project], name: str) -> _Project | None:
    # Project names are not unique in Dokploy; project.all is newest first.
    return next((p for p in projects if p.name == name), None)


def _ref(project: _Project | None) -> ProjectRef | None:
    if project is None:
        return None
    default = next((e for e in project.environments if e.isDefault), None)
    if default is None:
        raise PermanentError(f"{NAME}: project {project.name} has no default environment")
    return ProjectRef(project.projectId, default.environmentId)


def _view(project: _Project) -> ProjectView:
    default = next((e for e in project.environments if e.isDefault), None)
    app = default.applications[0] if default and default.applications else None
    return ProjectView(
        project_id=project.projectId,
        project_name=project.name,
        environment_id=default.environmentId if default else None,
        application_id=app.applicationId if app else None,
        application_status=app.applicationStatus if app else None,
        created_at=project.createdAt,
    )


def _dotenv(env: Mapping[str, str]) -> str | None:
    return "\n".join(f"{k}={v}" for k, v in env.items()) or None
