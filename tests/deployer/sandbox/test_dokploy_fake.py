"""The Dokploy fake, over real HTTP on 127.0.0.1, held against the spec and the recordings.

Every well-formed request sent here first validates against the OpenAPI request schema.
Responses are compared with the real server's recorded exchanges: key sets (recursively) for
success bodies, status and whole body for the recorded error cases.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import jsonschema  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from deployer.sandbox.dokploy import FakeDokploy
from deployer.sandbox.dokploy_validation import coerce_query
from deployer.sandbox.faults import FailRule
from tests import specs

SPECS = specs.require("dokploy-openapi.json", "dokploy-recorded")
RECORDED = SPECS / "dokploy-recorded"
OPENAPI: dict[str, Any] = json.loads((SPECS / "dokploy-openapi.json").read_text())

KEY = "sandbox-key"
AUTH = {"x-api-key": KEY}
NANOID = re.compile(r"[A-Za-z0-9_-]{21}")
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
PROCEDURES = {
    "project.all", "project.one", "project.create", "project.remove", "environment.byProjectId",
    "application.create", "application.one", "application.update",
    "application.saveDockerProvider", "application.saveEnvironment", "application.deploy",
    "application.redeploy", "application.stop", "application.start", "application.delete",
    "domain.create", "domain.byApplicationId", "domain.delete", "deployment.all",
}  # fmt: skip

Client = TestClient[web.Request, web.Application]


def recorded(prefix: str) -> dict[str, Any]:
    """The recorded exchange whose file name starts with `prefix` (e.g. "04")."""
    (path,) = RECORDED.glob(f"{prefix}-*.json")
    exchange: dict[str, Any] = json.loads(path.read_text())
    return exchange


def recorded_body(prefix: str) -> Any:
    return recorded(prefix)["response"]["body"]


def request_schema(procedure: str) -> dict[str, Any]:
    item = OPENAPI["paths"]["/" + procedure]
    if "post" in item:
        schema: dict[str, Any] = item["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        return schema
    params = item["get"].get("parameters", [])
    return {
        "type": "object",
        "properties": {p["name"]: p["schema"] for p in params},
        "required": [p["name"] for p in params if p.get("required")],
    }


def assert_same_shape(actual: Any, expected: Any, where: str = "body") -> None:
    """Same keys at every level, same JSON types where both are non-null; values may differ."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        assert set(actual) == set(expected), f"{where}: keys differ: {set(actual) ^ set(expected)}"
        for key, value in expected.items():
            assert_same_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        if expected and actual:
            assert_same_shape(actual[0], expected[0], f"{where}[0]")
    elif expected is not None and actual is not None:
        assert type(actual) is type(expected), f"{where}: {actual!r} vs {expected!r}"


