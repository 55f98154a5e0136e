"""A stack's environment written as the dotenv text Dokploy stores and parses at deploy time.

Dokploy keeps `application.env` byte for byte and only at deploy time reads it with the npm
`dotenv` package's `parse` (16.4.5), then expands `${{...}}` references (see
`deployer/sandbox/dotenv.py`, which redoes both). `to_dotenv` quotes each value so that the
container gets it back exactly; `unrepresentable` says why a pair cannot make that trip.

What dotenv 16.4.5 can carry, per quoting style (no style has an escape for its own quote):

* `'...'` and `` `...` ``: anything but that quote and a carriage return (the parser turns
  every `\\r` and `\\r\\n` of the text into `\\n` before it reads a line);
* `"..."`: anything but `"` and the two-character sequences `\\n` and `\\r`, which it turns into
  a newline and a carriage return; a real carriage return is written as `\\r`;
* no style: a value ending in a backslash, read as escaping the closing quote (the match then
  runs on into later lines).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from deployer.errors import PermanentError

KEY = re.compile(r"[A-Za-z0-9_.-]+")  # dotenv's `[\w.-]+`, ASCII as in JavaScript
REFERENCE = "${{"
# In the order tried: single quotes first (nothing is decoded inside them), double quotes
# last (they decode \n and \r).
QUOTES = {"'": "single quotes", "`": "backticks", '"': "double quotes"}


def to_dotenv(env: Mapping[str, str]) -> str | None:
    """One `KEY=<quoted value>` line per pair; None for an empty environment. A pair that
    cannot arrive byte for byte raises PermanentError naming the key (never the value)."""
    lines = []
    for key, value in env.items():
        reason = unrepresentable(key, value)
        if reason is not None:
            raise PermanentError(f"environment variable {key!r} {reason}")
        lines.append(f"{key}={_quoted(value)}")
    return "\n".join(lines) or None


def unrepresentable(key: str, value: str) -> str | None:
    """Why Dokploy cannot pass this pair to the container unchanged (one line that names
    no part of the value), or None when `to_dotenv` can write it."""
    if not KEY.fullmatch(key):
        return "is not a key dotenv reads: use only letters, digits, '_', '.' and '-'"
    if key == "__proto__":
        return "is a key that Dokploy's JavaScript dotenv parser drops"
    if REFERENCE in value:
        return "has '${{' in its value, which Dokploy expands as a variable reference"
    if "\0" in value:
        return "has a NUL character in its value, which no process environment can hold"
    if not _is_unicode(value):
        return "has a value that is not valid Unicode text (a lone surrogate)"
    if value.endswith("\\"):
        return "has a value ending in a backslash, which dotenv reads as escaping the quote"
    if _quoted(value) is None:
        return "has a value no dotenv quoting carries: " + ", ".join(
            f"{name} fail on {_blocker(quote, value)}" for quote, name in QUOTES.items()
        )
    return None


def _quoted(value: str) -> str | None:
    """The value in the first quoting style that carries it, or None."""
    for quote in QUOTES:
        if _carries(quote, value):
            body = value.replace("\r", "\\r") if quote == '"' else value
            return f"{quote}{body}{quote}"
    return None


def _carries(quote: str, value: str) -> bool:
    if quote in value or value.endswith("\\"):
        return False
    if quote == '"':
        return "\\n" not in value and "\\r" not in value
    return "\r" not in value


def _blocker(quote: str, value: str) -> str:
    """What stops one quoting style, in words that show no part of the value."""
    if quote in value:
        return f"its {quote}"
    return "a literal \\n or \\r" if quote == '"' else "a carriage return"


def _is_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
