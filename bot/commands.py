"""PURE: the text after `/aistack` -> a Command, or a UsageError saying what was wrong.

Slack sends everything after the command as `text` ("" for a bare `/aistack`). Words are
split on any whitespace (non-breaking spaces included); the subcommand is case-insensitive;
the stack name goes through the engine's validator so the bot and the CLI agree on it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from deployer import InvalidStackName, duration_seconds


@dataclass(frozen=True)
class Deploy:
    name: str
    image: str | None = None
    dry_run: bool = False
    lifetime: float | None = None  # --for, in seconds


@dataclass(frozen=True)
class Status:
    name: str | None = None
    check: bool = False  # probe the URL now


@dataclass(frozen=True)
class ListStacks:
    mine: bool = False


@dataclass(frozen=True)
class Destroy:
    name: str


@dataclass(frozen=True)
class History:
    name: str


@dataclass(frozen=True)
class Transfer:
    name: str
    to: str  # a Slack user id: who owns the stack after


@dataclass(frozen=True)
class Releases:
    name: str


@dataclass(frozen=True)
class Rollback:
    name: str
    to: int | None = None  # a release number; None: the one before the live one


@dataclass(frozen=True)
class Container:
    """stop, start or restart."""

    verb: str
    name: str


@dataclass(frozen=True)
class Logs:
    name: str
    tail: int = 100
    build: bool = False


@dataclass(frozen=True)
class Extend:
    name: str
    lifetime: float | None = None  # --for, in seconds; None: the default lifetime


@dataclass(frozen=True)
class Credentials:
    name: str


@dataclass(frozen=True)
class Preflight:
    pass


@dataclass(frozen=True)
class Help:
    pass


Command: TypeAlias = (
    Deploy | Status | ListStacks | Destroy | History | Transfer | Releases | Rollback | Container
    | Logs | Extend | Credentials | Preflight | Help
)  # fmt: skip


class UsageError(Exception):
    """The text is not a command: `problem` says what was wrong, `hint` what would be right."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(f"{problem} ({hint})")
        self.problem = problem
        self.hint = hint


_SYNTAX: dict[str, tuple[str, str]] = {
    "deploy": (
        "/aistack deploy <name> [--image IMG] [--for 3d] [--dry-run]",
        "deploy or upgrade a stack after approval; --dry-run only shows the plan",
    ),
    "status": (
        "/aistack status [name] [--check]",
        "one stack in detail (--check: probe its URL now), or all of them",
    ),
    "list": ("/aistack list [--mine]", "every stack, or only yours"),
    "releases": ("/aistack releases <name>", "what a stack has run, release by release"),
    "rollback": (
        "/aistack rollback <name> [--to N]",
        "put back the previous release (or release N)",
    ),
    "stop": ("/aistack stop <name>", "stop a stack's container (its data stays)"),
    "start": ("/aistack start <name>", "start a stopped stack again"),
    "restart": ("/aistack restart <name>", "restart a stack's container"),
    "logs": (
        "/aistack logs <name> [--tail N] [--build]",
        "the container's last lines (--build: the last deploy's build log), to you alone",
    ),
    "extend": ("/aistack extend <name> [--for 3d]", "push a stack's expiry further out"),
    "credentials": (
        "/aistack credentials <name>",
        "a new password for the stack's login, sent to its owner alone",
    ),
    "destroy": ("/aistack destroy <name>", "remove a stack, its domain and DNS record"),
    "history": ("/aistack history <name>", "the audit trail of a stack"),
    "transfer": (
        "/aistack transfer <name> @user",
        "give a live stack to someone (owner, approver)",
    ),
    "preflight": ("/aistack preflight", "check that Dokploy and the DNS zone answer"),
    "help": ("/aistack help", "this text"),
}
COMMANDS: tuple[str, ...] = tuple(_SYNTAX)
_WIDTH = max(len(line) for line, _ in _SYNTAX.values())
USAGE: str = "\n".join(f"{line:<{_WIDTH}}  {about}" for line, about in _SYNTAX.values())

