"""The HTTP boundary shared by the adapters: one session per upstream, aiohttp errors
translated into the aistack error tree, bodies parsed only when there is one."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from pydantic import BaseModel, ConfigDict

from deployer.errors import TransientError

MAX_ERROR_TEXT = 200


class UpstreamModel(BaseModel):
    """A response body as we read it: the fields we use; anything else the upstream adds is
    ignored, so a new server version does not break us."""

    model_config = ConfigDict(extra="ignore")


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    def json(self) -> Any:
        """The parsed body; an empty body (Dokploy's deploy answer) is None."""
        if not self.text.strip():
            return None
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def new_session(timeout: float, headers: Mapping[str, str]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout), headers=dict(headers)
    )


async def send(
    session: aiohttp.ClientSession,
    upstream: str,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Any = None,
) -> HttpReply:
    """One request; connection failures and timeouts become TransientError."""
    try:
        async with session.request(method, url, params=params, json=body) as response:
            text = await response.text()
            return HttpReply(response.status, response.headers, text)
    except TimeoutError:
        raise TransientError(f"{upstream}: no answer in time ({method} {_path(url)})") from None
    except aiohttp.ClientError as exc:
        raise TransientError(
            f"{upstream}: connection failed ({method} {_path(url)}): {type(exc).__name__}"
        ) from None


def trimmed(text: str) -> str:
    """Upstream error text, shortened: it may echo SQL and its parameters (Dokploy 500s)."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_TEXT else text[:MAX_ERROR_TEXT] + "..."


def _path(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
