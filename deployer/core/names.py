"""Stack names: one validator used by the CLI, the bot and the engine.

A stack name becomes a DNS label (`<name>.<suffix>`), part of a Dokploy project name and
of a Docker Swarm service name, so it must satisfy all three.
"""

from __future__ import annotations

import re

from deployer.errors import InvalidStackName

MIN_LENGTH = 2
# 40 keeps `opencode-<name>` plus the 7 characters Dokploy appends to an appName inside the
# 63 characters a Swarm service name and a DNS label allow, with room for a longer pattern.
MAX_LENGTH = 40
MAX_HOST = 253
RESERVED = frozenset(
    {
        "admin",
        "api",
        "app",
        "auth",
        "autodiscover",
        "dashboard",
        "dev",
        "dns",
        "dokploy",
        "ftp",
        "grafana",
        "imap",
        "localhost",
        "mail",
        "mx",
        "ns",
        "ns1",
        "ns2",
        "pop",
        "portal",
        "prometheus",
        "prod",
        "root",
        "smtp",
        "staging",
        "static",
        "status",
        "test",
        "traefik",
        "webmail",
        "www",
    }
)
_ALLOWED = re.compile(r"[a-z0-9-]+")


def validate_stack_name(raw: str, *, suffix: str = "") -> str:
    """Return the name if it is valid; otherwise raise InvalidStackName saying which rule broke.

    `suffix` is the domain suffix (for example `ai.example.com`): the full host
    `<name>.<suffix>` must stay within the 253 characters DNS allows.
    """
    name = raw.strip()
    for rule in (_not_empty, _lowercase, _charset, _shape, _length, _reserved):
        rule(name)
    host_length = len(name) + 1 + len(suffix) if suffix else len(name)
    if host_length > MAX_HOST:
        raise InvalidStackName(
            f"'{name}.{suffix}' would be {host_length} characters; a host name may have at "
            f"most {MAX_HOST}. Use a name of at most {MAX_HOST - 1 - len(suffix)} characters."
        )
    return name


def _not_empty(name: str) -> None:
    if not name:
        raise InvalidStackName("A stack name is required, for example 'alice'.")


def _lowercase(name: str) -> None:
    if name != name.lower():
        raise InvalidStackName(
            f"'{name}' has capital letters; stack names are lowercase: try '{name.lower()}'."
        )


def _charset(name: str) -> None:
    if not _ALLOWED.fullmatch(name):
        bad = sorted({c for c in name if not re.fullmatch(r"[a-z0-9-]", c)})
        shown = " ".join(repr(c) for c in bad)
        raise InvalidStackName(
            f"'{name}' contains {shown}; use only lowercase letters a-z, digits 0-9 and '-'."
        )


def _shape(name: str) -> None:
    if not name[0].isalpha():
        raise InvalidStackName(f"'{name}' must start with a letter (a-z), not '{name[0]}'.")
    if name.endswith("-"):
        raise InvalidStackName(f"'{name}' must not end with '-'; end it with a letter or digit.")
    if len(name) >= 4 and name[2:4] == "--":
        raise InvalidStackName(
            f"'{name}' has '--' in positions 3-4, which DNS reserves for punycode (xn--); "
            "use a single '-'."
        )


def _length(name: str) -> None:
    if len(name) < MIN_LENGTH:
        raise InvalidStackName(
            f"'{name}' is too short; a stack name has {MIN_LENGTH} to {MAX_LENGTH} characters."
        )
    if len(name) > MAX_LENGTH:
        raise InvalidStackName(
            f"'{name[:20]}...' has {len(name)} characters; a stack name has at most {MAX_LENGTH}."
        )


def _reserved(name: str) -> None:
    if name in RESERVED:
        raise InvalidStackName(
            f"'{name}' is reserved for infrastructure; pick a personal name such as 'alice'."
        )