_FLAGS = {"deploy": {"--dry-run"}, "list": {"--mine"}, "status": {"--check"}, "logs": {"--build"}}
_VALUED = {
    "deploy": {"--image", "--for"},
    "rollback": {"--to"},
    "logs": {"--tail"},
    "extend": {"--for"},
}
CONTAINER_VERBS = ("stop", "start", "restart")
TAIL_MAX = 1000
_IMAGE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]{1,5})?/)?"  # registry
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # repo
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # tag
    r"(?:@sha256:[a-f0-9]{64})?"  # digest
)
# A person as Slack sends a picked mention (`<@U123>`, `<@U123|name>`), or a pasted member ID.
_USER = re.compile(r"<@(?P<mention>[UW][A-Z0-9]{2,})(?:\|[^<>]*)?>|(?P<id>[UW][A-Z0-9]{2,})")
_IMAGE_MAX = 255
_IMAGE_EXAMPLE = "ghcr.io/sst/opencode:latest"
_SHOWN_MAX = 40
# Slack clients may turn a typed "--" into an em or en dash.
_DASHES = ("\u2014", "\u2013")


def usage_of(command: str) -> str:
    """The usage line of one subcommand (the whole USAGE for an unknown one)."""
    return _SYNTAX[command][0] if command in _SYNTAX else USAGE


def parse(text: str, *, validate_name: Callable[[str], str]) -> Command:
    """Turn the slash command's text into a Command; raise UsageError when it is not one."""
    words = text.split()
    if not words:
        return Help()
    verb, args = words[0].lower(), words[1:]
    if verb not in _SYNTAX:
        raise UsageError(f"unknown command {_shown(words[0])}", _suggest(verb))
    if verb == "help":
        return Help()
    options, positionals = _split(verb, args)
    return _build(verb, options, positionals, validate_name)


def _build(
    verb: str,
    options: dict[str, str | None],
    positionals: list[str],
    validate_name: Callable[[str], str],
) -> Command:
    if verb == "list":
        return _list(options, positionals)
    if verb == "preflight":
        _no_more(verb, positionals, after_name=False)
        return Preflight()
    if verb == "status":
        _no_more(verb, positionals[1:], after_name=True)
        named = _name(verb, positionals[0], validate_name) if positionals else None
        if named is None and "--check" in options:
            raise UsageError("--check needs a stack name", usage_of(verb))
        return Status(named, "--check" in options)
    if verb == "transfer":
        return _transfer(positionals, validate_name)
    name = _required_name(verb, positionals, validate_name)
    return _named(verb, name, options)


def _named(verb: str, name: str, options: dict[str, str | None]) -> Command:
    """The commands of one stack, by name, with their options already split off."""
    lifetime = _lifetime(verb, options.get("--for"))
    if verb == "deploy":
        image = options.get("--image")
        image = _image(image) if image is not None else None
        return Deploy(name, image, "--dry-run" in options, lifetime)
    if verb in CONTAINER_VERBS:
        return Container(verb, name)
    simple: dict[str, Callable[[str], Command]] = {
        "destroy": Destroy, "history": History, "releases": Releases, "credentials": Credentials,
    }  # fmt: skip
    if verb in simple:
        return simple[verb](name)
    if verb == "rollback":
        to = options.get("--to")
        return Rollback(name, None if to is None else _count(verb, "--to", to, 1, 100_000))
    if verb == "logs":
        tail = options.get("--tail")
        lines = 100 if tail is None else _count(verb, "--tail", tail, 1, TAIL_MAX)
        return Logs(name, lines, "--build" in options)
    return Extend(name, lifetime)


