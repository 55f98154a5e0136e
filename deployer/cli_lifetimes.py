"""The CLI's part for a stack's lifetime: the `--for` option (deploy, extend), the `extend`
and `sweep` subcommands, and what they print. Kept apart from cli.py, which runs them."""

from __future__ import annotations

import argparse

from deployer.core.lifetime import EXAMPLE, duration_seconds, when
from deployer.expiry import SweepReport
from deployer.ports import LiveStack


def lifetime_option(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--for", dest="lifetime", type=_duration, metavar="DURATION",
                         help=f"{what}; {EXAMPLE}, at most AISTACK_STACK_TTL_MAX")  # fmt: skip


def lifetime_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    extend = sub.add_parser("extend", help="a live stack expires later (now + --for)")
    extend.add_argument("name")
    lifetime_option(extend, "from now (default: AISTACK_STACK_TTL)")
    sub.add_parser(
        "sweep", help="remind, stop expired stacks, destroy those stopped past the grace; "
        "then run what it requested"
    )  # fmt: skip


def _duration(text: str) -> float:
    try:
        return duration_seconds(text)
    except ValueError as exc:  # argparse says it with the usage, exit 2
        raise argparse.ArgumentTypeError(str(exc)) from None


def extended_lines(live: LiveStack) -> list[str]:
    stopped = f"; it is stopped (since {when(live.stopped_at)})" if live.stopped_at else ""
    expires = when(live.expires_at) if live.expires_at else "never"
    return [f"{live.stack} now expires {expires}{stopped}"]


def swept_lines(report: SweepReport) -> list[str]:
    lines = [f"reminded the owner of {stack}'s expiry" for stack in report.reminded]
    lines += [f"{dep.stack}: {dep.operation} requested"
              for dep in (*report.stopped, *report.destroyed)]  # fmt: skip
    lines += [f"{stack}: busy with another operation; the next sweep looks again"
              for stack in report.busy]  # fmt: skip
    lines += [f"{stack}: not handled (see the log); the next sweep tries again"
              for stack in report.failed]  # fmt: skip
    return lines or ["nothing due: no reminder, no stop, no destroy"]
