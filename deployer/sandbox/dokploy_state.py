"""Records of the fake Dokploy server: rows, defaults, cascades and the procedures on them.

Key sets, key order and defaults copy the recorded exchanges of a real v0.30.2 server
(`../shared/specs/dokploy-recorded/`); where they and `dokploy-api.md` differ, the
recordings win. HTTP and the deploy queue live in `dokploy.py`, validation in
`dokploy_validation.py`.
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from typing import Any

from deployer.sandbox.dokploy_host import STARTED, Build, log_tail

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
REDACTED = "REDACTED"  # stands for a password wherever the real server would echo it
DEFAULT_TAIL = 100  # the readLogs procedures' default `tail`
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


def _pick(row: Row, *keys: str) -> Row:
    return {key: row[key] for key in keys}


class Store:
    """All rows of one fake server, keyed by id, in insertion (= createdAt) order.

    The public methods named `<router>_<procedure>` implement those procedures; each takes
    the validated input and returns the response body, or raises `ApiError`.
    """

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
        self.stopped: set[str] = set()  # applicationIds whose service is scaled to 0
        self.unique_config_key = 0  # a database-wide serial in Dokploy
        # What this host's docker CLI prints on stderr; None: a working Docker engine.
        self.docker_error: str | None = None

    def clear(self) -> None:
        for table in (self.projects, self.environments, self.applications, self.domains):
            table.clear()
        for rows in (self.deployments, self.security, self.logs, self.container_envs):
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
            apps = [{**_pick(a, *SERVICE_ENTRY), "server": None} for a in self._apps_in(env_id)]
        else:
            apps = [_pick(a, *SLIM_ENTRY) for a in self._apps_in(env_id)]
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

    def _remove_application(self, app_id: str) -> Row:
        """The database cascades to the application's domains, deployments and security."""
        for table in (self.domains, self.security):
            for key in [k for k, row in table.items() if row["applicationId"] == app_id]:
                del table[key]
        for deployment in self.deployments_of(app_id):
            self._drop_deployment(deployment["deploymentId"])
        self.stopped.discard(app_id)
        return self.applications.pop(app_id)

    # -- project and environment procedures -------------------------------------------------

    def project_all(self, _: Row) -> list[Row]:
        """Newest project first, with a slim environment and service tree (recording 14)."""
        listing = []
        for project in reversed(self.projects.values()):
            envs = []
            for env in self._envs_of(project["projectId"]):
                slim = _pick(env, "name", "environmentId", "isDefault")
                envs.append({**slim, **self._services(env["environmentId"], full=False)})
            listing.append({**project, "environments": envs, "projectTags": []})
        return listing

    def project_one(self, i: Row) -> Row:
        project = self.project(i["projectId"])
        envs = [
            {**env, **self._services(env["environmentId"], full=True)}
            for env in self._envs_of(project["projectId"])
        ]
        return {**project, "environments": envs, "projectTags": []}

    def project_create(self, i: Row) -> Row:
        """Creates the project with its default environment and returns both (recording 02)."""
        project: Row = {
            "projectId": nanoid(),
            "name": i["name"],
            "description": i.get("description"),
            "createdAt": now_iso(),
            "organizationId": self.organization_id,
            "env": i.get("env", ""),
        }
        env: Row = {
            "environmentId": nanoid(),
            "name": "production",
            "description": "Production environment",
            "createdAt": now_iso(),
            "env": "",
            "projectId": project["projectId"],
            "isDefault": True,
        }
        self.projects[project["projectId"]] = project
        self.environments[env["environmentId"]] = env
        return {"project": project, "environment": env}

    def project_remove(self, i: Row) -> Row:
        """Accepted even with services inside; everything below goes by cascade (recording 63)."""
        project = self.project(i["projectId"])
        for env in self._envs_of(project["projectId"]):
            for app in self._apps_in(env["environmentId"]):
                self._remove_application(app["applicationId"])
            del self.environments[env["environmentId"]]
        return self.projects.pop(project["projectId"])

    def environment_by_project_id(self, i: Row) -> list[Row]:
        """No env-level projectId/env/createdAt; [] for an unknown project (recordings 03, 37)."""
        project = self.projects.get(i["projectId"])
        if project is None:
            return []
        listing = []
        for env in self._envs_of(project["projectId"]):
            head = _pick(env, "name", "description", "environmentId", "isDefault")
            services = self._services(env["environmentId"], full=True)
            listing.append({**head, **services, "project": project})
        return listing

    # -- application procedures -------------------------------------------------------------

    def application_create(self, i: Row) -> Row:
        if i["environmentId"] not in self.environments:
            raise ApiError(404, "Environment not found")
        app_name = generate_app_name(i.get("appName"))
        if any(a["appName"] == app_name for a in self.applications.values()):
            raise ApiError(409, "Application with this 'AppName' already exists")
        row: Row = {key: APP_DEFAULTS.get(key) for key in APP_KEYS}
        row.update(applicationId=nanoid(), refreshToken=nanoid(), createdAt=now_iso())
        row.update(appName=app_name, networkIds=[], description=i.get("description"))
        row.update(_pick(i, "name", "environmentId"))
        row.update({k: i[k] for k in ("serverId", "sourceType") if k in i})
        self.applications[row["applicationId"]] = row
        return row

    def application_one(self, i: Row) -> Row:
        view = self.application_view(self.application(i["applicationId"]))
        return {**view, "hasGitProviderAccess": True, "unauthorizedProvider": None}

    def application_update(self, i: Row) -> bool:
        app = self.applications.get(i["applicationId"])
        if app is None:  # wrapped into a 400, not a 404 (recording 42)
            raise ApiError(400, "Error updating application")
        # appName cannot change; a missing key keeps its value, an explicit null clears it
        app.update({k: v for k, v in i.items() if k in app and k != "appName"})
        return True

    def application_save_docker_provider(self, i: Row) -> bool:
        app = self.application(i["applicationId"])
        app.update(_pick(i, "dockerImage", "username", "password", "registryUrl"))
        app.update(sourceType="docker", applicationStatus="idle")
        return True

    def application_save_environment(self, i: Row) -> bool:
        app = self.application(i["applicationId"])
        app.update(_pick(i, "env", "buildArgs", "buildSecrets", "createEnvFile"))
        return True

    def application_stop(self, i: Row) -> Row:
        """Returns the pre-change object, then reads `idle` (recordings 49, 50)."""
        app = self.application(i["applicationId"])
        before = self.application_view(app)
        app["applicationStatus"] = "idle"
        self.stopped.add(app["applicationId"])
        return before

    def application_start(self, i: Row) -> Row:
        """Without a Docker engine, `docker service scale` fails and says so (recording 90)."""
        app = self.application(i["applicationId"])
        if self.docker_error is not None:
            raise ApiError(500, _command_failed(f"docker service scale {app['appName']}=1 ",
                                                self.docker_error))  # fmt: skip
        before = self.application_view(app)
        app["applicationStatus"] = "done"
        self.stopped.discard(app["applicationId"])
        return before

    def application_reload(self, i: Row) -> bool:
        """Stop and start the service; a failure marks the application `error` and says no
        more than a generic message (recording 91)."""
        app = self.application(i["applicationId"])
        if self.docker_error is not None:
            app["applicationStatus"] = "error"
            raise ApiError(500, "Error reloading application")
        app["applicationStatus"] = "done"
        self.stopped.discard(app["applicationId"])
        return True

    def application_cancel_deployment(self, i: Row) -> None:
        """Only Dokploy Cloud cancels deployments (recording 93)."""
        self.application(i["applicationId"])
        raise ApiError(400, "Deployment cancellation only available in cloud version")

    def application_read_logs(self, i: Row) -> str:
        """The container's logs; a 500, not a 404, when nothing runs (recording 98)."""
        app = self.application(i["applicationId"])
        if self.docker_error is not None or not self.is_running(app["applicationId"]):
            raise ApiError(500, f"No container or service found for: {app['appName']}")
        newest = self.deployments_of(app["applicationId"])[0]
        lines = [
            f"{newest['finishedAt']} {app['appName']}: started from {app['dockerImage']}",
            f"{newest['finishedAt']} {app['appName']}: ready",
        ]
        return log_tail(lines, i.get("tail", DEFAULT_TAIL))

    def application_delete(self, i: Row) -> Row:
        view = self.application_view(self.application(i["applicationId"]))
        self._remove_application(i["applicationId"])
        return view

    # -- domain and deployment procedures ---------------------------------------------------

    def domain_create(self, i: Row) -> Row:
        # Every failure is a 400; an unknown parent fails at the database's foreign key.
        # Compose services and preview deployments are not modelled, so those ids never exist.
        for key, table in FOREIGN_KEYS.items():
            value = i.get(key)
            if value is not None and not (key == "applicationId" and value in self.applications):
                raise ApiError(
                    400,
                    'insert or update on table "domain" violates foreign key constraint '
                    f'"domain_{key}_{table}_{key}_fk"',
                )
        self.unique_config_key += 1
        row = {**DOMAIN_DEFAULTS, "middlewares": [], **i}
        row.update(domainId=nanoid(), uniqueConfigKey=self.unique_config_key, createdAt=now_iso())
        self.domains[row["domainId"]] = row
        return row

    def domain_by_application_id(self, i: Row) -> list[Row]:
        app = self.applications.get(i["applicationId"])
        if app is None:
            return []
        owner = _pick(app, "applicationId", "appName", "name")
        return [{**d, "application": owner} for d in self.domains_of(app["applicationId"])]

    def domain_delete(self, i: Row) -> Row:
        if i["domainId"] not in self.domains:
            raise ApiError(404, "Domain not found")
        return self.domains.pop(i["domainId"])

    def deployment_all(self, i: Row) -> list[Row]:
        return self.deployments_of(i["applicationId"])

    def deployment_read_logs(self, i: Row) -> str:
        """The tail of the build log as one string of lines (recording 97)."""
        if i["deploymentId"] not in self.deployments:
            raise ApiError(404, "Deployment not found")
        return log_tail(self.logs.get(i["deploymentId"], []), i.get("tail", DEFAULT_TAIL))

    # -- security (HTTP basic auth) procedures ----------------------------------------------

    def security_create(self, i: Row) -> bool:
        """Returns only `true`; every failure is wrapped as a 400 (recordings 74, 79, 82)."""
        if i["applicationId"] not in self.applications:
            raise ApiError(400, "Application not found")
        row: Row = {"securityId": nanoid(), "username": i["username"],
                    "password": i["password"], "createdAt": now_iso(),
                    "applicationId": i["applicationId"]}  # fmt: skip
        if self._username_taken(row["username"], row["applicationId"]):
            raise ApiError(400, _failed_insert(row))
        self.security[row["securityId"]] = row
        return True

    def security_one(self, i: Row) -> Row:
        return self._security(i["securityId"])

    def security_update(self, i: Row) -> None:
        """200 with an empty body (recording 77); the id stays, username and password change."""
        row = self._security(i["securityId"])
        if self._username_taken(i["username"], row["applicationId"], besides=row["securityId"]):
            raise ApiError(400, _failed_update(row["securityId"], i["username"]))
        row.update(username=i["username"], password=i["password"])

    def security_delete(self, i: Row) -> Row:
        """The deleted row, password included (recording 80)."""
        return self.security.pop(self._security(i["securityId"])["securityId"])

    def _security(self, security_id: str) -> Row:
        if security_id not in self.security:
            raise ApiError(404, "Security not found")
        return self.security[security_id]

    def _username_taken(self, username: str, app_id: str, besides: str | None = None) -> bool:
        """(username, applicationId) is unique in Dokploy's database."""
        return any(s["username"] == username and s["securityId"] != besides
                   for s in self.security_of(app_id))  # fmt: skip


def _command_failed(command: str, stderr: str) -> str:
    """execAsync's error text: the command (with its trailing space) and the CLI's stderr."""
    return f"Command execution failed: Command failed: {command}\n{stderr}\n"


def _failed_insert(row: Row) -> str:
    """The database's unique-violation text, as Dokploy passes it on (recording 79). The real
    server lists the password in clear; the fake writes REDACTED, as the recording does."""
    columns = ", ".join(f'"{key}"' for key in SECURITY_KEYS)
    params = ",".join(REDACTED if key == "password" else str(row[key]) for key in SECURITY_KEYS)
    return (
        f'Failed query: insert into "security" ({columns}) values ($1, $2, $3, $4, $5) '
        f"returning {columns}\nparams: {params}"
    )


def _failed_update(security_id: str, username: str) -> str:
    """The same for an update to a taken username (not recorded: drizzle's wording)."""
    columns = ", ".join(f'"{key}"' for key in SECURITY_KEYS)
    return (
        'Failed query: update "security" set "securityId" = $1, "username" = $2, '
        f'"password" = $3 where "security"."securityId" = $4 returning {columns}\n'
        f"params: {security_id},{username},{REDACTED},{security_id}"
    )
