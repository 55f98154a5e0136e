"""The fake Dokploy's tables: the shapes of its rows, their ids, and the rows themselves.

Key sets, key order and defaults copy the recorded exchanges of a real v0.30.2 server
(`../shared/specs/dokploy-recorded/`); where they and `dokploy-api.md` differ, the
recordings win. `Tables` holds the rows by id with the lookups and relations responses are
built from, a deployment's bookkeeping and the cascades of a delete; the procedures on them
are `Store`'s (`dokploy_state.py`).
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from typing import Any

from deployer.sandbox.dokploy_host import STARTED, Build

Row = dict[str, Any]

ID_ALPHABET = string.ascii_letters + string.digits + "_-"
MAX_DEPLOYMENTS_PER_APP = 10
# Databases and compose services are not modelled; the real listings carry them as [].
SERVICE_KINDS = ("mariadb", "mongo", "mysql", "postgres", "redis", "compose", "libsql")
# What `project.one` and `environment.byProjectId` list per application (§5.1, §5.2).
SERVICE_ENTRY = ("applicationId", "name", "description", "appName", "createdAt", "serverId",
                 "applicationStatus", "icon")  # fmt: skip
SLIM_ENTRY = ("applicationId", "name", "applicationStatus")  # what `project.all` lists
# Parent tables of domain.create's optional parents, for the foreign-key error text.
FOREIGN_KEYS = {"applicationId": "application", "composeId": "compose",
                "previewDeploymentId": "preview_deployments"}  # fmt: skip

# The application row in the real column order (recording 04, 101 keys).
APP_KEYS = """applicationId name appName description env previewEnv watchPaths previewBuildArgs
previewBuildSecrets previewLabels previewWildcard previewPort previewHttps previewPath
previewCertificateType previewCustomCertResolver previewLimit isPreviewDeploymentsActive
previewRequireCollaboratorPermissions rollbackActive buildArgs buildSecrets memoryReservation
memoryLimit cpuReservation cpuLimit title enabled subtitle command args icon refreshToken
sourceType cleanCache repository owner branch buildPath triggerType autoDeploy gitlabProjectId
gitlabRepository gitlabOwner gitlabBranch gitlabBuildPath gitlabPathNamespace giteaRepository
giteaOwner giteaBranch giteaBuildPath bitbucketRepository bitbucketRepositorySlug bitbucketOwner
bitbucketBranch bitbucketBuildPath username password dockerImage registryUrl customGitUrl
customGitBranch customGitBuildPath customGitSSHKeyId enableSubmodules dockerfile
dockerContextPath dockerBuildStage dropBuildPath healthCheckSwarm restartPolicySwarm
placementSwarm updateConfigSwarm rollbackConfigSwarm modeSwarm labelsSwarm networkSwarm
stopGracePeriodSwarm endpointSpecSwarm ulimitsSwarm replicas applicationStatus buildType
railpackVersion herokuVersion publishDirectory isStaticSpa createEnvFile createdAt registryId
rollbackRegistryId environmentId githubId gitlabId giteaId bitbucketId serverId buildServerId
buildRegistryId networkIds detachDokployNetwork""".split()  # noqa: SIM905 (101 names, compact)
# Create-time defaults that are not null; every other column starts as null.
APP_DEFAULTS: Row = {
    "previewPort": 3000,
    "previewHttps": False,
    "previewPath": "/",
    "previewCertificateType": "none",
    "previewLimit": 3,
    "isPreviewDeploymentsActive": False,
    "previewRequireCollaboratorPermissions": True,
    "rollbackActive": False,
    "sourceType": "github",
    "cleanCache": False,
    "buildPath": "/",
    "triggerType": "push",
    "autoDeploy": True,
    "gitlabBuildPath": "/",
    "giteaBuildPath": "/",
    "bitbucketBuildPath": "/",
    "enableSubmodules": False,
    "dockerfile": "Dockerfile",
    "replicas": 1,
    "applicationStatus": "idle",
    "buildType": "nixpacks",
    "railpackVersion": "0.15.4",
    "herokuVersion": "24",
    "createEnvFile": True,
    "detachDokployNetwork": False,
}
# The domain row in the real column order, with its defaults (recordings 07 and 58).
DOMAIN_DEFAULTS: Row = {
    "domainId": None,
    "host": None,
    "https": False,
    "port": 3000,
    "customEntrypoint": None,
    "path": "/",
    "serviceName": None,
    "domainType": "application",
    "uniqueConfigKey": None,
    "createdAt": None,
    "composeId": None,
    "customCertResolver": None,
    "applicationId": None,
    "previewDeploymentId": None,
    "certificateType": "none",
    "internalPath": "/",
    "stripPath": False,
    "middlewares": None,
    "forwardAuthEnabled": False,
    "enabled": True,
}
SECURITY_KEYS = ("securityId", "username", "password", "createdAt", "applicationId")
DEPLOYMENT_KEYS = ("deploymentId", "title", "description", "status", "logPath", "pid",
                   "applicationId", "composeId", "serverId", "isPreviewDeployment",
                   "previewDeploymentId", "createdAt", "startedAt", "finishedAt", "errorMessage",
                   "scheduleId", "backupId", "rollbackId", "volumeBackupId",
                   "buildServerId")  # fmt: skip
# Single-word picks from faker's hacker lists, for `app-<verb>-<adjective>-<noun>-xxxxxx`.
VERBS = ("parse", "hack", "bypass", "index", "compress", "reboot", "navigate", "transmit")
ADJECTIVES = ("neural", "digital", "virtual", "primary", "optical", "wireless", "haptic")
NOUNS = ("panel", "driver", "protocol", "matrix", "sensor", "firewall", "circuit", "array")


class ApiError(Exception):
    """A tRPC error the procedure raises; `dokploy.py` renders it with the procedure path."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def nanoid(size: int = 21) -> str:
    return "".join(random.choices(ID_ALPHABET, k=size))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _suffix(alphabet: str) -> str:
    return "".join(random.choices(alphabet, k=6))


