"""DokployPaas: the Paas port over Dokploy's REST API (see ../shared/specs/dokploy-api.md).

GET with query parameters for reads, POST with JSON for writes, `x-api-key` on every call.
Every public method is idempotent, so the retry policy may repeat it: creates look up by
name first, deletes treat "not found" as already done. The basic-auth methods (`security.*`)
are mixed in from dokploy_security.py; a live container's calls (stop, start, reload) and the
log reads from dokploy_container.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pydantic import Field, SecretStr, TypeAdapter

from deployer.adapters.dokploy_container import ContainerCalls
from deployer.adapters.dokploy_errors import NAME, checked
from deployer.adapters.dokploy_security import BasicAuthCalls
from deployer.adapters.dotenv import to_dotenv
from deployer.adapters.http import (
    QUICK_TIMEOUT,
    UpstreamModel,
    new_session,
    send,
)
from deployer.adapters.resilience import QUICK, Upstream
from deployer.core.models import ProjectView
from deployer.errors import AmbiguousResource, Gone, PermanentError
from deployer.ports import (
    AppRef,
    AppSettings,
    BeforeCreate,
    DeploymentRun,
    Limits,
    ProjectRef,
    ProjectSurvey,
)

T = TypeVar("T")


class _App(UpstreamModel):
    applicationId: str
    name: str
    appName: str | None = None
    applicationStatus: str | None = None
    dockerImage: str | None = None
    env: str | None = None
    memoryLimit: str | None = None
    cpuLimit: str | None = None


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


class DokployPaas(BasicAuthCalls, ContainerCalls):
    def __init__(self, base_url: str, api_key: SecretStr, upstream: Upstream, timeout: float):
        self._api = f"{base_url}/api"
        self._upstream = upstream
        self._session = new_session(timeout, {"x-api-key": api_key.get_secret_value()})

    async def close(self) -> None:
        await self._session.close()

    # -- projects ---------------------------------------------------------------------------
    async def count_projects(self, *, quick: bool = False) -> int:
        """How many projects the key sees: proof that Dokploy answers and takes the key.
        `quick` is for a person waiting (preflight): two attempts and a short request
        timeout, so an unreachable Dokploy is reported in seconds, not after the retries."""
        if not quick:
            return len(await self._call(self._all_projects))

        async def count() -> int:
            url = f"{self._api}/project.all"
            reply = await send(self._session, NAME, "GET", url, time_limit=QUICK_TIMEOUT)
            return len(_projects.validate_python(checked("project.all", reply)))

        return await self._upstream.call(count, policy=QUICK)

    async def survey_projects(self, name: str) -> ProjectSurvey:
        async def survey() -> ProjectSurvey:
            projects = await self._all_projects()
            return ProjectSurvey(len(projects), tuple(_named(projects, name)))

        return await self._call(survey)

    async def find_project(self, name: str) -> ProjectRef | None:
        async def find() -> ProjectRef | None:
            return _only("project", name, _named(await self._all_projects(), name))

        return await self._call(find)

    async def ensure_project(
        self, name: str, description: str, *, before_create: BeforeCreate | None = None,
        absent: bool = False,
    ) -> ProjectRef:  # fmt: skip
        trusted = _first_attempt_only(absent)

        async def ensure() -> ProjectRef:
            if not trusted():
                found = _only("project", name, _named(await self._all_projects(), name))
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
        self, project: ProjectRef, name: str, *, before_create: BeforeCreate | None = None,
        absent: bool = False,
    ) -> AppRef:  # fmt: skip
        trusted = _first_attempt_only(absent)

        async def ensure() -> AppRef:
            if not trusted():
                found = await self._find_app(project.project_id, name)
                if found:
                    return found
            await _announce(before_create)
            body = {"name": name, "appName": name, "environmentId": project.environment_id}
            app = _App.model_validate(await self._post("application.create", body))
            return AppRef(app.applicationId, app.appName or name)

        return await self._call(ensure)

    async def app_settings(self, application_id: str) -> AppSettings:
        async def read() -> AppSettings:
            raw = await self._get("application.one", applicationId=application_id)
            app = _App.model_validate(raw)
            limits = Limits(app.memoryLimit, app.cpuLimit)
            return AppSettings(app.dockerImage or "", app.env or "", limits)

        return await self._call(read)

    async def delete_application(self, application_id: str) -> bool:
        body = {"applicationId": application_id}
        return await self._call(lambda: self._delete("application.delete", body))

    async def configure_image(
        self, application_id: str, image: str, env: Mapping[str, str] | None,
        limits: Limits | None = None,
    ) -> None:  # fmt: skip
        env_text = None if env is None else to_dotenv(env) or ""
        await self._save(application_id, image, env_text, limits)

    async def restore_settings(self, application_id: str, settings: AppSettings) -> None:
        await self._save(application_id, settings.image, settings.env_text, settings.limits)

    async def _save(
        self, application_id: str, image: str, env_text: str | None, limits: Limits | None
    ) -> None:
        """Image, then the env text as Dokploy stores it (byte for byte), then the limits;
        None leaves the environment or the limits alone (a new application has none)."""
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
            "env": env_text or None,
            "buildArgs": None,
            "buildSecrets": None,
            "createEnvFile": True,
        }

        async def configure() -> None:
            await self._post("application.saveDockerProvider", provider)
            if env_text is not None:
                await self._post("application.saveEnvironment", environment)
            if limits is not None:  # strings only: Dokploy refuses numbers (a 400)
                update = {"applicationId": application_id, "memoryLimit": limits.memory,
                          "cpuLimit": limits.cpus}  # fmt: skip
                await self._post("application.update", update)

        await self._call(configure)

    # -- domains ----------------------------------------------------------------------------
    async def ensure_domain(
        self, application_id: str, host: str, port: int, https: bool, *,
        before_create: BeforeCreate | None = None, absent: bool = False,
    ) -> str:  # fmt: skip
        trusted = _first_attempt_only(absent)

        async def ensure() -> str:
            if not trusted():
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

    # -- stacks -----------------------------------------------------------------------------
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
        apps = [AppRef(a.applicationId, a.appName or name)
                for env in envs for a in env.applications if a.name == name]  # fmt: skip
        return _only("application", name, apps)

    async def _app_domains(self, application_id: str) -> list[_Domain]:
        raw = await self._get("domain.byApplicationId", applicationId=application_id)
        return _domains.validate_python(raw)

    async def _deployments(self, application_id: str) -> list[_Deployment]:
        raw = await self._get("deployment.all", applicationId=application_id)
        return _deployments.validate_python(raw)

    async def _delete(self, procedure: str, body: dict[str, Any]) -> bool:
        try:
            await self._post(procedure, body)
        except Gone:
            return False  # already gone: an undo accepts "nothing to undo"
        return True

    async def _get(self, procedure: str, **params: str) -> Any:
        reply = await send(self._session, NAME, "GET", f"{self._api}/{procedure}", params=params)
        return checked(procedure, reply)

    async def _post(self, procedure: str, body: dict[str, Any]) -> Any:
        reply = await send(self._session, NAME, "POST", f"{self._api}/{procedure}", body=body)
        return checked(procedure, reply)


async def _announce(before_create: BeforeCreate | None) -> None:
    if before_create is not None:
        await before_create()


def _named(projects: list[_Project], name: str) -> list[ProjectRef]:
    # Project names are not unique in Dokploy; project.all is newest first.
    return [_ref(p) for p in projects if p.name == name]


R = TypeVar("R", ProjectRef, AppRef)


def _only(kind: str, name: str, found: list[R]) -> R | None:
    """The one resource of that name, or none; two are refused, never guessed."""
    if len(found) > 1:
        ids = ", ".join(_id_of(r) for r in found)
        raise AmbiguousResource(
            f"{NAME} has {len(found)} {kind}s named {name} ({ids}): aistack will not guess "
            f"which is this stack's; remove or rename the one that is not"
        )
    return found[0] if found else None


def _id_of(ref: ProjectRef | AppRef) -> str:
    return ref.project_id if isinstance(ref, ProjectRef) else ref.application_id


def _first_attempt_only(flag: bool) -> Callable[[], bool]:
    """True on the first call only (when `flag`): a create may skip its look-up when the
    caller knows the resource is absent, but a retry (after a lost answer) must look."""
    left = [flag]

    def check() -> bool:
        value, left[0] = left[0], False
        return value

    return check


def _ref(project: _Project) -> ProjectRef:
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
