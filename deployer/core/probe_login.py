"""aistack's own login on a stack's URL, for its probe: the health check, the wait for a stop
and `status --check`. Pure.

Traefik's basicAuth middleware answers 401 to a request without a login before it looks for
a container, so a stack that runs, one that is stopped and one whose container never answers
all look alike to a probe without one. The probe's password is derived from the host under a
key aistack already holds (the Dokploy API key), so it is stored nowhere: whoever can compute
it can read every login from Dokploy in clear anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PROBE_USER = "aistack-probe"


def probe_password(key: str, host: str) -> str:
    """The probe's password on `host`: HMAC-SHA256, URL-safe, 43 characters."""
    digest = hmac.new(key.encode(), f"aistack probe login {host}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")
