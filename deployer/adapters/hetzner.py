"""HetznerDns: the Dns port over the Hetzner Cloud DNS API (../shared/specs/hetzner-dns.md §A).

Writes answer with an async action that is polled until `success`; `locked` (another action
on the zone) and `conflict` are retried, 429 waits until RateLimit-Reset. A record found
already there is adopted only once the zone's running actions are over: it may be the
half-done write of a bot that was killed and restarted.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import structlog
from pydantic import Field, SecretStr

from deployer.adapters.http import (
    QUICK_TIMEOUT,
    HttpReply,
    UpstreamModel,
    json_body,
    new_session,
    send,
    trimmed,
)
from deployer.adapters.resilience import QUICK, Upstream
from deployer.errors import (
    AuthError,
    Gone,
    PermanentUpstreamError,
    TransientUpstreamError,
    UpstreamError,
)
from deployer.ports import BeforeCreate, Clock, ZoneInfo

NAME = "Hetzner DNS"
RETRIED_CODES = frozenset(
    {
        "locked",
        "conflict",
        "rate_limit_exceeded",
        "timeout",
        "bad_gateway",
        "unavailable",
        "server_error",
    }
)
ACTION_POLL_FIRST = 1.0
ACTION_POLL_MAX = 5.0
ACTION_DEADLINE = 120.0
log = structlog.get_logger("aistack.hetzner")


class _Zone(UpstreamModel):
    id: int
    name: str


class _Record(UpstreamModel):
    value: str


class _RRSet(UpstreamModel):
    name: str
    type: str
    ttl: int | None = None
    records: list[_Record] = Field(default_factory=list)


class _Action(UpstreamModel):
    id: int
    status: str
    error: dict[str, Any] | None = None


class HetznerDns:
    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        zone: str,
        upstream: Upstream,
        timeout: float,
        *,
        clock: Clock,
        poll_initial: float = ACTION_POLL_FIRST,
    ):
        self._base = base_url
        self._zone = zone
        self._upstream = upstream
        self._clock = clock  # waits for the zone's actions
        self._poll_initial = poll_initial
        self._session = new_session(
            timeout, {"Authorization": f"Bearer {token.get_secret_value()}"}
        )

    async def close(self) -> None:
        await self._session.close()

    async def zone(self, *, quick: bool = False) -> ZoneInfo:
        """The zone and its RRSet count: proof that the token reaches the zone. `quick` is for
        a person waiting (preflight): two attempts and a short request timeout, so an
        unreachable API is reported in seconds, not after the retries."""
        limit = QUICK_TIMEOUT if quick else None

        async def read() -> ZoneInfo:
            raw = await self._request("GET", self._zone_path(), time_limit=limit)
            zone = _Zone.model_validate(raw["zone"])
            listing = await self._request(
                "GET", f"{self._zone_path()}/rrsets", params={"per_page": "1"}, time_limit=limit
            )
            total = listing["meta"]["pagination"].get("total_entries")
            if total is None:
                total = await self._count_rrsets()
            return ZoneInfo(zone.id, zone.name, int(total))

        return await self._upstream.call(read, policy=QUICK if quick else None)

    async def a_record(self, name: str) -> list[str] | None:
        rrset = await self._upstream.call(lambda: self._get_rrset(name))
        return None if rrset is None else sorted(r.value for r in rrset.records)

    async def a_records(self) -> dict[str, list[str]]:
        """Every A RRSet of the zone (relative names) with its values, 100 a call."""

        async def read() -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            page = 1
            while page:
                params = {"type": "A", "per_page": "100", "page": str(page)}
                listing = await self._request("GET", f"{self._zone_path()}/rrsets", params=params)
                for raw in listing["rrsets"]:
                    rrset = _RRSet.model_validate(raw)
                    found[rrset.name] = sorted(r.value for r in rrset.records)
                page = listing["meta"]["pagination"].get("next_page") or 0
            return found

        return await self._upstream.call(read)

    async def upsert_a_record(
        self, name: str, ip: str, ttl: int, *, before_create: BeforeCreate | None = None
    ) -> None:
        async def upsert() -> None:
            rrset = await self._settled_rrset(name)
            if rrset is None:
                if before_create is not None:
                    await before_create()
                if await self._create_rrset(name, ip, ttl):
                    return
                rrset = await self._settled_rrset(name)  # lost a race: someone created it
            if rrset is not None and [r.value for r in rrset.records] != [ip]:
                await self._rrset_action(name, "set_records", {"records": [{"value": ip}]})
            if rrset is not None and rrset.ttl != ttl:
                await self._rrset_action(name, "change_ttl", {"ttl": ttl})

        await self._upstream.call(upsert)

    async def delete_a_record(self, name: str) -> bool:
        async def delete() -> bool:
            try:
                reply = await self._request("DELETE", self._rrset_path(name))
            except Gone:
                return False  # already gone
            await self._wait_action(reply["action"])
            return True

        return bool(await self._upstream.call(delete))

    # -- plumbing ---------------------------------------------------------------------------
    async def _settled_rrset(self, name: str) -> _RRSet | None:
        """The RRSet as it stands once the zone's running actions are over. A record that is
        there may still have its create (or change) running: a bot killed mid-write and then
        restarted finds it, and must not call it done before Hetzner does."""
        rrset = await self._get_rrset(name)
        if rrset is None or not await self._await_running_actions():
            return rrset
        return await self._get_rrset(name)  # what the actions left, success or not

    async def _await_running_actions(self) -> bool:
        """Wait until the zone's running actions end; True when there were any. An action
        names only its zone, not the RRSet, so all of them are awaited; one that fails may be
        another writer's, so it is not an error here: the caller reads the RRSet again."""
        params = {"status": "running", "per_page": "50"}
        try:
            listing = await self._request("GET", f"{self._zone_path()}/actions", params=params)
        except PermanentUpstreamError as exc:
            if not _endpoint_missing(exc):
                raise
            # Not served (an older fake, a retired endpoint): adopt without waiting.
            log.warning("zone actions not listed; adopting without waiting", error=str(exc))
            return False
        running = listing.get("actions") or []
        for raw in running:
            await self._settle(raw)
        return bool(running)

    async def _get_rrset(self, name: str) -> _RRSet | None:
        try:
            return _RRSet.model_validate(
                (await self._request("GET", self._rrset_path(name)))["rrset"]
            )
        except Gone:
            return None

    async def _create_rrset(self, name: str, ip: str, ttl: int) -> bool:
        body = {
            "name": name,
            "type": "A",
            "ttl": ttl,
            "records": [{"value": ip}],
            "labels": {"managed-by": "aistack"},
        }
        try:
            reply = await self._request("POST", f"{self._zone_path()}/rrsets", body=body)
        except PermanentUpstreamError as exc:
            if exc.code == "uniqueness_error":
                return False  # someone else created it
            raise
        await self._wait_action(reply["action"])
        return True

    async def _rrset_action(self, name: str, action: str, body: dict[str, Any]) -> None:
        reply = await self._request("POST", f"{self._rrset_path(name)}/actions/{action}", body=body)
        await self._wait_action(reply["action"])

    async def _wait_action(self, raw: dict[str, Any]) -> None:
        action = await self._settle(raw)
        if action.status != "success":
            error = action.error or {}
            raise PermanentUpstreamError(
                f"{NAME}: action {action.id} failed: "
                f"{error.get('code', '?')}: {trimmed(str(error.get('message', '')))}",
                code=str(error["code"]) if error.get("code") else None,
            )

    async def _settle(self, raw: dict[str, Any]) -> _Action:
        """Poll an action until it is no longer running (1 s, doubling up to 5 s, 120 s at most)."""
        action = _Action.model_validate(raw)
        delay, started = self._poll_initial, self._clock.monotonic()
        while action.status == "running":
            if self._clock.monotonic() - started > ACTION_DEADLINE:
                raise TransientUpstreamError(
                    f"{NAME}: action {action.id} still running after {ACTION_DEADLINE:.0f} s"
                )
            await self._clock.sleep(delay)
            delay = min(delay * 2, ACTION_POLL_MAX)
            action = _Action.model_validate(
                (await self._request("GET", f"/actions/{action.id}"))["action"]
            )
        return action

    async def _count_rrsets(self) -> int:
        count, page = 0, 1
        while page:
            listing = await self._request(
                "GET", f"{self._zone_path()}/rrsets", params={"per_page": "100", "page": str(page)}
            )
            count += len(listing["rrsets"])
            page = listing["meta"]["pagination"].get("next_page") or 0
        return count

    def _zone_path(self) -> str:
        return f"/zones/{quote(self._zone, safe='')}"

    def _rrset_path(self, name: str) -> str:
        return f"{self._zone_path()}/rrsets/{quote(name, safe='*.-')}/A"

    async def _request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None,
        time_limit: float | None = None,
    ) -> Any:  # fmt: skip
        url = f"{self._base}{path}"
        reply = await send(
            self._session, NAME, method, url, params=params, body=body, time_limit=time_limit
        )
        return _checked(f"{method} {path}", reply)


