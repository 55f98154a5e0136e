"""How the Dokploy fake answers over HTTP, as the real server's layers do: tRPC's JSON bodies
and error shape (code, httpStatus, zodError), the auth gate's own 401 before tRPC, Next.js's
bare text for malformed JSON, and the security headers on every answer."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import hdrs, web

from deployer.sandbox.dokploy_tables import Row

TRPC_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
}
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


# -- responses --------------------------------------------------------------------------------


def json_body(value: Any, status: int = 200) -> web.Response:
    """tRPC adapter responses: compact JSON, `Content-Type: application/json` without charset."""
    body = json.dumps(value, separators=(",", ":")).encode()
    return web.Response(status=status, body=body, headers={hdrs.CONTENT_TYPE: "application/json"})


def trpc_error(
    status: int,
    message: str,
    path: str | None = None,
    issues: list[Row] | None = None,
    retry_after: float | None = None,
) -> web.Response:
    code = TRPC_CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "BAD_REQUEST")
    data: Row = {"code": code, "httpStatus": status}
    if path is not None:
        data["path"] = path
    data["zodError"] = None
    if issues is not None:
        fields: dict[str, list[str]] = {}
        for issue in issues:
            if issue["path"]:
                fields.setdefault(str(issue["path"][0]), []).append(issue["message"])
        form = [issue["message"] for issue in issues if not issue["path"]]
        data["zodError"] = {"formErrors": form, "fieldErrors": fields}
    body: Row = {"message": message, "code": code, "data": data}
    if issues is not None:
        body["issues"] = issues
    response = json_body(body, status)
    if retry_after is not None:
        response.headers[hdrs.RETRY_AFTER] = f"{retry_after:g}"
    return response


def unauthorized() -> web.Response:
    """The auth gate answers before tRPC, through Next's res.json (hence charset and ETag)."""
    return web.Response(
        status=401,
        body=b'{"message":"Unauthorized"}',
        headers={hdrs.CONTENT_TYPE: "application/json; charset=utf-8", hdrs.ETAG: '"hwxzxeosy8q"'},
    )


class BareResponse(web.Response):
    """Next.js rejects malformed JSON with a text body and no Content-Type header at all.

    aiohttp always fills in application/octet-stream, so drop it just before the headers go out.
    """

    async def _write_headers(self) -> None:
        self.headers.popall(hdrs.CONTENT_TYPE, None)
        await super()._write_headers()


async def security_headers(_: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def health(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})
