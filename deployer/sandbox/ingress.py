"""A local stand-in for the Traefik ingress in front of the deployed stacks.

Any path on a host that has a running stack answers 200 with a small JSON page (like the
OpenCode agent's); a host whose stack is stopped gets Traefik's 502 (its router is still there,
its service has no container to send to), and so does one whose container never answers
(`silent_hosts`); any other host gets Traefik's 404. A routed host whose application has
basic-auth logins (Dokploy's security rows, `logins`) answers 401 to a request without one of
them before anything else, as Traefik's basicAuth middleware does: without the login, a
stopped or silent stack looks like a running one. The shared fault knobs (op `ingress.get`)
let a test make the stacks answer 502 for a while.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable, Collection, Mapping
from typing import Any

from aiohttp import hdrs, web

from deployer.sandbox.faults import Faults, control_routes, fault_middleware

Logins = Callable[[str], list[tuple[str, str]]]  # host -> its (username, password) pairs


def _render(status: int, code: str, message: str, retry_after: float | None) -> web.Response:
    """Plain-text errors, as Traefik and a crashed upstream give them."""
    response = web.Response(status=status, text=f"{status} {message}\n")
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response


def _no_logins(_: str) -> list[tuple[str, str]]:
    return []


class FakeIngress:
    """Routes by Host header to the stacks `live_hosts()` reports as running."""

    def __init__(
        self, live_hosts: Callable[[], Mapping[str, int]], *, faults: Faults | None = None,
        stopped_hosts: Callable[[], Collection[str]] = frozenset,
        silent_hosts: Callable[[], Collection[str]] = frozenset,
        logins: Logins = _no_logins,
    ) -> None:  # fmt: skip
        self.live_hosts = live_hosts
        self.stopped_hosts = stopped_hosts
        self.silent_hosts = silent_hosts
        self.logins = logins
        self.faults = faults if faults is not None else Faults()
        self.hits: list[tuple[str, str]] = []  # (host, path) of every request served

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[fault_middleware(self.faults, lambda _: "ingress.get", _render)]
        )
        app.add_routes(control_routes(self.faults, self.state, self.hits.clear))
        app.router.add_route("*", "/{tail:.*}", self._serve)
        return app

    def state(self) -> dict[str, Any]:
        return {"live_hosts": dict(self.live_hosts()), "hits": [list(h) for h in self.hits]}

    async def _serve(self, request: web.Request) -> web.Response:
        host = (request.url.host or "").lower()
        self.hits.append((host, request.path))
        routed = {h.lower(): h for h in (*self.live_hosts(), *self.stopped_hosts())}
        if host not in routed:
            return web.Response(status=404, text="no such stack\n")
        logins = self.logins(routed[host])
        if logins and not _authorized(request.headers.get(hdrs.AUTHORIZATION, ""), logins):
            headers = {hdrs.WWW_AUTHENTICATE: 'Basic realm="traefik"'}
            return web.Response(status=401, text="401 Unauthorized\n", headers=headers)
        if host not in {h.lower() for h in self.live_hosts()}:
            return web.Response(status=502, text="Bad Gateway")  # stopped: no container
        if host in {h.lower() for h in self.silent_hosts()}:
            return web.Response(status=502, text="Bad Gateway\n")
        return web.json_response({"service": "opencode", "host": host})


def _authorized(header: str, logins: list[tuple[str, str]]) -> bool:
    """`Basic base64(user:password)` naming one of the logins."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        return False
    return any(secrets.compare_digest(given, f"{u}:{p}".encode()) for u, p in logins)
