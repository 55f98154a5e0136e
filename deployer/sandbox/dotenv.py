"""How Dokploy turns an application's stored `env` text into the container's environment.

Dokploy keeps `env` byte for byte (recordings 99, 100) and reads it only at deploy time, in
`prepareEnvironmentVariables`: the npm `dotenv` package's `parse` (16.4.5, pinned by Dokploy)
on the service, project and environment texts, then the `${{project.X}}`,
`${{environment.X}}` and `${{X}}` references. `parse` and `expand` redo both here, so the
fake can tell a test what a container would really get.

`parse` follows dotenv 16.4.5's algorithm, including the JavaScript regular-expression rules it
leans on, which differ from Python's: `\\s` and `String.prototype.trim` know a different
whitespace set, `\\w` is ASCII only, `^`/`$` (multiline) and `.` also treat U+2028/U+2029 as
line breaks, and assigning the key `__proto__` to a plain object stores nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

# JavaScript's WhiteSpace and LineTerminator code points: what `\s` matches and trim() strips.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_SPACE = f"[{_JS_SPACE}]"
_BREAKS = "\n\r\u2028\u2029"  # where a JavaScript multiline ^ or $ may stand
_LINE_START = f"(?<![^{_BREAKS}])"
_LINE_END = f"(?![^{_BREAKS}])"
_NOT_BREAK = f"[^{_BREAKS}]"  # JavaScript's `.` without the s flag

# dotenv's LINE: optional `export`, a key, `=` (or `: `), one quoted or bare value, a comment.
_LINE = re.compile(
    rf"{_LINE_START}{_SPACE}*(?:export{_SPACE}+)?([A-Za-z0-9_.-]+)"
    rf"(?:{_SPACE}*={_SPACE}*?|:{_SPACE}+?)"
    rf"({_SPACE}*'(?:\\'|[^'])*'|{_SPACE}*\"(?:\\\"|[^\"])*\"|{_SPACE}*`(?:\\`|[^`])*`|[^#\r\n]+)?"
    rf"{_SPACE}*(?:#{_NOT_BREAK}*)?{_LINE_END}"
)
_CARRIAGE_RETURNS = re.compile(r"\r\n?")
# value.replace(/^(['"`])([\s\S]*)\1$/mg, '$2'): multiline anchors, applied per line.
_SURROUNDING_QUOTES = re.compile(rf"{_LINE_START}(['\"`])([\s\S]*)\1{_LINE_END}")
# JavaScript objects ignore a string assigned to `__proto__`, so that key never appears.
_IGNORED_KEYS = frozenset({"__proto__"})
_TRIM = re.compile(rf"\A{_SPACE}+|{_SPACE}+\Z")

_PROJECT_REF = re.compile(rf"\$\{{\{{project\.({_NOT_BREAK}*?)\}}\}}")
_ENVIRONMENT_REF = re.compile(rf"\$\{{\{{environment\.({_NOT_BREAK}*?)\}}\}}")
_ANY_REF = re.compile(rf"\$\{{\{{({_NOT_BREAK}*?)\}}\}}")


class UnresolvedReference(ValueError):
    """A `${{...}}` reference to a variable that is not defined: Dokploy throws, and the
    deployment fails, with the same message."""


def parse(text: str) -> dict[str, str]:
    """The variables dotenv 16.4.5's `parse(text)` returns; a later key overrides an earlier
    one (keeping the earlier one's place, as a JavaScript object does)."""
    parsed: dict[str, str] = {}
    for match in _LINE.finditer(_CARRIAGE_RETURNS.sub("\n", text)):
        key, value = match.group(1), _js_trim(match.group(2) or "")
        double_quoted = value.startswith('"')
        value = _SURROUNDING_QUOTES.sub(lambda m: m.group(2), value)
        if double_quoted:
            value = value.replace("\\n", "\n").replace("\\r", "\r")
        if key not in _IGNORED_KEYS:
            parsed[key] = value
    return parsed


def expand(
    variables: Mapping[str, str],
    project_env: Mapping[str, str],
    environment_env: Mapping[str, str],
) -> dict[str, str]:
    """Resolve references the way Dokploy does: `${{project.X}}` first, then
    `${{environment.X}}`, then `${{X}}` against the service's own (unresolved) variables,
    each pass on the previous pass's result. An unknown reference raises
    `UnresolvedReference` with Dokploy's message: Dokploy fails the deployment there."""
    passes = (
        (_PROJECT_REF, project_env, "project environment variable: project."),
        (_ENVIRONMENT_REF, environment_env, "environment variable: environment."),
        (_ANY_REF, variables, "service environment variable: "),
    )
    resolved: dict[str, str] = {}
    for key, value in variables.items():
        for pattern, known, what in passes:
            value = pattern.sub(_lookup(known, what), value)
        resolved[key] = value
    return resolved


def _lookup(known: Mapping[str, str], what: str) -> Callable[[re.Match[str]], str]:
    """The replacement for one pass; the value is inserted as is (no `$1` patterns)."""

    def replacement(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref not in known:
            raise UnresolvedReference(f"Invalid {what}{ref}")
        return known[ref]

    return replacement


def _js_trim(value: str) -> str:
    """String.prototype.trim: Python's str.strip() knows a different whitespace set."""
    return _TRIM.sub("", value)
