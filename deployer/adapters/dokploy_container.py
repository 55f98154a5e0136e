"""A live stack's container on Dokploy, as DokployPaas methods: stop, start and reload it
(recordings 49, 89-91), and read what it printed or what its build wrote (96-98).

Kept apart from dokploy.py, which makes, finds and removes the resources: these calls act on
what runs, where Docker's failures come back as 500s that are no fault of Dokploy's and a
missing container or log is an answer, not an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import aiohttp

from deployer.adapters.dokploy_errors import NAME, checked, log_tail
from deployer.adapters.http import send
from deployer.errors import Gone, PermanentError, PermanentUpstreamError

T = TypeVar("T")

_NOT_RUNNING = "No container or service found"


class _Calls(Protocol):
    """What these methods use of DokployPaas: its session, its API root, its retried call
    and its verbs."""

    _api: str
    _session: aiohttp.ClientSession

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T: ...
    async def _get(self, procedure: str, **params: str) -> Any: ...
    async def _post(self, procedure: str, body: dict[str, Any]) -> Any: ...


class ContainerCalls:
    """Mixed into DokployPaas: the Paas port's container and log methods."""

    async def stop_application(self: _Calls, application_id: str) -> None:
        # 200 with the application as it was, even when Docker failed (recordings 49, 89)
        body = {"applicationId": application_id}
        await self._call(lambda: self._post("application.stop", body))

    async def start_application(self: _Calls, application_id: str) -> None:
        body = {"applicationId": application_id}
        await self._call(lambda: _on_container(self, "start", "application.start", body))

    async def reload_application(self: _Calls, application_id: str, app_name: str) -> None:
        body = {"appName": app_name, "applicationId": application_id}
        await self._call(lambda: _on_container(self, "restart", "application.reload", body))

    async def application_logs(self: _Calls, application_id: str, lines: int) -> str | None:
        """The container's last log lines; None when no container runs: Dokploy answers a
        500 "No container or service found" then (recording 98), which is no fault."""
        params = {"applicationId": application_id, "tail": str(lines)}

        async def read() -> str | None:
            url = f"{self._api}/application.readLogs"
            reply = await send(self._session, NAME, "GET", url, params=params)
            if reply.status == 500 and _NOT_RUNNING in reply.text:
                return None
            raw = checked("application.readLogs", reply)
            return raw if isinstance(raw, str) else ""

        return await self._call(read)

    async def deployment_log(self: _Calls, deployment_id: str, lines: int) -> str | None:
        """A build log's last lines, as written: one JSON string of lines (recording 97)."""
        params = {"deploymentId": deployment_id, "tail": str(lines)}
        try:
            raw = await self._call(lambda: self._get("deployment.readLogs", **params))
        except Gone:
            return None
        return raw if isinstance(raw, str) else ""

    async def deployment_log_tail(self: _Calls, deployment_id: str, lines: int = 20) -> str:
        """The end of a deployment's build log, for the failure message: a failed deployment
        keeps `errorMessage` null (recording 96) and says why only in its log (97). Best
        effort: "" when Dokploy has no such log or refuses to show it."""
        params = {"deploymentId": deployment_id, "tail": str(lines)}
        try:
            raw = await self._call(lambda: self._get("deployment.readLogs", **params))
        except PermanentError:
            return ""
        return log_tail(raw)


async def _on_container(api: _Calls, verb: str, procedure: str, body: dict[str, Any]) -> None:
    """A 500 from `start` or `reload` is Docker's answer, not Dokploy's health: the
    command failed (recordings 90, 91) and saying it again will not help, nor should it
    count against Dokploy's breaker. Its text (the docker command and its stderr) is not
    passed on."""
    reply = await send(api._session, NAME, "POST", f"{api._api}/{procedure}", body=body)
    if reply.status == 500:
        fields = reply.json()
        code = fields.get("code") if isinstance(fields, dict) else None
        said = " ".join(str(x) for x in (reply.status, code) if x)
        raise PermanentUpstreamError(f"{NAME} could not {verb} the container ({said})",
                                     status=reply.status, code=code)  # fmt: skip
    checked(procedure, reply)
