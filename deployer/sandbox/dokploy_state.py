"""The fake Dokploy's procedures: `Store`, the tables with a method per tRPC procedure.

What each procedure answers and refuses copies the recorded exchanges of a real v0.30.2
server (`../shared/specs/dokploy-recorded/`). The rows, their shapes and defaults are in
`dokploy_tables.py`; HTTP and the deploy queue live in `dokploy.py`, validation in
`dokploy_validation.py`.
"""

from __future__ import annotations

from deployer.sandbox.dokploy_host import log_tail
from deployer.sandbox.dokploy_tables import (
    APP_DEFAULTS,
    APP_KEYS,
    DOMAIN_DEFAULTS,
    FOREIGN_KEYS,
    SECURITY_KEYS,
    ApiError,
    Row,
    Tables,
    generate_app_name,
    nanoid,
    now_iso,
    pick,
)

DEFAULT_TAIL = 100  # the readLogs procedures' default `tail`


class Store(Tables):
    """The rows of one fake server and the procedures on them.

    The public methods named `<router>_<procedure>` implement those procedures; each takes
    the validated input and returns the response body, or raises `ApiError`.
    """

    # -- project and environment procedures -------------------------------------------------

    def project_all(self, _: Row) -> list[Row]:
        """Newest project first, with a slim environment and service tree (recording 14)."""
        listing = []
        for project in reversed(self.projects.values()):
            envs = []
            for env in self._envs_of(project["projectId"]):
                slim = pick(env, "name", "environmentId", "isDefault")
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
            head = pick(env, "name", "description", "environmentId", "isDefault")
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
        row.update(pick(i, "name", "environmentId"))
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
        app.update(pick(i, "dockerImage", "username", "password", "registryUrl"))
        app.update(sourceType="docker", applicationStatus="idle")
        return True

    def application_save_environment(self, i: Row) -> bool:
        app = self.application(i["applicationId"])
        app.update(pick(i, "env", "buildArgs", "buildSecrets", "createEnvFile"))
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
            *self.output.get(newest["deploymentId"], []),
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
        owner = pick(app, "applicationId", "appName", "name")
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
            raise ApiError(400, _failed_update(row["securityId"], i["username"], i["password"]))
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
    """The database's unique-violation text, as Dokploy passes it on (recording 79): with the
    password sent, in clear, as the real server does (the recording redacts it), so that a
    client that shows this text is caught showing a password."""
    columns = ", ".join(f'"{key}"' for key in SECURITY_KEYS)
    params = ",".join(str(row[key]) for key in SECURITY_KEYS)
    return (
        f'Failed query: insert into "security" ({columns}) values ($1, $2, $3, $4, $5) '
        f"returning {columns}\nparams: {params}"
    )


def _failed_update(security_id: str, username: str, password: str) -> str:
    """The same for an update to a taken username (not recorded: drizzle's wording)."""
    columns = ", ".join(f'"{key}"' for key in SECURITY_KEYS)
    return (
        'Failed query: update "security" set "securityId" = $1, "username" = $2, '
        f'"password" = $3 where "security"."securityId" = $4 returning {columns}\n'
        f"params: {security_id},{username},{password},{security_id}"
    )