class Api:
    """Calls procedures the way a client of the real REST route does, spec-checked first."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def __call__(
        self,
        procedure: str,
        body: dict[str, Any] | None = None,
        *,
        invalid: bool = False,
        **params: str,
    ) -> tuple[int, Any]:
        """`invalid=True` marks a request that deliberately breaks the schema; query text
        counts as the number the schema asks for, as on the real REST route."""
        sent = body if body is not None else coerce_query(request_schema(procedure), params)
        assert jsonschema.Draft202012Validator(request_schema(procedure)).is_valid(sent) != invalid
        if body is not None:
            resp = await self.client.post(f"/api/{procedure}", json=body, headers=AUTH)
        else:
            resp = await self.client.get(f"/api/{procedure}", params=params, headers=AUTH)
        raw = await resp.read()
        return resp.status, json.loads(raw) if raw else None

    async def ok(self, procedure: str, body: dict[str, Any] | None = None, **params: str) -> Any:
        status, data = await self(procedure, body, **params)
        assert status == 200, (procedure, status, data)
        return data

    async def project(self, name: str = "demo-ai") -> tuple[str, str]:
        created = await self.ok("project.create", {"name": name, "description": None})
        return created["project"]["projectId"], created["environment"]["environmentId"]

    async def application(self, env_id: str, name: str = "web", image: str = "nginx") -> str:
        body = {"name": name, "appName": f"demo-{name}", "environmentId": env_id}
        app_id: str = (await self.ok("application.create", body))["applicationId"]
        provider = {"dockerImage": image, "username": None, "password": None, "registryUrl": None}
        assert await self.ok(
            "application.saveDockerProvider", {"applicationId": app_id, **provider}
        )
        return app_id

    async def domain(self, app_id: str, host: str) -> dict[str, Any]:
        body = {"host": host, "applicationId": app_id, "domainType": "application", "port": 80}
        domain: dict[str, Any] = await self.ok("domain.create", body)
        return domain

    async def deployments(self, app_id: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.ok("deployment.all", applicationId=app_id)
        return rows


async def eventually(check: Callable[[], Awaitable[Any]]) -> Any:
    """Poll `check` (an HTTP call, like a real client's poll) until it returns something truthy;
    the fake's deploys take milliseconds, so 2 s is a generous bound."""
    for _ in range(400):
        if result := await check():
            return result
        await asyncio.sleep(0.005)
    pytest.fail("condition not reached within about 2 s")


@pytest.fixture
def fake() -> FakeDokploy:
    return FakeDokploy(api_keys=[KEY], deploy_delay=0.02)


@pytest.fixture
async def client(fake: FakeDokploy) -> AsyncIterator[Client]:
    async with TestClient(TestServer(fake.app(), host="127.0.0.1")) as client:
        yield client


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


# -- contract: the recorded main flow, shape by shape -------------------------------------------


async def test_main_flow_matches_the_recorded_shapes(fake: FakeDokploy, api: Api) -> None:
    assert await api.ok("project.all") == recorded_body("01")
    created = await api.ok("project.create", recorded("02")["request"]["body"])
    assert_same_shape(created, recorded_body("02"))
    assert created["environment"]["isDefault"] is True
    assert created["environment"]["name"] == "production"
    project_id = created["project"]["projectId"]
    env_id = created["environment"]["environmentId"]
    assert_same_shape(await api.ok("environment.byProjectId", projectId=project_id),
                      recorded_body("03"))  # fmt: skip
    assert_same_shape(await api.ok("project.one", projectId=project_id), recorded_body("35"))

    body = {**recorded("04")["request"]["body"], "environmentId": env_id}
    app = await api.ok("application.create", body)
    assert_same_shape(app, recorded_body("04"))
    assert len(app) == 101
    app_id = app["applicationId"]
    provider = {**recorded("05")["request"]["body"], "applicationId": app_id}
    assert await api.ok("application.saveDockerProvider", provider) is True
    one = await api.ok("application.one", applicationId=app_id)
    assert_same_shape(one, recorded_body("06"))
    assert (one["sourceType"], one["dockerImage"]) == ("docker", "nginx:alpine")

    domain = await api.ok("domain.create", {**recorded("07")["request"]["body"],
                                            "applicationId": app_id})  # fmt: skip
    assert_same_shape(domain, recorded_body("07"))
    assert domain["path"] == "/"
    listed = await api.ok("domain.byApplicationId", applicationId=app_id)
    assert_same_shape(listed, recorded_body("08"))
    assert listed[0]["application"] == {k: app[k] for k in ("applicationId", "appName", "name")}

    assert await api("application.deploy", {"applicationId": app_id}) == (200, None)
    rows = await eventually(lambda: _finished(api, app_id))
    assert_same_shape(rows, recorded_body("10"))
    assert_same_shape(await api.ok("application.one", applicationId=app_id), recorded_body("13"))
    assert_same_shape(await api.ok("project.all"), recorded_body("14"))

    update = {"applicationId": app_id, "name": "web-renamed", "description": "updated"}
    assert await api.ok("application.update", update) is True
    env = {"applicationId": app_id, "env": "A=1\nB=2", "buildArgs": None, "buildSecrets": None,
           "createEnvFile": True}  # fmt: skip
    assert await api.ok("application.saveEnvironment", env) is True
    one = await api.ok("application.one", applicationId=app_id)
    assert (one["name"], one["env"], one["appName"]) == ("web-renamed", "A=1\nB=2", app["appName"])

    assert await api("application.redeploy", {"applicationId": app_id}) == (200, None)
    rows = await eventually(lambda: _finished(api, app_id, count=2))
    assert rows[0]["title"] == "Rebuild deployment"
    stopped = await api.ok("application.stop", {"applicationId": app_id})
    assert_same_shape(stopped, recorded_body("49"))
    assert stopped["applicationStatus"] == "done"  # the pre-change object
    one = await api.ok("application.one", applicationId=app_id)
    assert one["applicationStatus"] == "idle"
    started = await api.ok("application.start", {"applicationId": app_id})
    assert_same_shape(started, recorded_body("49"))
    assert started["applicationStatus"] == "idle"

    deleted = await api.ok("domain.delete", {"domainId": domain["domainId"]})
    assert_same_shape(deleted, recorded_body("27"))
    await api.domain(app_id, "www.demo.ai.example.test")
    gone = await api.ok("application.delete", {"applicationId": app_id})
    assert_same_shape(gone, recorded_body("25"))
    assert await api.ok("domain.byApplicationId", applicationId=app_id) == []
    removed = await api.ok("project.remove", {"projectId": project_id})
    assert_same_shape(removed, recorded_body("28"))
    assert await api.ok("project.all") == []
    assert {procedure for _, procedure in fake.calls} == PROCEDURES


async def _finished(api: Api, app_id: str, count: int = 1) -> list[dict[str, Any]] | None:
    rows = await api.deployments(app_id)
    done = len(rows) >= count and all(row["status"] in ("done", "error") for row in rows)
    return rows if done else None


def app_name_of(fake: FakeDokploy, app_id: str) -> str:
    """The appName Dokploy gave (with its random suffix)."""
    name: str = fake.store.applications[app_id]["appName"]
    return name


async def test_ids_and_timestamps_look_like_dokploys(api: Api) -> None:
    project_id, env_id = await api.project()
    app = await api.ok("application.create", {"name": "web", "environmentId": env_id})
    for value in (project_id, env_id, app["applicationId"], app["refreshToken"]):
        assert NANOID.fullmatch(value)
    assert ISO_MS.fullmatch(app["createdAt"])


# -- contract: recorded exchanges replayed, ids mapped -------------------------------------------

# Free text that Dokploy stores and returns as sent (recordings 87, 100).
STORED_AS_SENT = ("memoryLimit", "memoryReservation", "cpuLimit", "cpuReservation", "env")

# The third session's host ran a `docker` stand-in that printed this and failed (index.md).
STAND_IN = "fake docker (audit stand-in): no Docker engine on this machine"
# Fields whose recorded value names a row of the recording's own database.
ID_FIELDS = {"projectId", "environmentId", "applicationId", "domainId", "deploymentId",
             "securityId", "appName"}  # fmt: skip
# A failed insert lists the row's generated id and timestamp (recording 79).
INSERT_PARAMS = re.compile(r"params: [\w-]{21},(.*),\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z,")


class Replayer:
    """Sends recorded requests to the fake and reads the answers against the recorded ones.

    Ids the fake generates differ from the recording's: each answer is walked beside the
    recorded one to learn which fake id stands for which recorded id, and later requests and
    expected bodies are rewritten with what was learnt."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.ids: dict[str, str] = {}

    async def replay(self, prefix: str) -> tuple[Any, Any]:
        """Send recording `prefix`'s request; check status, reason and content type; return
        (the body, the recorded body rewritten with the ids learnt so far)."""
        exchange = recorded(prefix)
        request, expected = exchange["request"], exchange["response"]
        headers = {k: v for k, v in request["headers"].items() if k.lower() != "x-api-key"}
        if "x-api-key" in request["headers"]:
            valid = exchange["api_key_used"].startswith("the test API key")
            headers["x-api-key"] = KEY if valid else "some-random-unknown-key"
        body = request["body"]
        text = body if request["body_is_raw_text"] else (
            None if body is None else json.dumps(body))  # fmt: skip
        # send exactly the recorded headers: aiohttp must not add a Content-Type of its own
        resp = await self.client.request(
            request["method"], self._mapped(request["path"]), headers=headers,
            data=None if text is None else self._mapped(text).encode(),
            skip_auto_headers=["Content-Type"],
        )  # fmt: skip
        raw = await resp.read()
        assert (resp.status, resp.reason) == (expected["status"], expected["reason"]), raw
        assert resp.headers.get("Content-Type") == expected["headers"].get("Content-Type")
        actual = json.loads(raw) if expected["body_is_json"] else raw.decode()
        self._learn(expected["body"], actual)
        return actual, json.loads(self._mapped(json.dumps(expected["body"])))

    async def check(self, prefix: str) -> Any:
        """Replay, then hold the answer to the recording: the whole body for an error or a
        scalar (true, "", a log), the shape for a row or a list of rows."""
        actual, expected = await self.replay(prefix)
        if isinstance(expected, (dict, list)) and recorded(prefix)["response"]["status"] == 200:
            assert_same_shape(actual, expected, prefix)
        else:
            assert _masked(actual) == _masked(expected), prefix
        return actual

    def _mapped(self, text: str) -> str:
        for recorded_id, fake_id in self.ids.items():
            text = text.replace(recorded_id, fake_id)
        return text

    def _learn(self, expected: Any, actual: Any) -> None:
        if isinstance(expected, dict) and isinstance(actual, dict):
            for key, value in expected.items():
                if key in ID_FIELDS and isinstance(value, str) and isinstance(actual.get(key), str):
                    self.ids.setdefault(value, actual[key])
                self._learn(value, actual.get(key))
        elif isinstance(expected, list) and isinstance(actual, list):
            for pair in zip(expected, actual, strict=False):
                self._learn(*pair)


def _masked(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return {**body, "message": INSERT_PARAMS.sub(r"params: <id>,\1,<createdAt>,",
                                                     body["message"])}  # fmt: skip
    return body


ERROR_CASES = sorted(
    p.name.split("-")[0]
    for p in RECORDED.glob("*.json")
    if "error" in p.name or "unknown-id" in p.name
)
# What must exist before an error can be replayed: recorded requests to send first.
PRELUDES = {
    "79": ("70", "71", "74", "75", "77"),  # a security row whose username the create repeats
    "90": ("70", "71"),
    "91": ("70", "71"),
    "93": ("70", "71"),
    "98": ("70", "71"),
}
# A real docker CLI prefixes the service name (51); the fake prints one fixed text, as the
# third session's stand-in did, so only the third session's no-docker answers are replayed.
NOT_REPLAYED = {"51"}


@pytest.mark.parametrize("prefix", [p for p in ERROR_CASES if p not in NOT_REPLAYED])
async def test_recorded_error_case(prefix: str) -> None:
    no_docker = "no-docker" in next(RECORDED.glob(f"{prefix}-*.json")).name
    fake = FakeDokploy(api_keys=[KEY], docker_error=STAND_IN if no_docker else None)
    async with TestClient(TestServer(fake.app(), host="127.0.0.1")) as client:
        replayer = Replayer(client)
        for step in PRELUDES.get(prefix, ()):
            await replayer.check(step)
        await replayer.check(prefix)


async def test_third_session_replays_on_a_host_without_docker() -> None:
    """Recordings 70-110 in order, on a fake host without a Docker engine like the recorded
    one: every status, error body, scalar body and log; the shape of every row."""
    fake = FakeDokploy(api_keys=[KEY], deploy_delay=0.0, docker_error=STAND_IN)
    async with TestClient(TestServer(fake.app(), host="127.0.0.1")) as client:
        replayer = Replayer(client)
        for prefix in (f"{n:02d}" for n in range(70, 111)):
            if prefix == "96":  # the recorder polled until both deployments had ended
                await fake.settled()
            actual = await replayer.check(prefix)
            if prefix in ("87", "100"):
                sent = recorded_body(prefix)
                for key in STORED_AS_SENT:
                    assert actual[key] == sent[key], key
        assert fake.snapshot()["projects"] == []


async def test_unknown_procedure_and_health(client: Client) -> None:
    resp = await client.get("/api/health")  # no key needed
    assert (resp.status, await resp.json()) == (200, {"ok": True})
    resp = await client.get("/api/nothing.here", headers=AUTH)
    assert resp.status == 404
    assert (await resp.json())["message"] == "Not found"
    resp = await client.post("/api/project.all", json={}, headers=AUTH)  # a query, POSTed
    assert resp.status == 404


async def test_validation_runs_before_lookup_and_drops_unknown_keys(api: Api) -> None:
    _, env_id = await api.project()
    body = {"name": "web", "environmentId": env_id, "dockerImage": "nginx", "junk": 1}
    app = await api.ok("application.create", body)
    assert app["dockerImage"] is None and "junk" not in app
    status, error = await api("application.saveEnvironment", {"applicationId": "x"}, invalid=True)
    assert status == 400  # not 404: validation comes first
    assert error["data"]["zodError"]["fieldErrors"]["env"] == [
        "Invalid input: expected nonoptional, received undefined"
    ]
    assert {tuple(i["path"]) for i in error["issues"]} == {
        ("env",), ("buildArgs",), ("buildSecrets",), ("createEnvFile",)}  # fmt: skip
    body = {"host": "x.example.test", "certificateType": "no"}
    status, error = await api("domain.create", body, invalid=True)
    assert status == 400
    assert error["issues"][0]["message"] == (
        'Invalid option: expected one of "letsencrypt"|"none"|"custom"'
    )
    status, error = await api("domain.create", {"host": "x.example.test", "applicationId": "nope"})
    assert status == 400 and "foreign key constraint" in error["message"]


# -- lifecycle -----------------------------------------------------------------------------------


async def test_deploy_shows_running_then_done_and_goes_live() -> None:
    fake = FakeDokploy(api_keys=[KEY], deploy_delay=0.1)
    async with TestClient(TestServer(fake.app(), host="127.0.0.1")) as client:
        api = Api(client)
        _, env_id = await api.project()
        app_id = await api.application(env_id)
        await api.domain(app_id, "demo.ai.example.test")
        assert await api.deployments(app_id) == []
        await api.ok("application.deploy", {"applicationId": app_id, "title": "mine"})
        (row,) = await eventually(lambda: api.deployments(app_id))
        assert (row["status"], row["title"], row["finishedAt"]) == ("running", "mine", None)
        one = await api.ok("application.one", applicationId=app_id)
        assert one["applicationStatus"] == "running"
        assert fake.live_hosts() == {}
        (row,) = await eventually(lambda: _finished(api, app_id))
        assert row["status"] == "done" and ISO_MS.fullmatch(row["finishedAt"])
        one = await api.ok("application.one", applicationId=app_id)
        assert one["applicationStatus"] == "done"
        assert fake.live_hosts() == {"demo.ai.example.test": 80}
        await api.ok("application.stop", {"applicationId": app_id})
        assert fake.live_hosts() == {}


async def test_fail_deploys_ends_in_error(fake: FakeDokploy, api: Api) -> None:
    _, env_id = await api.project()
    app_id = await api.application(env_id, name="bob")
    await api.domain(app_id, "bob.ai.example.test")
    fake.fail_deploys.add("bob")
    await api.ok("application.deploy", {"applicationId": app_id})
    (row,) = await eventually(lambda: _finished(api, app_id))
    assert (row["status"], row["errorMessage"]) == ("error", None)
    one = await api.ok("application.one", applicationId=app_id)
    assert one["applicationStatus"] == "error"
    assert fake.live_hosts() == {}


async def test_deployments_newest_first_and_at_most_ten(api: Api) -> None:
    _, env_id = await api.project()
    app_id = await api.application(env_id)
    for n in range(12):
        await api.ok("application.deploy", {"applicationId": app_id, "title": f"d{n}"})
    rows = await eventually(lambda: _finished(api, app_id, count=10))
    assert len(rows) == 10
    assert [r["createdAt"] for r in rows] == sorted((r["createdAt"] for r in rows), reverse=True)
    assert rows[0]["title"] == "d11"


async def test_project_remove_cascades(fake: FakeDokploy, api: Api) -> None:
    project_id, env_id = await api.project()
    apps = [await api.application(env_id, name) for name in ("web", "web2")]
    await api.domain(apps[0], "demo.ai.example.test")
    await api.ok("application.deploy", {"applicationId": apps[0]})
    await eventually(lambda: _finished(api, apps[0]))
    assert await api.ok("project.remove", {"projectId": project_id})
    for app_id in apps:
        status, error = await api("application.one", applicationId=app_id)
        assert (status, error["message"]) == (404, "Application not found")
        assert await api.deployments(app_id) == []
        assert await api.ok("domain.byApplicationId", applicationId=app_id) == []
    assert await api.ok("environment.byProjectId", projectId=project_id) == []
    assert fake.snapshot() == {"projects": [], "applications": [], "domains": [], "deployments": 0}
    status, _ = await api("project.remove", {"projectId": project_id})
    assert status == 404


async def test_application_delete_cascades_domains(fake: FakeDokploy, api: Api) -> None:
    _, env_id = await api.project()
    keep, drop = await api.application(env_id, "keep"), await api.application(env_id, "drop")
    await api.domain(keep, "keep.ai.example.test")
    dropped = await api.domain(drop, "drop.ai.example.test")
    gone = await api.ok("application.delete", {"applicationId": drop})
    assert [d["domainId"] for d in gone["domains"]] == [dropped["domainId"]]
    assert [d["host"] for d in fake.snapshot()["domains"]] == ["keep.ai.example.test"]
    status, error = await api("domain.delete", {"domainId": dropped["domainId"]})
    assert (status, error["message"]) == (404, "Domain not found")


async def test_app_name_always_gets_a_fresh_suffix(api: Api) -> None:
    _, env_id = await api.project()
    body = {"name": "web", "appName": "Dup-App", "environmentId": env_id}
    first = (await api.ok("application.create", body))["appName"]
    second = (await api.ok("application.create", body))["appName"]  # no 409
    assert re.fullmatch(r"dup-app-[a-z0-9]{6}", first)
    assert re.fullmatch(r"dup-app-[a-z0-9]{6}", second) and first != second
    generated = await api.ok("application.create", {"name": "x", "environmentId": env_id})
    assert re.fullmatch(r"app-[a-z]+-[a-z]+-[a-z]+-[a-z1-9]{6}", generated["appName"])
    status, error = await api("application.create", {**body, "environmentId": "x" * 21})
    assert (status, error["message"]) == (404, "Environment not found")


async def test_rate_limit_is_two_units_per_call_and_answers_401() -> None:
    fake = FakeDokploy(api_keys=[KEY], rate_limit=(4, 60.0))
    async with TestClient(TestServer(fake.app(), host="127.0.0.1")) as client:
        statuses = []
        for _ in range(4):
            resp = await client.get("/api/project.all", headers=AUTH)
            statuses.append(resp.status)
            last = (resp.headers["Content-Type"], await resp.json())
        assert statuses == [200, 200, 401, 401]  # as recorded in supplement-rate-limit
        assert last == ("application/json; charset=utf-8", {"message": "Unauthorized"})
        assert fake.calls == [("GET", "project.all")] * 2  # refused calls never pass the gate


async def test_failed_deploy_log_names_the_failed_step(fake: FakeDokploy, api: Api) -> None:
    _, env_id = await api.project()
    app_id = await api.application(env_id, name="bob", image="nginx:nope")
    fake.fail_deploys.add("bob")
    await api.ok("application.deploy", {"applicationId": app_id})
    await fake.settled()
    (row,) = await api.deployments(app_id)
    log = await api.ok("deployment.readLogs", deploymentId=row["deploymentId"], tail="50")
    assert log.splitlines() == [
        "Initializing deployment",
        "Pulling nginx:nope",
        "Error response from daemon: manifest for nginx:nope not found: manifest unknown",
        "❌ Pulling image failed",
        "",
        "Error occurred ❌, check the logs for details.",
    ]
    assert await api.ok("deployment.readLogs", deploymentId=row["deploymentId"], tail="1") == (
        "Error occurred ❌, check the logs for details.\n"
    )
    status, error = await api("application.readLogs", applicationId=app_id)
    assert (status, error["message"]) == (
        500,
        f"No container or service found for: {app_name_of(fake, app_id)}",
    )


async def test_logs_of_a_running_application(fake: FakeDokploy, api: Api) -> None:
    _, env_id = await api.project()
    app_id = await api.application(env_id, image="nginx:alpine")
    status, _ = await api("application.readLogs", applicationId=app_id, tail="10")
    assert status == 500  # nothing runs yet: a 500, not a 404 (recording 98)
    await api.ok("application.deploy", {"applicationId": app_id})
    await fake.settled()
    (row,) = await api.deployments(app_id)
    log = await api.ok("deployment.readLogs", deploymentId=row["deploymentId"])
    assert log.startswith("Initializing deployment\nPulling nginx:alpine\n")
    assert log.endswith("Docker Deployed: ✅\n")
    lines = await api.ok("application.readLogs", applicationId=app_id, tail="1")
    assert isinstance(lines, str) and lines.count("\n") == 1
    await api.ok("application.stop", {"applicationId": app_id})
    status, _ = await api("application.readLogs", applicationId=app_id)
    assert status == 500
    status, error = await api("deployment.readLogs", deploymentId="doesNotExist000000000")
    assert (status, error["message"]) == (404, "Deployment not found")
    status, error = await api("deployment.readLogs", deploymentId=row["deploymentId"], tail="x",
                              invalid=True)  # fmt: skip
    assert (status, error["issues"][0]["code"]) == (400, "invalid_type")


async def test_reload_and_cancel_on_a_working_engine(fake: FakeDokploy, api: Api) -> None:
    _, env_id = await api.project()
    app_id = await api.application(env_id)
    await api.domain(app_id, "demo.ai.example.test")
    await api.ok("application.deploy", {"applicationId": app_id})
    await fake.settled()
    await api.ok("application.stop", {"applicationId": app_id})
    assert fake.live_hosts() == {}
    body = {"applicationId": app_id, "appName": app_name_of(fake, app_id)}
    assert await api.ok("application.reload", body) is True
    assert fake.live_hosts() == {"demo.ai.example.test": 80}
    assert (await api.ok("application.one", applicationId=app_id))["applicationStatus"] == "done"
    status, error = await api("application.cancelDeployment", {"applicationId": app_id})
    assert (status, error["message"]) == (
        400,
        "Deployment cancellation only available in cloud version",
    )
    status, error = await api("application.cancelDeployment", {"applicationId": "x" * 21})
    assert (status, error["message"]) == (404, "Application not found")


async def test_basic_auth_rows_belong_to_their_application(fake: FakeDokploy, api: Api) -> None:
    _, env_id = await api.project()
    app_id = await api.application(env_id)
    user = {"applicationId": app_id, "username": "alice", "password": "pw-alice-1"}
    assert await api.ok("security.create", user) is True
    (row,) = (await api.ok("application.one", applicationId=app_id))["security"]
    assert_same_shape(row, recorded_body("76"))
    assert (row["username"], row["password"]) == ("alice", "pw-alice-1")  # in clear, as real
    assert await api.ok("security.one", securityId=row["securityId"]) == row
    change = {"securityId": row["securityId"], "username": "admin", "password": "pw-admin-2"}
    assert await api("security.update", change) == (200, None)
    status, error = await api("security.create", {**user, "username": "admin"})
    assert (status, error["code"]) == (400, "BAD_REQUEST")
    assert error["message"].startswith('Failed query: insert into "security"')
    assert ",admin,pw-alice-1," in error["message"]  # the password echoed, as real (79)
    assert await api.ok("security.create", user) is True  # "alice" is free again
    second = (await api.ok("application.one", applicationId=app_id))["security"][1]
    status, error = await api("security.update", {**change, "securityId": second["securityId"]})
    assert (status, error["code"]) == (400, "BAD_REQUEST")
    assert ",admin,pw-admin-2," in error["message"]
    deleted = await api.ok("security.delete", {"securityId": row["securityId"]})
    assert (deleted["username"], deleted["password"]) == ("admin", "pw-admin-2")
    status, _ = await api("security.one", securityId=row["securityId"])
    assert status == 404
    await api.ok("application.delete", {"applicationId": app_id})  # cascades to its rows
    status, _ = await api("security.one", securityId=second["securityId"])
    assert status == 404


async def test_limits_are_strings_or_null(api: Api) -> None:
    _, env_id = await api.project()
    app_id = await api.application(env_id)
    numbers = {"applicationId": app_id, "cpuLimit": 1000000000, "memoryLimit": 536870912}
    status, error = await api("application.update", numbers, invalid=True)
    assert status == 400
    assert [(i["path"], i["code"]) for i in error["issues"]] == [
        (["memoryLimit"], "invalid_type"), (["cpuLimit"], "invalid_type")]  # fmt: skip
    texts = {"applicationId": app_id, "cpuLimit": "1000000000", "memoryLimit": "512m"}
    assert await api.ok("application.update", texts) is True
    one = await api.ok("application.one", applicationId=app_id)
    assert (one["cpuLimit"], one["memoryLimit"], one["cpuReservation"]) == (
        "1000000000",
        "512m",
        None,
    )
    assert await api.ok("application.update", {"applicationId": app_id, "cpuLimit": None})
    assert (await api.ok("application.one", applicationId=app_id))["cpuLimit"] is None


async def test_deploy_parses_and_expands_the_stored_env(fake: FakeDokploy, api: Api) -> None:
    created = await api.ok("project.create", {"name": "p", "env": "REGION=eu # where"})
    env_id = created["environment"]["environmentId"]
    app_id = await api.application(env_id)
    text = recorded("99")["request"]["body"]["env"] + "\nG=${{project.REGION}}-${{A}}"
    env = {"applicationId": app_id, "env": text, "buildArgs": None, "buildSecrets": None,
           "createEnvFile": True}  # fmt: skip
    assert await api.ok("application.saveEnvironment", env) is True
    assert fake.container_env(app_id) is None  # parsed at deploy time only
    await api.ok("application.deploy", {"applicationId": app_id})
    await fake.settled()
    expected = {"A": "abc #def", "B": "plain value", "C": "single", "D": "line1\nline2",
                "E": "x\ny", "F": "value", "G": "eu-abc #def"}  # fmt: skip
    assert fake.container_env(app_id) == expected
    assert (await api.ok("application.one", applicationId=app_id))["env"] == text  # as sent
    (app,) = fake.snapshot()["applications"]
    assert app["containerEnv"] == expected


async def test_unknown_reference_fails_the_deploy(fake: FakeDokploy, api: Api) -> None:
    _, env_id = await api.project()
    app_id = await api.application(env_id)
    await api.ok("application.deploy", {"applicationId": app_id})
    await fake.settled()
    env = {"applicationId": app_id, "env": "A=${{environment.NOPE}}", "buildArgs": None,
           "buildSecrets": None, "createEnvFile": True}  # fmt: skip
    await api.ok("application.saveEnvironment", env)
    await api.ok("application.redeploy", {"applicationId": app_id})
    await fake.settled()
    rows = await api.deployments(app_id)
    assert rows[0]["status"] == "error" and rows[0]["errorMessage"] is None
    log = await api.ok("deployment.readLogs", deploymentId=rows[0]["deploymentId"])
    assert "Invalid environment variable: environment.NOPE\n" in log
    assert fake.container_env(app_id) == {}  # still the first deployment's container


# -- faults --------------------------------------------------------------------------------------


async def test_latency(fake: FakeDokploy, client: Client) -> None:
    fake.faults.latency = 0.1
    started = time.monotonic()
    resp = await client.get("/api/project.all", headers=AUTH)
    assert resp.status == 200 and time.monotonic() - started >= 0.1


async def test_error_rate_gives_5xx_in_dokploys_error_shape(fake: FakeDokploy, api: Api) -> None:
    fake.faults.error_rate = 1.0
    status, body = await api("project.all")
    assert status == 503
    assert body == {"message": "injected 5xx", "code": "INTERNAL_SERVER_ERROR",
                    "data": {"code": "INTERNAL_SERVER_ERROR", "httpStatus": 503,
                             "zodError": None}}  # fmt: skip


async def test_burst_429_then_normal(fake: FakeDokploy, client: Client) -> None:
    fake.faults.burst_429, fake.faults.retry_after = 2, 0.05
    for _ in range(2):
        resp = await client.get("/api/project.all", headers=AUTH)
        assert (resp.status, resp.headers["Retry-After"]) == (429, "0.05")
        assert (await resp.json())["code"] == "TOO_MANY_REQUESTS"
    assert (await client.get("/api/project.all", headers=AUTH)).status == 200


async def test_fail_ops_hits_one_procedure_only(fake: FakeDokploy, api: Api) -> None:
    fake.faults.fail_ops["project.create"] = FailRule(status=400, times=1, message="boom")
    status, body = await api("project.create", {"name": "p"})
    assert (status, body["code"], body["message"]) == (400, "BAD_REQUEST", "boom")
    assert await api.ok("project.all") == []
    await api.project()  # the rule was used up
    assert len(await api.ok("project.all")) == 1


async def test_lost_response_still_creates_the_project(fake: FakeDokploy, api: Api) -> None:
    fake.faults.lose_response_ops["project.create"] = 1
    with pytest.raises(aiohttp.ClientError):
        await api("project.create", {"name": "lost"})
    assert [p["name"] for p in await api.ok("project.all")] == ["lost"]


async def test_hang_makes_the_client_time_out(fake: FakeDokploy, client: Client) -> None:
    fake.faults.hang_ops["project.all"] = 1
    with pytest.raises(TimeoutError):
        await client.get("/api/project.all", headers=AUTH,
                         timeout=aiohttp.ClientTimeout(total=0.2))  # fmt: skip
    assert (await client.get("/api/project.all", headers=AUTH)).status == 200


async def test_control_endpoints(fake: FakeDokploy, client: Client, api: Api) -> None:
    rule = {"fail_ops": {"project.create": {"status": 500, "times": 1}}}
    resp = await client.post("/_sandbox/faults", json=rule)
    assert (await resp.json())["fail_ops"]["project.create"]["status"] == 500
    status, body = await api("project.create", {"name": "p"})
    assert (status, body["code"]) == (500, "INTERNAL_SERVER_ERROR")
    await api.project("kept")
    state = await (await client.get("/_sandbox/state")).json()
    assert [p["name"] for p in state["projects"]] == ["kept"]
    fake.faults.latency = 0.5
    assert (await client.post("/_sandbox/reset")).status == 200
    assert fake.faults.latency == 0 and fake.calls == []
    state = await (await client.get("/_sandbox/state")).json()
    assert state == {"projects": [], "applications": [], "domains": [], "deployments": 0}
