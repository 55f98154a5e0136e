"""The Hetzner Cloud DNS fake, over real HTTP on 127.0.0.1.

Every request body sent here validates against the subset OpenAPI request schema, and every
response body against the spec's schema for its status (2xx, 4xx or 5xx).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jsonschema  # type: ignore[import-untyped]
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy
from yarl import URL

from deployer.sandbox.faults import FailRule
from deployer.sandbox.hetzner import FakeHetznerDns
from tests import specs

SPEC_PATH = (
    specs.require("hetzner-cloud-dns-subset.spec.json") / "hetzner-cloud-dns-subset.spec.json"
)
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())

TOKEN = "sandbox-token"
ZONE = "example.test"
ZONES = "/zones"
ZONE_ = "/zones/{id_or_name}"
RRSETS = "/zones/{id_or_name}/rrsets"
RRSET = "/zones/{id_or_name}/rrsets/{rr_name}/{rr_type}"
ZONE_ACTIONS = "/zones/{id_or_name}/actions"
SET, ADD, REMOVE, TTL = (
    RRSET + "/actions/" + a for a in ("set_records", "add_records", "remove_records", "change_ttl")
)
A1 = [{"value": "203.0.113.10"}]
A2 = [{"value": "203.0.113.20"}]

Client = TestClient[web.Request, web.Application]


def _schema(path: str, method: str, status: int | None) -> dict[str, Any]:
    op = SPEC["paths"][path][method.lower()]
    if status is None:
        schema: dict[str, Any] = op["requestBody"]["content"]["application/json"]["schema"]
        return schema
    responses = op["responses"]
    key = str(status) if str(status) in responses else f"{str(status)[0]}xx"
    return dict(responses[key]["content"]["application/json"]["schema"])


def spec_accepts(path: str, method: str, body: Any) -> bool:
    validator = jsonschema.Draft202012Validator(_schema(path, method, None))
    return bool(validator.is_valid(body))


@dataclass
class Reply:
    status: int
    body: Any
    headers: CIMultiDictProxy[str]


class Api:
    """Talks to the fake and checks every exchange against the subset spec."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call(
        self,
        method: str,
        template: str,
        body: Any = None,
        *,
        params: Any = None,
        token: str | None = TOKEN,
        raw_path: str | None = None,
        valid_body: bool = True,
        **path: str,
    ) -> Reply:
        if body is not None and valid_body:
            jsonschema.validate(body, _schema(template, method, None))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if raw_path is not None:  # sent byte for byte, e.g. with %2A kept encoded
            url = URL(f"http://127.0.0.1:{self.client.port}/v1{raw_path}", encoded=True)
        else:
            url = self.client.make_url("/v1" + template.format(**{"id_or_name": ZONE, **path}))
        async with self.client.session.request(
            method, url, json=body, params=params, headers=headers
        ) as resp:
            data = await resp.json()
            jsonschema.validate(data, _schema(template, method, resp.status))
            for header in (
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "X-Correlation-Id",
            ):
                assert header in resp.headers, header
            return Reply(resp.status, data, resp.headers)

    async def create(self, name: str, records: list[dict[str, str]] = A1, **kw: Any) -> Reply:
        return await self.call(
            "POST", RRSETS, {"name": name, "type": "A", "records": records, **kw}
        )

    async def poll(self, action_id: int, via: str = "/actions/{id}") -> dict[str, Any]:
        reply = await self.call("GET", via, id=str(action_id))
        assert reply.status == 200
        action: dict[str, Any] = reply.body["action"]
        return action


