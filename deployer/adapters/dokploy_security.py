"""Dokploy's HTTP basic auth (`security.*`, recordings 74-84), as DokployPaas methods.

Dokploy keeps the password in clear and gives it back: in `application.one`'s `security`
list (75), in `security.one` (76) and `security.delete` (80), and inside the 400 text of a
duplicate create (79). So no body of these calls is kept or shown: the list is read for
`securityId` and `username` alone, the delete's answer is dropped, and a refusal goes through
`checked`, which names a failed SQL statement instead of echoing it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from deployer.adapters.dokploy_errors import NAME
from deployer.errors import PermanentUpstreamError

T = TypeVar("T")


class _Calls(Protocol):
    """What these methods use of DokployPaas: its retried call and its two verbs."""

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T: ...
    async def _get(self, procedure: str, **params: str) -> Any: ...
    async def _post(self, procedure: str, body: dict[str, Any]) -> Any: ...
    async def _delete(self, procedure: str, body: dict[str, Any]) -> bool: ...


class BasicAuthCalls:
    """Mixed into DokployPaas: the Paas port's basic-auth methods."""

    async def add_basic_auth(
        self: _Calls, application_id: str, username: str, password: str
    ) -> str:
        """Make the login and return its id. `security.create` answers only `true` (74), so
        the id is found by username afterwards. A retry after a lost answer looks first and,
        finding its own create, sets the password again rather than failing as a duplicate."""
        attempts = [0]

        async def add() -> str:
            attempts[0] += 1
            found = await _find(self, application_id, username) if attempts[0] > 1 else None
            if found is not None:
                await _update(self, found, username, password)
                return found
            body = {"applicationId": application_id, "username": username, "password": password}
            await self._post("security.create", body)
            made = await _find(self, application_id, username)
            if made is None:
                raise PermanentUpstreamError(
                    f"{NAME} security.create answered true, but application {application_id} "
                    f"lists no login {username}"
                )
            return made

        return await self._call(add)

    async def set_basic_auth(self: _Calls, security_id: str, username: str, password: str) -> None:
        """A new password (and username) for the login; its id stays (77, 78)."""
        await self._call(lambda: _update(self, security_id, username, password))

    async def remove_basic_auth(self: _Calls, security_id: str) -> bool:
        """False when it is gone already (an unknown id is a 404, recording 84)."""
        return await self._call(
            lambda: self._delete("security.delete", {"securityId": security_id})
        )

    async def find_basic_auth(self: _Calls, application_id: str, username: str) -> str | None:
        return await self._call(lambda: _find(self, application_id, username))


async def _update(api: _Calls, security_id: str, username: str, password: str) -> None:
    # 200 with an empty body (recording 77)
    body = {"securityId": security_id, "username": username, "password": password}
    await api._post("security.update", body)


async def _find(api: _Calls, application_id: str, username: str) -> str | None:
    raw = await api._get("application.one", applicationId=application_id)
    return next((sid for sid, name in logins(raw) if name == username), None)


def logins(application: Any) -> list[tuple[str, str]]:
    """(securityId, username) of each login in an `application.one` body; the rest of each
    entry, its password included, is never read."""
    entries = application.get("security") if isinstance(application, dict) else None
    if not isinstance(entries, list):
        raise PermanentUpstreamError(f"{NAME} application.one: its answer has no security list")
    found = []
    for entry in entries:
        sid = entry.get("securityId") if isinstance(entry, dict) else None
        name = entry.get("username") if isinstance(entry, dict) else None
        if isinstance(sid, str) and isinstance(name, str):
            found.append((sid, name))
    return found
