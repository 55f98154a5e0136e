"""HttpProbe: is the stack answering yet? One GET on its URL, judged by status.

A resolve override (like `curl --resolve`, plus an optional port as in `--connect-to`)
sends the request to the ingress before DNS has propagated, and lets the sandbox ingress be
probed for real over HTTP. The Host header (and TLS SNI) stay the stack's own host. A stack
behind a login is probed with aistack's own (`login`, core/probe_login.py): without it Traefik
answers 401 whether the container runs or not.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from deployer.adapters.http import broken_off
from deployer.ports import ProbeResult


class _PinnedResolver(AbstractResolver):
    """Resolves every host to one address: the ingress."""

    def __init__(self, ip: str) -> None:
        self._ip = ip

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=self._ip,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


class HttpProbe:
    def __init__(
        self,
        *,
        path: str = "/",
        accepted: Collection[int] = (200,),
        timeout: float = 10.0,
        resolve: str | None = None,
        scheme: str = "https",
        login: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> None:
        self._path = path
        self._login = login
        self._accepted = frozenset(accepted)
        self._scheme = scheme
        self._ip, self._port = _split_resolve(resolve)
        connector = aiohttp.TCPConnector(
            resolver=_PinnedResolver(self._ip) if self._ip else None, force_close=True
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
        )

    async def close(self) -> None:
        await self._session.close()

    def target(self, url: str) -> str:
        """The URL actually requested: the stack's host, our scheme, the override port."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{self._port}" if self._port else host
        return urlunsplit((self._scheme, netloc, self._path, "", ""))

    async def check(self, url: str) -> ProbeResult:
        target = self.target(url)
        host = urlsplit(url).hostname or ""
        try:
            async with self._session.get(
                target, headers=self._headers(host), allow_redirects=False
            ) as response:
                return self._judge(response.status)
        except aiohttp.ClientConnectorCertificateError:
            return ProbeResult(False, "TLS certificate not ready yet")
        except aiohttp.ClientSSLError:
            return ProbeResult(False, "TLS not ready yet")
        except aiohttp.ClientConnectorError as exc:
            return ProbeResult(False, f"connection refused ({_reason(exc)})")
        except aiohttp.ClientError as exc:
            return ProbeResult(False, f"no answer ({broken_off(exc)})")
        except TimeoutError:
            return ProbeResult(False, "no answer in time")

    def _headers(self, host: str) -> dict[str, str]:
        login = self._login(host) if self._login is not None else None
        if login is None:
            return {"Host": host}
        token = base64.b64encode(":".join(login).encode()).decode()
        return {"Host": host, "Authorization": f"Basic {token}"}

    def _judge(self, status: int) -> ProbeResult:
        if status in self._accepted:
            return ProbeResult(True, f"HTTP {status}")
        if status >= 500:
            return ProbeResult(False, f"HTTP {status}: the stack is not up yet")
        return ProbeResult(False, f"HTTP {status}: not an accepted status")


def _split_resolve(resolve: str | None) -> tuple[str | None, int | None]:
    if not resolve:
        return None, None
    ip, _, port = resolve.partition(":")
    return ip, int(port) if port else None


def _reason(exc: Any) -> str:
    return str(getattr(exc, "os_error", "") or type(exc).__name__)
