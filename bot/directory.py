"""Directory: which of the configured user groups a user belongs to, cached.

usergroups.users.list is a Tier 2 method (about 20 calls a minute), so members are kept for
`ttl` seconds. A group Slack will not list (no such group, a free plan) counts as empty, and
the failure is logged: nobody is let in by mistake.
"""

from __future__ import annotations

import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from deployer import Clock

log = structlog.get_logger("aistack.bot.directory")


class Directory:
    def __init__(
        self,
        client: AsyncWebClient,
        groups: frozenset[str],
        *,
        ttl: float = 300.0,
        clock: Clock,
    ) -> None:
        self._client = client
        self._groups = groups
        self._ttl = ttl
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def groups_of(self, user: str) -> frozenset[str]:
        return frozenset([g for g in sorted(self._groups) if user in await self._members_of(g)])

    async def _members_of(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached and self._clock.monotonic() - cached[0] < self._ttl:
            return cached[1]
        try:
            reply = await self._client.usergroups_users_list(usergroup=group)
            members = frozenset(reply.get("users") or [])
        except SlackApiError as exc:
            log.warning("user group not readable", group=group, error=exc.response.get("error"))
            members = frozenset()
        self._members[group] = (self._clock.monotonic(), members)
        return members
