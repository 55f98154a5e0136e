"""A local fake of the Hetzner Cloud DNS API (`/v1/zones*`, `/v1/actions*`) as an aiohttp app.

Behaviour follows ../shared/specs/hetzner-dns.md section A (checklist A.8): bearer auth with
optional read-only tokens, `RateLimit-*` and `X-Correlation-Id` headers on every response, an
hourly token-bucket budget, Hetzner error bodies, polled actions (a zone's listing reads them
without moving them on), pagination with `Link`, and the shared fault knobs of `faults.py`.
The state model lives in `hetzner_state.py`.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from deployer.sandbox.faults import CONTROL_PREFIX, Faults, control_routes, fault_middleware
from deployer.sandbox.hetzner_checks import RR_TYPES, ApiError, FieldErrors, check_action_query
from deployer.sandbox.hetzner_state import DnsState

BASE = "/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATUS_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "deprecated_api_endpoint",
    422: "invalid_input",
    423: "locked",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}
RRSET = "/zones/{id_or_name}/rrsets/{rr_name}/{rr_type}"


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return web.json_response(body, status=status)


class FakeHetznerDns(DnsState):
    """In-memory Hetzner Cloud DNS. Serve `app()`; the client's base URL is `<server>/v1`."""

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("sandbox-token",),
        zones: Iterable[str] = ("example.test",),
        action_polls: int = 0,
        faults: Faults | None = None,
        rate_limit: int = 3600,
        readonly_tokens: Iterable[str] = (),
        secondary_zones: Iterable[str] = (),
        lock_zone_while_running: bool = False,
    ) -> None:
        self.tokens = set(tokens)
        self.readonly_tokens = set(readonly_tokens)
        self.faults = faults if faults is not None else Faults()
        self.rate_limit = rate_limit
        self.calls: list[tuple[str, str]] = []
        self._budget = float(rate_limit)
        self._refilled_at = time.monotonic()
        self._ops: dict[tuple[str, str], str] = {}
        super().__init__(
            zones=zones,
            secondary_zones=secondary_zones,
            action_polls=action_polls,
            lock_zone_while_running=lock_zone_while_running,
        )

    def reset(self) -> None:
        """Back to the seeded zones, a full rate budget, no calls, no faults."""
        super().reset()
        self.calls.clear()
        self.faults.clear()
        self._budget = float(self.rate_limit)
        self._refilled_at = time.monotonic()

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._gateway, fault_middleware(self.faults, self._op_of, self._render)]
        )
        app.add_routes(control_routes(self.faults, self.snapshot, self.reset))
        routes: list[tuple[str, str, str, Handler]] = [
            ("GET", "/zones", "zones.list", self._list_zones),
            ("GET", "/zones/{id_or_name}", "zones.get", self._get_zone),
            ("GET", "/zones/{id_or_name}/actions", "zones.actions.list", self._list_zone_actions),
            ("GET", "/zones/{id_or_name}/rrsets", "rrsets.list", self._list_rrsets),
            ("POST", "/zones/{id_or_name}/rrsets", "rrsets.create", self._create_rrset),
            ("GET", RRSET, "rrsets.get", self._get_rrset),
            ("DELETE", RRSET, "rrsets.delete", self._delete_rrset),
            ("POST", RRSET + "/actions/{action}", "rrsets.{action}", self._rrset_action),
            ("GET", "/actions/{id}", "actions.get", self._get_action),
            ("GET", "/actions", "actions.get", self._list_actions),
            ("GET", "/zones/actions/{id}", "actions.get", self._get_action),
        ]
        for method, path, op, handler in routes:
            app.router.add_route(method, BASE + path, handler)
            self._ops[(method, BASE + path)] = op
        return app

    # -- middleware ----------------------------------------------------------------------

    def _op_of(self, request: web.Request) -> str:
        resource = request.match_info.route.resource
        if resource is None:
            return "unknown"
        op = self._ops.get((request.method, resource.canonical), "unknown")
        return op.format(action=request.match_info.get("action", ""))

    @web.middleware
    async def _gateway(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Auth, rate budget and call log in front; error bodies and headers on the way out."""
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        response: web.StreamResponse
        try:
            self._authenticate(request)
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.details)
        except web.HTTPException as exc:  # the router's own 404 / 405
            code = STATUS_CODES.get(exc.status, "invalid_input")
            if exc.status == 405:
                code = "method_not_allowed"
            response = error_response(exc.status, code, exc.reason)
        for key, value in self._rate_headers().items():
            response.headers.setdefault(key, value)
        response.headers.setdefault("X-Correlation-Id", uuid.uuid4().hex[:16])
        return response

    def _authenticate(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens | self.readonly_tokens:
            raise ApiError(401, "unauthorized", "the token you have provided is invalid")
        self.calls.append((request.method, self._op_of(request)))
        if not self._spend():
            raise ApiError(
                429, "rate_limit_exceeded", f"limit of {self.rate_limit} requests per hour reached"
            )
        if token in self.readonly_tokens and request.method not in ("GET", "HEAD"):
            raise ApiError(401, "token_readonly", "the token you have provided is read-only")

    def _spend(self) -> bool:
        """Token bucket: `rate_limit` per hour, refilled continuously at rate_limit/3600 per s."""
        now = time.monotonic()
        per_second = self.rate_limit / 3600
        self._budget = min(self.rate_limit, self._budget + (now - self._refilled_at) * per_second)
        self._refilled_at = now
        if self._budget < 1:
            return False
        self._budget -= 1
        return True

    def _rate_headers(self) -> dict[str, str]:
        """`RateLimit-Reset` is the UNIX time at which the budget is full again."""
        refill = (self.rate_limit - self._budget) * 3600 / max(self.rate_limit, 1)
        return {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Remaining": str(max(0, math.floor(self._budget))),
            "RateLimit-Reset": str(math.ceil(time.time() + refill)),
        }

    def _render(
        self, status: int, code: str, message: str, retry_after: float | None
    ) -> web.Response:
        """Error body for an injected fault; the code follows the status, Hetzner-style."""
        response = error_response(status, STATUS_CODES.get(status, code), message)
        if status == 429:
            reset = time.time() + (retry_after if retry_after is not None else 1.0)
            response.headers["RateLimit-Remaining"] = "0"
            response.headers["RateLimit-Reset"] = str(math.ceil(reset))
        return response

    # -- zones ---------------------------------------------------------------------------

    async def _list_zones(self, request: web.Request) -> web.Response:
        page, per_page = _paging(request, max_per_page=50)
        name, mode = request.query.get("name"), request.query.get("mode")
        zones = [
            self.zone_json(z)
            for z in sorted(self.zones.values(), key=lambda z: z.id)
            if name in (None, z.name) and mode in (None, z.mode)
        ]
        return _paged(request, "zones", zones, page, per_page)

    async def _get_zone(self, request: web.Request) -> web.Response:
        zone = self.zone(request.match_info["id_or_name"])
        return web.json_response({"zone": self.zone_json(zone)})

    async def _list_zone_actions(self, request: web.Request) -> web.Response:
        """`list_zone_actions`: the zone's actions, any mode, filtered by `status` and sorted
        by `sort` (both may repeat), 25 a page by default and 50 at most; reading them does
        not advance them (only a poll of `/actions/{id}` and its kin does)."""
        zone = self.zone(request.match_info["id_or_name"])
        errors = FieldErrors()
        statuses = request.query.getall("status", [])
        sort = check_action_query(errors, statuses, request.query.getall("sort", []))
        errors.raise_if_any()
        page, per_page = _paging(request, max_per_page=50)
        actions = [a.to_json() for a in self.zone_actions(zone, statuses, sort)]
        return _paged(request, "actions", actions, page, per_page)

    # -- rrsets --------------------------------------------------------------------------

    async def _list_rrsets(self, request: web.Request) -> web.Response:
        zone = self.primary_zone(request.match_info["id_or_name"])
        page, per_page = _paging(request, max_per_page=100)
        name = request.query.get("name")
        types = request.query.getall("type", [])
        if set(types) - RR_TYPES:
            errors = FieldErrors()
            errors.add("type", f"must be one of {', '.join(sorted(RR_TYPES))}")
            errors.raise_if_any()
        selector = request.query.get("label_selector", "")
        rrsets = [
            rr.to_json()
            for _, rr in sorted(zone.rrsets.items())
            if name in (None, rr.name)
            and (not types or rr.type in types)
            and _labels_match(selector, rr.labels)
        ]
        return _paged(request, "rrsets", rrsets, page, per_page)

    async def _create_rrset(self, request: web.Request) -> web.Response:
        zone = self.primary_zone(request.match_info["id_or_name"])
        rrset, action = self.create_rrset(zone, await _json(request))
        return web.json_response({"rrset": rrset.to_json(), "action": action.to_json()}, status=201)

    async def _get_rrset(self, request: web.Request) -> web.Response:
        zone = self.primary_zone(request.match_info["id_or_name"])
        rrset = self.rrset(zone, *_rr_key(request))
        return web.json_response({"rrset": rrset.to_json()})

    async def _delete_rrset(self, request: web.Request) -> web.Response:
        zone = self.primary_zone(request.match_info["id_or_name"])
        action = self.delete_rrset(zone, *_rr_key(request))
        return web.json_response({"action": action.to_json()}, status=201)

    async def _rrset_action(self, request: web.Request) -> web.Response:
        zone = self.primary_zone(request.match_info["id_or_name"])
        handlers = {
            "set_records": self.set_records,
            "add_records": self.add_records,
            "remove_records": self.remove_records,
            "change_ttl": self.change_ttl,
        }
        run = handlers.get(request.match_info["action"])
        if run is None:
            raise ApiError(404, "not_found", "unknown action")
        action = run(zone, *_rr_key(request), await _json(request))
        return web.json_response({"action": action.to_json()}, status=201)

    # -- actions -------------------------------------------------------------------------

    async def _get_action(self, request: web.Request) -> web.Response:
        action = self.poll_action(_action_id(request.match_info["id"]))
        return web.json_response({"action": action.to_json()})

    async def _list_actions(self, request: web.Request) -> web.Response:
        ids = [_action_id(i) for i in request.query.getall("id", [])]
        if not ids:
            errors = FieldErrors()
            errors.add("id", "is required")
            errors.raise_if_any()
        found = [self.poll_action(i).to_json() for i in dict.fromkeys(ids) if i in self.actions]
        return web.json_response({"actions": found})


# -- request helpers ---------------------------------------------------------------------


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise ApiError(400, "json_error", "request body is not valid JSON") from exc


def _rr_key(request: web.Request) -> tuple[str, str]:
    """(rr_name, rr_type) from the path; aiohttp has already decoded `%2A` to `*`."""
    return request.match_info["rr_name"], request.match_info["rr_type"]


def _action_id(raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(
            422,
            "invalid_input",
            "action id must be an integer",
            {"fields": [{"name": "id", "messages": ["must be an integer"]}]},
        ) from exc


def _paging(request: web.Request, *, max_per_page: int) -> tuple[int, int]:
    """`page` (>= 1) and `per_page` (1..max); out of range is refused, not clamped."""
    errors = FieldErrors()
    values = {}
    for key, default, high in (("page", 1, None), ("per_page", 25, max_per_page)):
        try:
            value = int(request.query.get(key, default))
        except ValueError:
            errors.add(key, "must be an integer")
            continue
        if value < 1 or (high is not None and value > high):
            errors.add(key, f"must be between 1 and {high}" if high else "must be >= 1")
        values[key] = value
    errors.raise_if_any()
    return values["page"], values["per_page"]


def _paged(
    request: web.Request, key: str, items: list[dict[str, Any]], page: int, per_page: int
) -> web.Response:
    """Hetzner list envelope (`meta.pagination`) plus a `Link` header (prev/next/last)."""
    last = max(1, math.ceil(len(items) / per_page))
    previous_page = page - 1 if page > 1 else None
    next_page = page + 1 if page < last else None
    pagination = {
        "page": page,
        "per_page": per_page,
        "previous_page": previous_page,
        "next_page": next_page,
        "last_page": last,
        "total_entries": len(items),
    }
    base = request.url.without_query_params("page", "per_page")
    links = [
        f'<{base.extend_query(page=p, per_page=per_page)}>; rel="{rel}"'
        for p, rel in ((previous_page, "prev"), (next_page, "next"), (last, "last"))
        if p is not None
    ]
    body = {key: items[(page - 1) * per_page : page * per_page], "meta": {"pagination": pagination}}
    return web.json_response(body, headers={"Link": ", ".join(links)})


def _labels_match(selector: str, labels: dict[str, str]) -> bool:
    """The simple forms of Hetzner label selectors: `k`, `!k`, `k=v`, `k==v`, `k!=v`."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            ok = labels.get(k) != v
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            ok = labels.get(k) == v
        elif term.startswith("!"):
            ok = term[1:] not in labels
        else:
            ok = term in labels
        if not ok:
            return False
    return True
