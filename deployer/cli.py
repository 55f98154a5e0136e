"""`aistack`: the operator CLI. preflight, deploy, status, list, destroy, stop, start, restart,
logs, history, releases, rollback, gc, worker, extend, sweep, credentials, sandbox, demo.

Exit codes: 0 done (also: nothing to do, or the operator declined); 1 the deployment failed
and was rolled back; 2 bad input or settings; 3 rollback failed, resources left behind;
4 an upstream refused or is unreachable; 5 the stack is busy with another deployment; 6 no such
stack; 141 the reader of our output went away (`| head`), as a shell reports SIGPIPE.
What each subcommand takes is cli_parser.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

from deployer.assemble import open_deployer
from deployer.cli_lifetimes import extended_lines, swept_lines
from deployer.cli_parser import parser
from deployer.console import (
    TerminalNotifier,
    render_check,
    render_history,
    render_list,
    render_logs,
    render_preflight,
    render_releases,
    render_status,
)
from deployer.core.models import Deployment
from deployer.core.states import DeploymentState, Operation
from deployer.errors import (
    AistackError,
    ConfigError,
    InvalidStackName,
    LifetimeTooLong,
    NotFound,
    PermanentError,
    QuotaExceeded,
    StackBusy,
    TransientError,
)
from deployer.logs import configure_logging
from deployer.service import Deployer
from deployer.settings import load_settings

S = DeploymentState
EXIT_FOR_STATE = {S.SUCCEEDED: 0, S.DESTROYED: 0, S.ROLLED_BACK: 1, S.ROLLBACK_FAILED: 3}
EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE  # 141, what a shell shows for `... | head`
Command = Callable[[Deployer, argparse.Namespace, TerminalNotifier], Awaitable[int]]


async def cmd_preflight(d: Deployer, _: argparse.Namespace, out: TerminalNotifier) -> int:
    _print(out, render_preflight(await d.preflight()))
    return 0


async def cmd_deploy(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    refused = d.image_refusal(d.spec(args.name, args.image).image)
    if refused is not None:  # bad input: refused before anything is recorded
        out.console.print(f"aistack: {refused}", markup=False, style="red")
        return 2
    return _exit(await d.deploy(args.name, requester=_operator(), image=args.image,
                                lifetime=args.lifetime))  # fmt: skip


async def cmd_destroy(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    return _exit(await d.destroy(args.name, requester=_operator()))


async def cmd_status(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    if args.name is None:
        if args.check:
            out.console.print("aistack: --check needs a stack name", markup=False, style="red")
            return 2
        return await cmd_list(d, args, out)
    if args.check:
        _print(out, render_check(await d.check(args.name), d.now()))
        return 0
    _print(out, render_status(await d.status(args.name), d.now()))
    return 0


async def cmd_change(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    """stop, start, restart: requested, approved and worked by the operator at once."""
    return _exit(await d.change(args.name, Operation(args.command), requester=_operator()))


async def cmd_logs(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    logs = await d.logs(args.name, tail=args.tail, build=args.build)
    for line in render_logs(logs):  # as written: no markup, no emoji codes turned into emoji
        print(line, file=out.console.file, flush=True)
    return 0


async def cmd_list(d: Deployer, _: argparse.Namespace, out: TerminalNotifier) -> int:
    _print(out, render_list(await d.list_stacks(), d.now()))
    return 0


async def cmd_history(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    events = await d.history(args.name)
    if args.json:
        for event in events:
            print(event.model_dump_json(), file=out.console.file, flush=True)
        return 0
    _print(out, render_history(events))
    return 0


async def cmd_releases(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    _print(out, render_releases(await d.releases(args.name)))
    return 0


async def cmd_rollback(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    done = await d.rollback(args.name, requester=_operator(), to=args.to)
    if done.state is S.SUCCEEDED:
        _print(out, [f"{done.stack}: back on release {done.restores} (now release {done.release})"])
    return _exit(done)


async def cmd_retry_rollback(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    done = await d.retry_now(args.name, _operator())
    return 3 if done.state is S.ROLLBACK_FAILED else 0  # rolled back or destroyed: clean


async def cmd_give_up(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    dep = await d.give_up(args.name, _operator())
    left = "; ".join(dep.leftovers) or "nothing recorded"
    _print(
        out,
        [
            f"{dep.stack}: no more automatic retries. Left behind: {left}",
            "Remove them by hand; `aistack retry-rollback` then releases the stack.",
        ],
    )
    return 0


async def cmd_gc(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    orphans = await d.orphans()
    if not orphans:
        _print(out, ["no orphans: every Dokploy project and DNS record has an owner"])
        return 0
    _print(out, ["resources that no record owns, by stack:", *(f"  {n}" for n in orphans)])
    if not args.yes and not _confirm(f"remove {len(orphans)} stack(s)? [y/N] "):
        _print(out, ["nothing removed (use --yes in scripts)"])
        return 0  # declined: nothing was asked of us, nothing failed
    results = [await d.destroy(name, requester=_operator()) for name in orphans]
    return max(_exit(r) for r in results)


async def cmd_worker(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    worker = d.worker()
    if args.exit_when_idle:
        while await worker.run_once() is not None:
            pass
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _print(out, [f"worker {worker.owner} taking jobs; SIGTERM or Ctrl-C stops it"])
    lifetimes = asyncio.create_task(d.keep_lifetimes(stop))  # expiry: stops, destroys
    await worker.run_forever(stop)
    await lifetimes
    return 0


async def cmd_extend(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    _print(out, extended_lines(await d.extend(args.name, by=_operator(), lifetime=args.lifetime)))
    return 0


async def cmd_sweep(d: Deployer, _: argparse.Namespace, out: TerminalNotifier) -> int:
    report = await d.sweep_lifetimes()
    _print(out, swept_lines(report))
    worker = d.worker()
    while await worker.run_once() is not None:  # the stops and destroys it requested
        pass
    results = [_exit(await d.get(dep.id)) for dep in (*report.stopped, *report.destroyed)]
    return max(results, default=4 if report.failed else 0)


async def cmd_credentials(d: Deployer, args: argparse.Namespace, out: TerminalNotifier) -> int:
    return _exit(await d.credentials(args.name, requester=_operator()))


COMMANDS: dict[str, Command] = {
    "preflight": cmd_preflight,
    "deploy": cmd_deploy,
    "destroy": cmd_destroy,
    "status": cmd_status,
    "list": cmd_list,
    "history": cmd_history,
    "releases": cmd_releases,
    "rollback": cmd_rollback,
    "gc": cmd_gc,
    "retry-rollback": cmd_retry_rollback,
    "give-up": cmd_give_up,
    "worker": cmd_worker,
    "stop": cmd_change,
    "start": cmd_change,
    "restart": cmd_change,
    "logs": cmd_logs,
    "extend": cmd_extend,
    "sweep": cmd_sweep,
    "credentials": cmd_credentials,
}


async def run(args: argparse.Namespace, out: TerminalNotifier) -> int:
    if args.command == "sandbox":
        return await serve_sandbox(args.deploy_delay, out)
    if args.command == "demo":
        with sandbox_installed():
            from deployer.sandbox.demo import run_demo
        return await run_demo(out)
    async with _deployer(args.sandbox, out) as deployer:
        return await COMMANDS[args.command](deployer, args, out)


@asynccontextmanager
async def _deployer(sandboxed: bool, out: TerminalNotifier) -> AsyncIterator[Deployer]:
    if not sandboxed:
        async with open_deployer(load_settings(), out) as deployer:
            yield deployer
        return
    from deployer.adapters.stores.memory import MemoryStore

    with sandbox_installed():
        from deployer.sandbox.server import Sandbox
    async with (
        Sandbox() as sandbox,
        open_deployer(sandbox.settings(), out, store=MemoryStore()) as deployer,
    ):
        yield deployer


@contextmanager
def sandbox_installed() -> Iterator[None]:
    """Wrap the sandbox's import: it is imported only when asked for, so the bot and the CLI
    against real servers never load it (nor jsonschema, which only the sandbox extra has)."""
    try:
        yield
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the sandbox needs {exc.name}, which this install lacks: "
            "pip install 'aistack[sandbox]'"
        ) from None


async def serve_sandbox(deploy_delay: float, out: TerminalNotifier) -> int:
    with sandbox_installed():
        from deployer.sandbox.server import Sandbox
    async with Sandbox(deploy_delay=deploy_delay) as sandbox:
        _print(out, ["# aistack sandbox on 127.0.0.1; point the CLI or the bot at it with:"])
        _print(out, [f"export {key}={value}" for key, value in sandbox.env().items()])
        _print(out, ["# fault knobs: POST JSON to <url>/_sandbox/faults; Ctrl-C stops"])
        await asyncio.Event().wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level)
    out = TerminalNotifier()
    try:
        return asyncio.run(run(args, out))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # print() to a closed stdout
        return _output_closed()
    except SystemExit:
        if out.console.quiet:  # rich's own answer to a closed stdout: devnull, then exit(1)
            return EXIT_OUTPUT_CLOSED
        raise
    except AistackError as exc:
        out.console.print(f"aistack: {exc}", markup=False, style="red")
        return _exit_for_error(exc)


def _exit_for_error(exc: AistackError) -> int:
    for kind, code in (
        (ConfigError, 2),
        (InvalidStackName, 2),
        (StackBusy, 5),
        (QuotaExceeded, 5),
        (LifetimeTooLong, 2),
        (NotFound, 6),
        (TransientError, 4),
        (PermanentError, 4),
    ):
        if isinstance(exc, kind):
            return code
    return 1


def _output_closed() -> int:
    """The reader of stdout is gone (`aistack history x --json | head -1`): stop quietly.

    As the Python docs advise for SIGPIPE: stdout goes to devnull, so the flush at
    interpreter exit does not fail a second time and print "Exception ignored" on stderr.
    The exit is 141, not 0: a deploy piped into `head` may have been cut short, and 141 is
    what `set -o pipefail` scripts already expect from any command whose reader left.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OUTPUT_CLOSED


def _exit(dep: Deployment) -> int:
    return EXIT_FOR_STATE.get(dep.state, 1)


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:  # no one to ask
        return False


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _print(out: TerminalNotifier, lines: list[str]) -> None:
    for line in lines:
        out.console.print(line, markup=False)


if __name__ == "__main__":
    sys.exit(main())