def _checked(what: str, reply: HttpReply) -> Any:
    if reply.status < 400:
        return json_body(reply, f"{NAME} {what}", "AISTACK_HETZNER_URL")
    code, message = _error_of(reply)
    where = f"{NAME} {what}: {reply.status} {code}"
    named = code or None
    if reply.status == 401:
        raise AuthError(
            f"{where}: the token is invalid, revoked or read-only; check AISTACK_HETZNER_TOKEN",
            status=reply.status,
            code=named,
        )
    if reply.status == 404 and code == "not_found":
        raise Gone(f"{where}: {message}", status=reply.status, code=named)
    if code in RETRIED_CODES or reply.status == 429 or reply.status >= 500:
        raise TransientUpstreamError(
            f"{where}: {message}", status=reply.status, code=named, retry_after=_until_reset(reply)
        )
    raise PermanentUpstreamError(f"{where}: {message}", status=reply.status, code=named)


def _error_of(reply: HttpReply) -> tuple[str, str]:
    """The code and trimmed message of Hetzner's error body (§A.4); empty when it has none."""
    body = reply.json()
    error = body.get("error", {}) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        return "", trimmed(reply.text)
    return str(error.get("code", "")), trimmed(str(error.get("message", "")))


def _endpoint_missing(exc: UpstreamError) -> bool:
    """404 on a zone we just read, or 410 deprecated_api_endpoint: the path is not served."""
    return isinstance(exc, Gone) or exc.code == "deprecated_api_endpoint"


def _until_reset(reply: HttpReply) -> float | None:
    if reply.status != 429:
        return None
    reset = reply.headers.get("RateLimit-Reset")
    try:
        return max(0.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None