def generate_app_name(requested: str | None) -> str:
    """Dokploy always appends a random suffix, so a repeated appName is not a conflict."""
    if requested:
        base = requested.strip().replace(" ", "-").lower()
        return f"{base}-{_suffix(string.ascii_lowercase + string.digits)}"
    words = "-".join(random.choice(group) for group in (VERBS, ADJECTIVES, NOUNS))
    return f"app-{words}-{_suffix(string.ascii_lowercase + '123456789')}"  # §3: no zero here


def pick(row: Row, *keys: str) -> Row:
    return {key: row[key] for key in keys}


class Tables:
    """All rows of one fake server, keyed by id, in insertion (= createdAt) order."""

    def __init__(self) -> None:
        self.organization_id = nanoid()
        self.projects: dict[str, Row] = {}
        self.environments: dict[str, Row] = {}
        self.applications: dict[str, Row] = {}
        self.domains: dict[str, Row] = {}
        self.deployments: dict[str, Row] = {}
        self.security: dict[str, Row] = {}  # HTTP basic-auth rows, by securityId
        self.logs: dict[str, list[str]] = {}  # deploymentId -> the lines of its build log
        self.container_envs: dict[str, dict[str, str]] = {}  # deploymentId -> what it ran with
        self.output: dict[str, list[str]] = {}  # deploymentId -> what its container printed
        self.stopped: set[str] = set()  # applicationIds whose service is scaled to 0
        self.unique_config_key = 0  # a database-wide serial in Dokploy
        # What this host's docker CLI prints on stderr; None: a working Docker engine.
        self.docker_error: str | None = None

    def clear(self) -> None:
        for table in (self.projects, self.environments, self.applications, self.domains):
            table.clear()
        for rows in (self.deployments, self.security, self.logs, self.container_envs,
                     self.output):  # fmt: skip
            rows.clear()
        self.stopped.clear()
        self.unique_config_key = 0

    # -- lookups and relations --------------------------------------------------------------

    def project(self, project_id: str) -> Row:
        if project_id not in self.projects:
            raise ApiError(404, "Project not found")
        return self.projects[project_id]

    def application(self, app_id: str) -> Row:
        if app_id not in self.applications:
            raise ApiError(404, "Application not found")
        return self.applications[app_id]

    def deployments_of(self, app_id: str) -> list[Row]:
        """Newest first, as `deployment.all` sorts them (createdAt descending)."""
        return [d for d in self.deployments.values() if d["applicationId"] == app_id][::-1]

    def domains_of(self, app_id: str) -> list[Row]:
        return [d for d in self.domains.values() if d["applicationId"] == app_id]

    def security_of(self, app_id: str) -> list[Row]:
        return [s for s in self.security.values() if s["applicationId"] == app_id]

    def container_env(self, app_id: str) -> dict[str, str] | None:
        """The environment the application's container got from its newest successful
        deployment (the stored env text, parsed and expanded as Dokploy does); None before
        any deployment succeeded."""
        for deployment in self.deployments_of(app_id):
            if deployment["status"] == "done":
                return self.container_envs.get(deployment["deploymentId"])
        return None

    def is_running(self, app_id: str) -> bool:
        """A container answers: the newest deployment is done and the service not stopped."""
        newest = self.deployments_of(app_id)[:1]
        return bool(newest) and newest[0]["status"] == "done" and app_id not in self.stopped

    def _apps_in(self, env_id: str) -> list[Row]:
        return [a for a in self.applications.values() if a["environmentId"] == env_id]

    def _envs_of(self, project_id: str) -> list[Row]:
        return [e for e in self.environments.values() if e["projectId"] == project_id]

    def _services(self, env_id: str, *, full: bool) -> Row:
        """The per-environment service lists; only applications are ever non-empty here."""
        if full:
            apps = [{**pick(a, *SERVICE_ENTRY), "server": None} for a in self._apps_in(env_id)]
        else:
            apps = [pick(a, *SLIM_ENTRY) for a in self._apps_in(env_id)]
        return {"applications": apps, **{kind: [] for kind in SERVICE_KINDS}}

    def application_view(self, app: Row) -> Row:
        """The row plus relations, as `stop`, `start` and `delete` return it (recording 25)."""
        env = self.environments[app["environmentId"]]
        return {
            **app,
            "environment": {**env, "project": self.projects[env["projectId"]]},
            "domains": self.domains_of(app["applicationId"]),
            # unordered in Dokploy; oldest first here, as the recordings happen to show
            "deployments": self.deployments_of(app["applicationId"])[::-1],
            **{key: [] for key in ("mounts", "redirects")},
            "security": self.security_of(app["applicationId"]),
            "ports": [],
            **dict.fromkeys(("gitlab", "github", "bitbucket", "gitea", "server"), None),
            "previewDeployments": [],
            **dict.fromkeys(("registry", "buildRegistry", "rollbackRegistry"), None),
        }

    # -- changes ----------------------------------------------------------------------------

    def add_deployment(self, app: Row, title: str, description: str) -> Row:
        now, name = now_iso(), app["appName"]
        stamp = now[:19].replace("T", ":")  # Dokploy's log file name: YYYY-MM-DD:HH:MM:SS
        row: Row = dict.fromkeys(DEPLOYMENT_KEYS)  # in the real key order, null by default
        row.update(deploymentId=nanoid(), title=title, description=description, status="running")
        row.update(logPath=f"/etc/dokploy/logs/{name}/{name}-{stamp}.log", createdAt=now)
        row.update(applicationId=app["applicationId"], isPreviewDeployment=False, startedAt=now)
        self.deployments[row["deploymentId"]] = row
        self.logs[row["deploymentId"]] = [STARTED]
        # Dokploy keeps only the newest deployments of an application.
        for old in self.deployments_of(app["applicationId"])[MAX_DEPLOYMENTS_PER_APP:]:
            self._drop_deployment(old["deploymentId"])
        return row

    def finish_deployment(self, deployment: Row, build: Build) -> None:
        """Record a build's outcome on its row, its log, its container env and its app."""
        deployment.update(status=build.status, finishedAt=now_iso())
        self.logs[deployment["deploymentId"]] = build.log
        if build.env is not None:
            self.container_envs[deployment["deploymentId"]] = build.env
        app_id = deployment["applicationId"]
        self.applications[app_id]["applicationStatus"] = build.status
        if build.status == "done":
            self.stopped.discard(app_id)  # a deploy (re)creates the service

    def env_texts(self, app: Row) -> tuple[str | None, str | None, str | None]:
        """The application's env text and the project's and environment's, which a deploy
        parses and expands references from."""
        env = self.environments[app["environmentId"]]
        return app["env"], self.projects[env["projectId"]]["env"], env["env"]

    def _drop_deployment(self, deployment_id: str) -> None:
        del self.deployments[deployment_id]
        self.logs.pop(deployment_id, None)
        self.container_envs.pop(deployment_id, None)
        self.output.pop(deployment_id, None)

    def _remove_application(self, app_id: str) -> Row:
        """The database cascades to the application's domains, deployments and security."""
        for table in (self.domains, self.security):
            for key in [k for k, row in table.items() if row["applicationId"] == app_id]:
                del table[key]
        for deployment in self.deployments_of(app_id):
            self._drop_deployment(deployment["deploymentId"])
        self.stopped.discard(app_id)
        return self.applications.pop(app_id)