Start = Callable[..., Awaitable[tuple[FakeHetznerDns, Api]]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    clients: list[Client] = []

    async def _start(**kwargs: Any) -> tuple[FakeHetznerDns, Api]:
        fake = FakeHetznerDns(**kwargs)
        client: Client = TestClient(TestServer(fake.app(), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return fake, Api(client)

    yield _start
    for client in clients:
        await client.close()


def entry(fake: FakeHetznerDns, name: str, rr_type: str = "A") -> dict[str, Any]:
    """The snapshot entry of one RRSet."""
    entries: list[dict[str, Any]] = fake.snapshot()["zones"][ZONE]
    found = [e for e in entries if (e["name"], e["type"]) == (name, rr_type)]
    assert len(found) == 1, found
    return found[0]


def field_names(reply: Reply) -> set[str]:
    return {f["name"] for f in reply.body["error"]["details"]["fields"]}


# -- zones -------------------------------------------------------------------------------


async def test_zone_by_name_and_id_is_seeded(start: Start) -> None:
    _, api = await start()
    zone = (await api.call("GET", ZONE_)).body["zone"]
    assert (zone["mode"], zone["record_count"], zone["status"]) == ("primary", 4, "ok")
    assert (await api.call("GET", ZONE_, id_or_name=str(zone["id"]))).body["zone"] == zone
    listed = (await api.call("GET", RRSETS)).body["rrsets"]
    assert [(r["id"], len(r["records"])) for r in listed] == [("@/NS", 3), ("@/SOA", 1)]
    missing = await api.call("GET", ZONE_, id_or_name="nope.test")
    assert (missing.status, missing.body["error"]["code"]) == (404, "not_found")


async def test_zones_list_filters_and_paginates(start: Start) -> None:
    _, api = await start(zones=("a.test", "b.test", "c.test"))
    reply = await api.call("GET", ZONES, params={"per_page": 2})
    assert [z["name"] for z in reply.body["zones"]] == ["a.test", "b.test"]
    assert reply.body["meta"]["pagination"]["next_page"] == 2
    named = await api.call("GET", ZONES, params={"name": "b.test"})
    assert [z["name"] for z in named.body["zones"]] == ["b.test"]
    assert (await api.call("GET", ZONES, params={"per_page": 51})).status == 422


async def test_secondary_zone_refuses_every_rrset_path(start: Start) -> None:
    _, api = await start(secondary_zones=("legacy.test",))
    assert (await api.call("GET", ZONE_, id_or_name="legacy.test")).body["zone"]["mode"] == (
        "secondary"
    )
    z: dict[str, Any] = {"id_or_name": "legacy.test"}
    rr: dict[str, Any] = {**z, "rr_name": "www", "rr_type": "A"}
    replies = [
        await api.call("GET", RRSETS, **z),
        await api.call("POST", RRSETS, {"name": "www", "type": "A", "records": A1}, **z),
        await api.call("GET", RRSET, **rr),
        await api.call("DELETE", RRSET, **rr),
        await api.call("POST", SET, {"records": A1}, **rr),
        await api.call("POST", ADD, {"records": A1}, **rr),
        await api.call("POST", REMOVE, {"records": A1}, **rr),
        await api.call("POST", TTL, {"ttl": 60}, **rr),
    ]
    assert {(r.status, r.body["error"]["code"]) for r in replies} == {(422, "incorrect_zone_mode")}


# -- auth and headers --------------------------------------------------------------------


async def test_auth_unknown_missing_and_readonly_tokens(start: Start) -> None:
    fake, api = await start(readonly_tokens=("ro-token",))
    for token in (None, "wrong"):
        reply = await api.call("GET", ZONE_, token=token)
        assert (reply.status, reply.body["error"]["code"]) == (401, "unauthorized")
    assert (await api.call("GET", ZONE_, token="ro-token")).status == 200
    reply = await api.call(
        "POST", RRSETS, {"name": "x", "type": "A", "records": A1}, token="ro-token"
    )
    assert (reply.status, reply.body["error"]["code"]) == (401, "token_readonly")
    assert fake.calls == [("GET", "zones.get"), ("POST", "rrsets.create")]
    assert fake.snapshot()["zones"][ZONE][0]["name"] == "@"  # nothing was written


async def test_rate_limit_headers_decrease_then_429(start: Start) -> None:
    _, api = await start(rate_limit=3)
    seen = []
    for _ in range(3):
        reply = await api.call("GET", ZONE_)
        assert reply.status == 200
        seen.append(int(reply.headers["RateLimit-Remaining"]))
        assert reply.headers["RateLimit-Limit"] == "3"
    assert seen == [2, 1, 0]
    reply = await api.call("GET", ZONE_)
    assert (reply.status, reply.body["error"]["code"]) == (429, "rate_limit_exceeded")
    assert reply.headers["RateLimit-Remaining"] == "0"
    assert int(reply.headers["RateLimit-Reset"]) > time.time()


async def test_burst_429_fault(start: Start) -> None:
    fake, api = await start()
    fake.faults.burst_429, fake.faults.retry_after = 2, 30.0
    for _ in range(2):
        reply = await api.call("GET", ZONE_)
        assert (reply.status, reply.body["error"]["code"]) == (429, "rate_limit_exceeded")
        assert reply.headers["RateLimit-Remaining"] == "0"
        assert time.time() + 25 < int(reply.headers["RateLimit-Reset"]) <= time.time() + 32
    assert (await api.call("GET", ZONE_)).status == 200


# -- rrsets ------------------------------------------------------------------------------


async def test_create_get_duplicate_and_delete(start: Start) -> None:
    fake, api = await start()
    created = await api.create("app.ai", ttl=60, labels={"managed-by": "deployer"})
    assert created.status == 201
    assert created.body["rrset"]["id"] == "app.ai/A"
    assert created.body["action"]["command"] == "create_rrset"
    got = await api.call("GET", RRSET, rr_name="app.ai", rr_type="A")
    assert got.body["rrset"]["records"] == [{"value": "203.0.113.10", "comment": ""}]
    dup = await api.create("app.ai")
    assert (dup.status, dup.body["error"]["code"]) == (409, "uniqueness_error")
    deleted = await api.call("DELETE", RRSET, rr_name="app.ai", rr_type="A")
    assert (deleted.status, deleted.body["action"]["command"]) == (201, "delete_rrset")
    again = await api.call("DELETE", RRSET, rr_name="app.ai", rr_type="A")
    assert (again.status, again.body["error"]["code"]) == (404, "not_found")
    assert (await api.call("GET", RRSET, rr_name="app.ai", rr_type="A")).status == 404
    assert [r["name"] for r in fake.snapshot()["zones"][ZONE]] == ["@", "@"]


async def test_set_records_replaces_and_needs_an_existing_rrset(start: Start) -> None:
    fake, api = await start()
    rr: dict[str, Any] = {"rr_name": "app.ai", "rr_type": "A"}
    missing = await api.call("POST", SET, {"records": A2}, **rr)
    assert (missing.status, missing.body["error"]["code"]) == (404, "not_found")
    await api.create("app.ai")
    reply = await api.call("POST", SET, {"records": A2}, **rr)
    assert (reply.status, reply.body["action"]["command"]) == (201, "set_rrset_records")
    assert entry(fake, "app.ai")["records"] == ["203.0.113.20"]


async def test_add_records_creates_then_appends(start: Start) -> None:
    fake, api = await start()
    rr: dict[str, Any] = {"rr_name": "app.ai", "rr_type": "A"}
    assert (await api.call("POST", ADD, {"records": A1, "ttl": 120}, **rr)).status == 201
    assert (await api.call("POST", ADD, {"records": A2}, **rr)).status == 201
    added = entry(fake, "app.ai")
    assert (added["ttl"], added["records"]) == (120, ["203.0.113.10", "203.0.113.20"])
    clash = await api.call("POST", ADD, {"records": A2, "ttl": 300}, **rr)
    assert (clash.status, clash.body["error"]["code"]) == (422, "invalid_input")


async def test_remove_records_that_empties_deletes(start: Start) -> None:
    fake, api = await start()
    rr: dict[str, Any] = {"rr_name": "app.ai", "rr_type": "A"}
    assert (await api.call("POST", REMOVE, {"records": A1}, **rr)).status == 404
    await api.create("app.ai", A1 + A2)
    await api.call("POST", REMOVE, {"records": A1}, **rr)
    assert entry(fake, "app.ai")["records"] == ["203.0.113.20"]
    await api.call("POST", REMOVE, {"records": A2}, **rr)
    assert (await api.call("GET", RRSET, **rr)).status == 404


async def test_change_ttl_and_soa_serial_bump(start: Start) -> None:
    fake, api = await start()
    rr: dict[str, Any] = {"rr_name": "app.ai", "rr_type": "A"}
    assert (await api.call("POST", TTL, {"ttl": 300}, **rr)).status == 404
    soa = entry(fake, "@", "SOA")["records"][0]
    await api.create("app.ai")
    assert (await api.call("POST", TTL, {"ttl": 300}, **rr)).status == 201
    assert (await api.call("GET", RRSET, **rr)).body["rrset"]["ttl"] == 300
    bumped = entry(fake, "@", "SOA")["records"][0]
    assert int(bumped.split()[2]) == int(soa.split()[2]) + 2


async def test_wildcard_name_raw_and_percent_encoded(start: Start) -> None:
    _, api = await start()
    await api.create("*.ai")
    raw = await api.call("GET", RRSET, rr_name="*.ai", rr_type="A")
    assert raw.body["rrset"]["id"] == "*.ai/A"
    path = f"/zones/{ZONE}/rrsets/%2A.ai/A"
    encoded = await api.call("GET", RRSET, raw_path=path)
    assert encoded.body["rrset"]["id"] == "*.ai/A"
    assert (
        await api.call("POST", SET, {"records": A2}, raw_path=path + "/actions/set_records")
    ).status == 201
    assert (await api.call("DELETE", RRSET, raw_path=path)).status == 201


async def test_cname_cannot_join_other_types(start: Start) -> None:
    _, api = await start()
    await api.create("app.ai")
    reply = await api.call(
        "POST",
        RRSETS,
        {"name": "app.ai", "type": "CNAME", "records": [{"value": "x.example.net."}]},
    )
    assert (reply.status, field_names(reply)) == (422, {"type"})


VALIDATION_CASES = [
    # (path, rr_name, body, bad field, the spec's JSON schema rejects it too)
    (RRSETS, "", {"name": "App", "type": "A", "records": A1}, "name", False),
    (RRSETS, "", {"name": "app.", "type": "A", "records": A1}, "name", False),
    (RRSETS, "", {"name": "app.example.test", "type": "A", "records": A1}, "name", False),
    (RRSETS, "", {"name": "app", "type": "A", "records": []}, "records", False),
    (RRSETS, "", {"name": "app", "type": "A", "records": A1 + A1}, "records", False),
    (RRSETS, "", {"name": "app", "type": "A", "records": A1, "ttl": 59}, "ttl", True),
    (RRSETS, "", {"name": "app", "type": "XYZ", "records": A1}, "type", True),
    (RRSETS, "", {"name": "app", "type": "A", "records": A1, "x": 1}, "x", True),
    (RRSETS, "", {"name": "app", "type": "A", "records": [{"val": "1"}]}, "records", True),
    (SET, "app", {"records": [{"value": f"10.0.0.{i}"} for i in range(51)]}, "records", True),
    (SET, "app", {"records": []}, "records", True),
    (ADD, "App", {"records": A1}, "name", False),
    (ADD, "app", {"records": A1, "ttl": 10}, "ttl", True),
    (TTL, "app", {}, "ttl", True),
]


@pytest.mark.parametrize(("path", "rr_name", "body", "bad", "schema_rejects"), VALIDATION_CASES)
async def test_validation_422(
    start: Start, path: str, rr_name: str, body: Any, bad: str, schema_rejects: bool
) -> None:
    _, api = await start()
    await api.create("app")
    method = "POST"
    reply = await api.call(method, path, body, valid_body=False, rr_name=rr_name, rr_type="A")
    assert (reply.status, reply.body["error"]["code"]) == (422, "invalid_input")
    assert bad in field_names(reply)
    assert spec_accepts(path, method, body) is not schema_rejects


async def test_malformed_json_and_unknown_route(start: Start) -> None:
    _, api = await start()
    async with api.client.post(
        f"/v1/zones/{ZONE}/rrsets", data=b"{nope", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "json_error"
    async with api.client.get("/v1/servers", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
        assert "X-Correlation-Id" in resp.headers


async def test_list_pagination_meta_link_and_filters(start: Start) -> None:
    _, api = await start()
    for name in ("a", "b", "c"):
        await api.create(name)
    first = await api.call("GET", RRSETS, params={"per_page": 2})
    assert first.body["meta"]["pagination"] == {
        "page": 1,
        "per_page": 2,
        "previous_page": None,
        "next_page": 2,
        "last_page": 3,
        "total_entries": 5,
    }
    link = first.headers["Link"]
    assert 'page=2&per_page=2>; rel="next"' in link and 'page=3&per_page=2>; rel="last"' in link
    assert 'rel="prev"' not in link
    last = await api.call("GET", RRSETS, params={"per_page": 2, "page": 3})
    assert last.body["meta"]["pagination"]["next_page"] is None
    assert last.body["meta"]["pagination"]["previous_page"] == 2
    assert [r["id"] for r in last.body["rrsets"]] == ["c/A"]
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]
    default = await api.call("GET", RRSETS)
    assert default.body["meta"]["pagination"]["per_page"] == 25
    types = await api.call("GET", RRSETS, params=[("type", "A"), ("type", "SOA")])
    assert [r["id"] for r in types.body["rrsets"]] == ["@/SOA", "a/A", "b/A", "c/A"]
    named = await api.call("GET", RRSETS, params={"name": "b"})
    assert [r["id"] for r in named.body["rrsets"]] == ["b/A"]
    assert (await api.call("GET", RRSETS, params={"per_page": 101})).status == 422


async def test_label_selector(start: Start) -> None:
    _, api = await start()
    await api.create("a", labels={"managed-by": "deployer"})
    await api.create("b")
    reply = await api.call("GET", RRSETS, params={"label_selector": "managed-by=deployer"})
    assert [r["id"] for r in reply.body["rrsets"]] == ["a/A"]


# -- actions -----------------------------------------------------------------------------


async def test_action_lifecycle_after_two_polls(start: Start) -> None:
    _, api = await start(action_polls=2)
    created = (await api.create("app.ai")).body["action"]
    assert (created["status"], created["progress"], created["finished"]) == ("running", 0, None)
    assert created["id"] >= 600_000_000_000_000
    assert created["resources"][0]["type"] == "zone"
    assert (await api.poll(created["id"]))["status"] == "running"
    assert (await api.poll(created["id"], "/zones/actions/{id}"))["status"] == "running"
    listed = await api.call("GET", "/actions", params={"id": str(created["id"])})
    done = listed.body["actions"][0]
    assert (done["status"], done["progress"], done["error"]) == ("success", 100, None)
    assert done["finished"] is not None
    second = (await api.create("b")).body["action"]
    assert second["id"] > created["id"]


async def test_action_errors_and_lookups(start: Start) -> None:
    fake, api = await start()
    fake.fail_actions.add("bad")
    action = (await api.create("bad")).body["action"]
    failed = await api.poll(action["id"])
    assert (failed["status"], failed["error"]["code"]) == ("error", "action_failed")
    assert (await api.call("GET", RRSET, rr_name="bad", rr_type="A")).status == 404
    assert (await api.create("bad")).status == 201  # the knob was used up
    assert (await api.call("GET", "/actions/{id}", id="1")).status == 404
    assert (await api.call("GET", "/actions")).status == 422


async def test_zone_locked_while_an_action_runs(start: Start) -> None:
    _, api = await start(action_polls=1, lock_zone_while_running=True)
    action = (await api.create("a")).body["action"]
    assert (await api.call("GET", ZONE_)).body["zone"]["status"] == "updating"
    locked = await api.create("b")
    assert (locked.status, locked.body["error"]["code"]) == (423, "locked")
    await api.poll(action["id"])
    await api.poll(action["id"])
    assert (await api.create("b")).status == 201


# -- a zone's actions -----------------------------------------------------------------------


async def listed(api: Api, params: Any = None, zone: str = ZONE) -> list[tuple[int, str]]:
    """(id, status) of each action `GET /zones/{zone}/actions` lists, in its order."""
    reply = await api.call("GET", ZONE_ACTIONS, params=params, id_or_name=zone)
    assert reply.status == 200, reply.body
    return [(a["id"], a["status"]) for a in reply.body["actions"]]


async def test_zone_actions_list_the_running_ones_without_advancing_them(start: Start) -> None:
    fake, api = await start(action_polls=1)
    a = (await api.create("a")).body["action"]
    b = (await api.create("b")).body["action"]
    running = await api.call("GET", ZONE_ACTIONS, params={"status": "running"})
    assert running.body["actions"] == [a, b]  # the very Action objects the writes returned
    for _ in range(3):  # reading the list, however often, moves nothing on
        assert await listed(api, {"status": "running"}) == [
            (a["id"], "running"),
            (b["id"], "running"),
        ]
    assert [x.status for x in fake.actions.values()] == ["running", "running"]
    assert (await api.poll(a["id"]))["status"] == "running"  # the first poll still sees running
    assert (await api.poll(a["id"]))["status"] == "success"
    assert await listed(api, {"status": "running"}) == [(b["id"], "running")]
    assert await listed(api, {"status": "success"}) == [(a["id"], "success")]
    assert await listed(api) == [(a["id"], "success"), (b["id"], "running")]
    done = (await api.call("GET", ZONE_ACTIONS, params={"status": "success"})).body["actions"][0]
    assert (done["progress"], done["error"]) == (100, None) and done["finished"] is not None


async def test_zone_actions_status_may_repeat_and_sort_orders(start: Start) -> None:
    fake, api = await start()
    fake.fail_actions.add("bad")
    ok = (await api.create("ok")).body["action"]["id"]
    bad = (await api.create("bad")).body["action"]["id"]
    late = (await api.create("late")).body["action"]["id"]
    await api.poll(ok)
    await api.poll(bad)
    both = [("status", "success"), ("status", "error")]
    assert await listed(api, both) == [(ok, "success"), (bad, "error")]
    assert await listed(api, {"status": "running"}) == [(late, "running")]
    assert [i for i, _ in await listed(api, {"sort": "id:desc"})] == [late, bad, ok]
    by_status = [("sort", "status:desc"), ("sort", "id:desc")]
    assert [s for _, s in await listed(api, by_status)] == ["success", "running", "error"]
    finished_first = await listed(api, [("sort", "finished"), ("sort", "id:desc")])
    assert finished_first[-1] == (late, "running")  # not finished: a null sorts last


async def test_zone_actions_of_unknown_zone_and_bad_query(start: Start) -> None:
    _, api = await start(secondary_zones=("legacy.test",))
    missing = await api.call("GET", ZONE_ACTIONS, id_or_name="nope.test")
    assert (missing.status, missing.body["error"]["code"]) == (404, "not_found")
    assert await listed(api, zone="legacy.test") == []  # a zone path: any mode
    zone_id = (await api.call("GET", ZONE_)).body["zone"]["id"]
    assert await listed(api, zone=str(zone_id)) == []
    for params, bad in (
        ({"status": "done"}, "status"),
        ({"sort": "name"}, "sort"),
        ({"sort": "id:up"}, "sort"),
        ({"per_page": 51}, "per_page"),
        ({"page": 0}, "page"),
    ):
        reply = await api.call("GET", ZONE_ACTIONS, params=params)
        assert (reply.status, reply.body["error"]["code"]) == (422, "invalid_input"), params
        assert bad in field_names(reply)


async def test_zone_actions_pagination_meta_and_link(start: Start) -> None:
    fake, api = await start(zones=(ZONE, "other.test"))
    other = fake.zone("other.test")
    ids = [(await api.create(name)).body["action"]["id"] for name in ("a", "b", "c")]
    fake.create_rrset(other, {"name": "x", "type": "A", "records": A1})  # not this zone's
    first = await api.call("GET", ZONE_ACTIONS, params={"status": "running", "per_page": 2})
    assert first.body["meta"]["pagination"] == {
        "page": 1,
        "per_page": 2,
        "previous_page": None,
        "next_page": 2,
        "last_page": 2,
        "total_entries": 3,
    }
    assert [x["id"] for x in first.body["actions"]] == ids[:2]
    link = first.headers["Link"]
    assert 'status=running&page=2&per_page=2>; rel="next"' in link and 'rel="prev"' not in link
    second = await api.call(
        "GET", ZONE_ACTIONS, params={"status": "running", "per_page": 2, "page": 2}
    )
    assert [x["id"] for x in second.body["actions"]] == ids[2:]
    assert second.body["meta"]["pagination"]["next_page"] is None
    assert second.body["meta"]["pagination"]["previous_page"] == 1
    default = await api.call("GET", ZONE_ACTIONS)
    assert default.body["meta"]["pagination"]["per_page"] == 25
    assert fake.calls[-1] == ("GET", "zones.actions.list")


# -- faults and control routes -----------------------------------------------------------


async def test_fault_latency_and_error_rate(start: Start) -> None:
    fake, api = await start()
    fake.faults.latency = 0.05
    began = time.monotonic()
    assert (await api.call("GET", ZONE_)).status == 200
    assert time.monotonic() - began >= 0.05
    fake.faults.latency, fake.faults.error_rate = 0.0, 1.0
    reply = await api.call("GET", ZONE_)
    assert (reply.status, reply.body["error"]["code"]) == (503, "unavailable")


async def test_fault_lose_response_after_the_create(start: Start) -> None:
    fake, api = await start()
    fake.faults.lose_response_ops = {"rrsets.create": 1}
    with pytest.raises(aiohttp.ClientError):
        await api.create("app.ai")
    assert (await api.call("GET", RRSET, rr_name="app.ai", rr_type="A")).status == 200
    assert (await api.create("app.ai")).status == 409


async def test_fault_hang_with_client_timeout(start: Start) -> None:
    fake, api = await start()
    fake.faults.hang_ops = {"zones.get": 1}
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        await api.client.get(
            f"/v1/zones/{ZONE}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    assert time.monotonic() - began < 1
    assert (await api.call("GET", ZONE_)).status == 200


async def test_fault_fail_ops_and_control_routes(start: Start) -> None:
    fake, api = await start()
    fake.faults.fail_ops = {"rrsets.create": FailRule(status=500, times=1)}
    reply = await api.create("a")
    assert (reply.status, reply.body["error"]["code"]) == (500, "server_error")
    assert (await api.create("a")).status == 201
    async with api.client.post(
        "/_sandbox/faults", json={"fail_ops": {"rrsets.delete": {"status": 409}}}
    ) as resp:
        assert resp.status == 200
    for _ in range(2):  # no `times`: every call until cleared
        reply = await api.call("DELETE", RRSET, rr_name="a", rr_type="A")
        assert (reply.status, reply.body["error"]["code"]) == (409, "conflict")
    async with api.client.get("/_sandbox/state") as resp:
        assert await resp.json() == fake.snapshot()
    async with api.client.post("/_sandbox/reset") as resp:
        assert resp.status == 200
    assert (fake.faults.fail_ops, fake.calls) == ({}, [])
    assert (await api.call("DELETE", RRSET, rr_name="a", rr_type="A")).status == 404
