"""Stack names: one validator used by the CLI, the bot and the engine.

A stack name becomes a DNS label (`<name>.<suffix>`), part of a Dokploy project name and
of a Docker Swarm service name, so it must satisfy all three.
"""

from __future__ import annotations

import re
import unicodedata

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
_NOT_ALLOWED_RUN = re.compile(r"[^a-z0-9]+")
_BEFORE_FIRST_LETTER = re.compile(r"^[^a-z]+")


def validate_stack_name(raw: str, *, suffix: str = "") -> str:
    """Return the name if it is valid; otherwise raise InvalidStackName saying which rule broke
    and, when one can be made, a valid name to try instead.

    `suffix` is the domain suffix (for example `ai.example.com`): the full host
    `<name>.<suffix>` must stay within the 253 characters DNS allows.
    """
    name = raw.strip()
    problem = _problem(name, suffix)
    if problem is None:
        return name
    suggestion = suggest_stack_name(name, suffix=suffix)
    hint = "." if suggestion is None else f": try '{suggestion}'."
    raise InvalidStackName(problem + hint)


def suggest_stack_name(raw: str, *, suffix: str = "") -> str | None:
    """A valid name made from `raw` (lowercased, accents dropped, other characters turned into
    single '-', trimmed to the allowed start, end and length), or None when none can be made.

    The candidate goes through the same rules as any name: a suggestion that would be refused
    in turn sends the user round in circles, so it is better to suggest nothing.
    """
    folded = unicodedata.normalize("NFKD", raw.strip()).lower()
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    name = _BEFORE_FIRST_LETTER.sub("", _NOT_ALLOWED_RUN.sub("-", plain))
    longest = min(MAX_LENGTH, MAX_HOST - 1 - len(suffix)) if suffix else MAX_LENGTH
    name = name[: max(longest, 0)].rstrip("-")
    return name if _problem(name, suffix) is None else None


def _problem(name: str, suffix: str) -> str | None:
    """The first rule `name` breaks, as a sentence without its full stop; None if it is valid."""
    for rule in (_not_empty, _lowercase, _charset, _shape, _length, _reserved):
        if (problem := rule(name)) is not None:
            return problem
    return _host_length(name, suffix)


def _not_empty(name: str) -> str | None:
    return None if name else "A stack name is required, for example 'alice'"


def _lowercase(name: str) -> str | None:
    if name == name.lower():
        return None
    return f"'{name}' has capital letters; stack names are lowercase"


def _charset(name: str) -> str | None:
    if _ALLOWED.fullmatch(name):
        return None
    bad = sorted({c for c in name if not re.fullmatch(r"[a-z0-9-]", c)})
    shown = " ".join(repr(c) for c in bad)
    return f"'{name}' contains {shown}; use only lowercase letters a-z, digits 0-9 and '-'"


def _shape(name: str) -> str | None:
    if not name[0].isalpha():
        return f"'{name}' must start with a letter (a-z), not '{name[0]}'"
    if name.endswith("-"):
        return f"'{name}' must not end with '-'; end it with a letter or digit"
    if len(name) >= 4 and name[2:4] == "--":
        return (
            f"'{name}' has '--' in positions 3-4, which DNS reserves for punycode (xn--); "
            "use a single '-'"
        )
    return None


def _length(name: str) -> str | None:
    if len(name) < MIN_LENGTH:
        return f"'{name}' is too short; a stack name has {MIN_LENGTH} to {MAX_LENGTH} characters"
    if len(name) > MAX_LENGTH:
        return f"'{name[:20]}...' has {len(name)} characters; a stack name has at most {MAX_LENGTH}"
    return None


def _reserved(name: str) -> str | None:
    if name not in RESERVED:
        return None
    return f"'{name}' is reserved for infrastructure; pick a personal name such as 'alice'"


def _host_length(name: str, suffix: str) -> str | None:
    host_length = len(name) + 1 + len(suffix) if suffix else len(name)
    if host_length <= MAX_HOST:
        return None
    return (
        f"'{name}.{suffix}' would be {host_length} characters; a host name may have at "
        f"most {MAX_HOST}. Use a name of at most {MAX_HOST - 1 - len(suffix)} characters"
    )
