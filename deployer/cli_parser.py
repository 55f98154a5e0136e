"""The `aistack` command line: its subcommands, their arguments and options (argparse),
checked as they are read. Kept apart from cli.py, which runs them; the `--for` option and the
lifetime subcommands come from cli_lifetimes.py."""

from __future__ import annotations

import argparse
from typing import Any

from deployer.cli_lifetimes import lifetime_commands, lifetime_option

TAIL_MAX = 1000  # as in Slack: more would not be read


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aistack", description="Deploy per-user AI stacks.")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="run this one command against in-process fakes (no credentials)",
    )
    p.add_argument(
        "--log-level",
        default="error",
        help="structlog level on stderr: debug, info (one line per phase), warning, error",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("preflight", help="check Dokploy, the DNS zone and the ingress")
    deploy = sub.add_parser("deploy", help="deploy a stack and wait until it answers")
    deploy.add_argument("name")
    deploy.add_argument("--image", help="container image (default: AISTACK_STACK_IMAGE)")
    lifetime_option(deploy, "how long a new stack lives (default: AISTACK_STACK_TTL)")
    status = sub.add_parser("status", help="one stack, or all of them")
    status.add_argument("name", nargs="?")
    status.add_argument("--check", action="store_true", help="probe the stack's URL now")
    _day_two_parsers(sub)
    sub.add_parser("list", help="every stack, from Dokploy and our records")
    destroy = sub.add_parser("destroy", help="remove a stack and everything it made")
    destroy.add_argument("name")
    releases = sub.add_parser("releases", help="what a stack has run, release by release")
    releases.add_argument("name")
    rollback = sub.add_parser("rollback", help="put an earlier release back and wait for it")
    rollback.add_argument("name")
    rollback.add_argument(
        "--to",
        type=_release_number,
        metavar="N",
        help="the release to put back (default: the one before the live one)",
    )
    history = sub.add_parser("history", help="the audit trail of a stack")
    history.add_argument("name")
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    retry = sub.add_parser("retry-rollback", help="retry a failed rollback or teardown now")
    retry.add_argument("name")
    give_up = sub.add_parser("give-up", help="stop retrying a failed rollback automatically")
    give_up.add_argument("name")
    credentials = sub.add_parser(
        "credentials", help="a new password for a stack's login, printed here (stdout) once"
    )
    credentials.add_argument("name")
    gc = sub.add_parser("gc", help="find resources no record owns, and remove them")
    gc.add_argument("--yes", action="store_true", help="remove without asking")
    worker = sub.add_parser("worker", help="run queued deployments until stopped")
    worker.add_argument(
        "--exit-when-idle", action="store_true", help="stop when nothing is left to claim"
    )
    lifetime_commands(sub)
    sandbox = sub.add_parser("sandbox", help="serve the fakes on 127.0.0.1 until Ctrl-C")
    sandbox.add_argument("--deploy-delay", type=float, default=2.0)
    sub.add_parser("demo", help="a guided tour against the sandbox")
    return p


def _day_two_parsers(sub: Any) -> None:
    verbs = {
        "stop": "stop a stack's container; its data stays",
        "start": "start a stopped stack again and wait until it answers",
        "restart": "restart a stack's container and wait until it answers",
    }
    for verb, about in verbs.items():
        sub.add_parser(verb, help=about).add_argument("name")
    logs = sub.add_parser("logs", help="a stack's last container lines, secrets masked")
    logs.add_argument("name")
    logs.add_argument("--tail", type=_tail, default=100, help=f"lines, 1 to {TAIL_MAX}")
    logs.add_argument("--build", action="store_true", help="the live release's build log")


def _tail(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= TAIL_MAX:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {TAIL_MAX}, not {raw!r}")
    return int(raw)


def _release_number(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"a release number is a whole number from 1, not {raw!r}")
    return int(raw)