def _lifetime(verb: str, raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return duration_seconds(raw)
    except ValueError as exc:
        raise UsageError(f"--for: {exc}", usage_of(verb)) from None


def _count(verb: str, option: str, raw: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise UsageError(f"{option} takes a whole number from {low} to {high}, not {_shown(raw)}",
                         usage_of(verb))  # fmt: skip
    return int(raw)


def _list(options: dict[str, str | None], positionals: list[str]) -> ListStacks:
    mine = "--mine" in options
    if positionals and positionals[0].lower() == "mine":
        mine, positionals = True, positionals[1:]
    _no_more("list", positionals, after_name=False)
    return ListStacks(mine=mine)


def _transfer(positionals: list[str], validate_name: Callable[[str], str]) -> Transfer:
    if len(positionals) < 2:
        raise UsageError("transfer needs a stack name and who gets it", usage_of("transfer"))
    if positionals[2:]:
        problem = f"unexpected argument {_shown(positionals[2])} after the person"
        raise UsageError(problem, usage_of("transfer"))
    return Transfer(_name("transfer", positionals[0], validate_name), _user(positionals[1]))


def _user(raw: str) -> str:
    """A Slack user id from a mention or a member ID; a bare @name cannot be resolved (the
    app may not read the member list), so it is refused saying what works."""
    found = _USER.fullmatch(raw)
    if found is None:
        raise UsageError(
            f"{_shown(raw)} is not a Slack user I can resolve; pick them from Slack's @ list, "
            "or paste their member ID (profile → ⋯ → Copy member ID)",
            usage_of("transfer"),
        )
    return found.group("mention") or found.group("id")


def _split(verb: str, args: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """Options (`--flag`, `--key VALUE`, `--key=VALUE`) apart from the positional words."""
    options: dict[str, str | None] = {}
    positionals: list[str] = []
    rest = iter(args)
    for word in rest:
        if not word.startswith(("-", *_DASHES)):
            positionals.append(word)
            continue
        key, eq, value = _dashed(word).partition("=")
        key = key.lower()
        if key in options:
            raise UsageError(f"{_shown(key)} is given twice", usage_of(verb))
        if key in _VALUED.get(verb, set()):
            value = value if eq else next(rest, "")
            if not value or value.startswith(("-", *_DASHES)):
                raise UsageError(f"{_shown(key)} needs a value", usage_of(verb))
            options[key] = value
        elif key in _FLAGS.get(verb, set()):
            if eq:
                raise UsageError(f"{_shown(key)} takes no value", usage_of(verb))
            options[key] = None
        else:
            raise UsageError(f"unknown option {_shown(word)}", usage_of(verb))
    return options, positionals


def _dashed(word: str) -> str:
    for dash in _DASHES:
        if word.startswith(dash):
            return "--" + word[len(dash) :]
    return word


def _required_name(verb: str, positionals: list[str], validate_name: Callable[[str], str]) -> str:
    if not positionals:
        raise UsageError(f"{verb} needs a stack name", usage_of(verb))
    _no_more(verb, positionals[1:], after_name=True)
    return _name(verb, positionals[0], validate_name)


def _no_more(verb: str, extra: list[str], *, after_name: bool) -> None:
    if extra:
        where = " after the name" if after_name else ""
        raise UsageError(f"unexpected argument {_shown(extra[0])}{where}", usage_of(verb))


def _name(verb: str, raw: str, validate_name: Callable[[str], str]) -> str:
    if "<" in raw or ">" in raw:
        raise UsageError(
            f"{_shown(raw)} is a Slack mention or link, not a stack name; "
            "type the name as plain text, for example 'alice'",
            usage_of(verb),
        )
    try:
        return validate_name(raw)
    except InvalidStackName as exc:
        raise UsageError(str(exc), usage_of(verb)) from None


def _image(raw: str) -> str:
    if "<" in raw or ">" in raw:
        problem = (
            f"the image {_shown(raw)} arrived as a Slack mention or link; type it as plain text"
        )
    elif any(c in raw for c in "\"'`\u2018\u2019\u201c\u201d"):
        problem = f"the image {_shown(raw)} has quotes or backticks; type it without them"
    elif len(raw) > _IMAGE_MAX:
        problem = f"the image reference has {len(raw)} characters; at most {_IMAGE_MAX} allowed"
    elif not _IMAGE.fullmatch(raw):
        problem = f"{_shown(raw)} is not an image reference"
    else:
        return raw
    raise UsageError(
        problem, f"use [registry/]repo[:tag|@sha256:digest], for example {_IMAGE_EXAMPLE}"
    )


def _suggest(verb: str) -> str:
    commands = "commands: " + ", ".join(COMMANDS)
    close = difflib.get_close_matches(verb, COMMANDS, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? {commands}" if close else f"{commands}; see /aistack help"


def _shown(word: str) -> str:
    """A user's word quoted for a message, cut short so a pasted essay stays readable."""
    if len(word) > _SHOWN_MAX:
        word = word[: _SHOWN_MAX - 1] + "…"
    return f"'{word}'"
