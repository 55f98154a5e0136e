"""bot.commands: slash command text -> Command, or a UsageError with a problem and a hint."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import (
    COMMANDS,
    USAGE,
    Command,
    Container,
    Credentials,
    Deploy,
    Destroy,
    Extend,
    Help,
    History,
    ListStacks,
    Logs,
    Preflight,
    Releases,
    Rollback,
    Status,
    Transfer,
    UsageError,
    parse,
    usage_of,
)
from deployer.core.names import validate_stack_name

DIGEST = "sha256:" + "a" * 64
DEPLOY_USAGE = "/aistack deploy <name> [--image IMG] [--for 3d] [--dry-run]"


def run(text: str) -> Command:
    return parse(text, validate_name=validate_stack_name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("   ", Help()),
        ("\u00a0", Help()),
        ("help", Help()),
        ("HELP", Help()),
        ("help deploy", Help()),
        ("deploy alice", Deploy("alice")),
        ("Deploy alice", Deploy("alice")),
        ("  deploy   alice  ", Deploy("alice")),
        ("deploy\u00a0alice", Deploy("alice")),
        ("deploy alice --dry-run", Deploy("alice", dry_run=True)),
        ("deploy --dry-run alice", Deploy("alice", dry_run=True)),
        ("deploy alice --DRY-RUN", Deploy("alice", dry_run=True)),
        ("deploy alice --image nginx", Deploy("alice", image="nginx")),
        ("deploy alice --image=nginx:1.27", Deploy("alice", image="nginx:1.27")),
        ("deploy --image ghcr.io/sst/opencode:0.3 bob", Deploy("bob", "ghcr.io/sst/opencode:0.3")),
        ("deploy alice --image localhost:5000/a/b", Deploy("alice", "localhost:5000/a/b")),
        (f"deploy alice --image repo@{DIGEST}", Deploy("alice", f"repo@{DIGEST}")),
        (f"deploy alice --image r.io/x:1@{DIGEST}", Deploy("alice", f"r.io/x:1@{DIGEST}")),
        ("deploy alice --image nginx --dry-run", Deploy("alice", "nginx", dry_run=True)),
        ("deploy alice \u2014image nginx", Deploy("alice", "nginx")),  # Slack's autocorrected --
        ("deploy alice \u2014dry-run", Deploy("alice", dry_run=True)),
        ("status", Status()),
        ("status alice", Status("alice")),
        ("STATUS alice", Status("alice")),
        ("list", ListStacks()),
        ("list mine", ListStacks(mine=True)),
        ("list --mine", ListStacks(mine=True)),
        ("destroy alice", Destroy("alice")),
        ("history alice", History("alice")),
        ("preflight", Preflight()),
        ("Preflight", Preflight()),
    ],
)
def test_parses(text: str, expected: Command) -> None:
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "problem", "hint"),
    [
        ("deplyo alice", "unknown command 'deplyo'", "did you mean 'deploy'?"),
        ("stauts", "unknown command 'stauts'", "did you mean 'status'?"),
        ("histroy alice", "unknown command 'histroy'", "did you mean 'history'?"),
        ("frobnicate", "unknown command 'frobnicate'", "commands: deploy, status, list"),
        ("deploy", "deploy needs a stack name", DEPLOY_USAGE),
        ("deploy --dry-run", "deploy needs a stack name", DEPLOY_USAGE),
        ("destroy", "destroy needs a stack name", "/aistack destroy <name>"),
        ("history", "history needs a stack name", "/aistack history <name>"),
        ("deploy alice --image", "'--image' needs a value", DEPLOY_USAGE),
        ("deploy alice --image=", "'--image' needs a value", DEPLOY_USAGE),
        ("deploy alice --image --dry-run", "'--image' needs a value", DEPLOY_USAGE),
        ("deploy alice --image a --image b", "'--image' is given twice", DEPLOY_USAGE),
        ("deploy alice --dry-run=yes", "'--dry-run' takes no value", DEPLOY_USAGE),
        ("deploy alice x", "unexpected argument 'x' after the name", DEPLOY_USAGE),
        ("destroy alice bob", "unexpected argument 'bob' after the name", "/aistack destroy"),
        ("status alice bob", "unexpected argument 'bob' after the name", "/aistack status"),
        ("list everything", "unexpected argument 'everything'", "/aistack list [--mine]"),
        ("preflight now", "unexpected argument 'now'", "/aistack preflight"),
        ("deploy alice --force", "unknown option '--force'", DEPLOY_USAGE),
        ("destroy alice --dry-run", "unknown option '--dry-run'", "/aistack destroy <name>"),
        ("status --mine", "unknown option '--mine'", "/aistack status [name] [--check]"),
        ("deploy alice -f", "unknown option '-f'", DEPLOY_USAGE),
    ],
)
def test_usage_errors(text: str, problem: str, hint: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(text)
    assert caught.value.problem == problem
    assert hint in caught.value.hint


@pytest.mark.parametrize(
    ("text", "problem_starts"),
    [
        ("deploy Alice", "'Alice' has capital letters; stack names are lowercase: try 'alice'."),
        ("deploy a", "'a' is too short"),
        ("deploy 1alice", "'1alice' must start with a letter"),
        ("deploy admin", "'admin' is reserved"),
        ("status al_ice", "'al_ice' contains '_'"),
        ("destroy bob-", "'bob-' must not end with '-'"),
    ],
)
def test_name_rules_come_from_the_validator(text: str, problem_starts: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(text)
    assert caught.value.problem.startswith(problem_starts)
    assert caught.value.hint == usage_of(text.split()[0])


@pytest.mark.parametrize(
    "text",
    ["deploy <@U123>", "deploy <@U123|alice>", "status <http://x|x>", "destroy <#C1|ops>"],
)
def test_mentions_and_links_are_refused_as_names(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(text)
    assert "Slack mention or link, not a stack name" in caught.value.problem


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("x<!channel>", "arrived as a Slack mention or link"),
        ("<http://ghcr.io/x|ghcr.io/x>", "arrived as a Slack mention or link"),
        ('"nginx"', "has quotes or backticks"),
        ("`nginx`", "has quotes or backticks"),
        ("\u201cnginx\u201d", "has quotes or backticks"),
        ("Nginx", "is not an image reference"),
        ("nginx:", "is not an image reference"),
        ("nginx@sha256:abc", "is not an image reference"),
        ("a//b", "is not an image reference"),
        ("nginx;rm", "is not an image reference"),
        ("a" * 300, "at most 255 allowed"),
    ],
)
def test_bad_images(image: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(f"deploy alice --image {image}")
    assert problem in caught.value.problem
    assert "[registry/]repo[:tag|@sha256:digest]" in caught.value.hint


def test_long_words_are_shortened_in_the_problem() -> None:
    with pytest.raises(UsageError) as caught:
        run("x" * 500)
    assert len(caught.value.problem) < 80
    assert caught.value.problem.endswith("…'")


def test_the_validators_result_is_used() -> None:
    assert parse("deploy alice", validate_name=lambda n: n + "-2") == Deploy("alice-2")


def test_usage_lists_every_subcommand() -> None:
    lines = USAGE.splitlines()
    assert len(lines) == len(COMMANDS)
    for command, line in zip(COMMANDS, lines, strict=True):
        assert line.startswith(usage_of(command))
        assert len(line) > len(usage_of(command)) + 5  # carries an explanation


def test_usage_error_is_an_exception_with_both_parts() -> None:
    error = UsageError("p", "h")
    assert (error.problem, error.hint) == ("p", "h")
    assert "p" in str(error)


words = st.sampled_from(
    [*COMMANDS, "mine", "--image", "--image=", "--dry-run", "--mine", "-x", "alice", "<@U1>",
     "--for", "3d", "--to", "2", "--tail", "--build", "--check"]
)  # fmt: skip


@given(st.text() | st.lists(words | st.text(max_size=8)).map(" ".join))
def test_any_text_is_a_command_or_a_usage_error(text: str) -> None:
    try:
        result = parse(text, validate_name=validate_stack_name)
    except UsageError as error:
        assert error.problem.strip()
        assert error.hint.strip()
    else:
        assert isinstance(result, Command.__args__)  # type: ignore[attr-defined]


TRANSFER_USAGE = "/aistack transfer <name> @user"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("transfer alice <@U0BOB>", Transfer("alice", "U0BOB")),
        ("transfer alice <@U0BOB|bob>", Transfer("alice", "U0BOB")),  # a mention Slack escaped
        ("Transfer alice W0BOB", Transfer("alice", "W0BOB")),  # a pasted member ID
    ],
)
def test_transfer_names_a_stack_and_a_slack_user(text: str, expected: Command) -> None:
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("transfer", "transfer needs a stack name and who gets it"),
        ("transfer alice", "transfer needs a stack name and who gets it"),
        ("transfer alice @bob", "'@bob' is not a Slack user I can resolve"),
        ("transfer alice <!here>", "'<!here>' is not a Slack user I can resolve"),
        ("transfer alice <@U0BOB> now", "unexpected argument 'now' after the person"),
        ("transfer <@U0BOB> alice", "'<@U0BOB>' is a Slack mention or link, not a stack name"),
    ],
)
def test_transfer_usage_errors(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(text)
    assert caught.value.problem.startswith(problem)
    assert TRANSFER_USAGE in caught.value.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploy alice --for 3d", Deploy("alice", lifetime=3 * 86400.0)),
        (
            "deploy alice --image nginx:1 --for=36h",
            Deploy("alice", "nginx:1", lifetime=36 * 3600.0),
        ),
        ("status alice --check", Status("alice", check=True)),
        ("releases alice", Releases("alice")),
        ("rollback alice", Rollback("alice")),
        ("rollback alice --to 3", Rollback("alice", 3)),
        ("stop alice", Container("stop", "alice")),
        ("START alice", Container("start", "alice")),
        ("restart alice", Container("restart", "alice")),
        ("logs alice", Logs("alice", 100, False)),
        ("logs alice --tail 20 --build", Logs("alice", 20, True)),
        ("extend alice", Extend("alice")),
        ("extend alice --for 2w", Extend("alice", 14 * 86400.0)),
        ("credentials alice", Credentials("alice")),
    ],
)
def test_the_lifecycle_commands(text: str, expected: Command) -> None:
    assert parse(text, validate_name=validate_stack_name) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("deploy alice --for 3x", "--for: '3x' is not a duration: use 3d, 36h, 90m or 2w"),
        ("deploy alice --for 0d", "--for: '0d' is not a duration"),
        ("status --check", "--check needs a stack name"),
        ("rollback alice --to two", "--to takes a whole number from 1 to 100000, not 'two'"),
        ("logs alice --tail 0", "--tail takes a whole number from 1 to 1000, not '0'"),
        ("logs alice --tail 5000", "--tail takes a whole number from 1 to 1000, not '5000'"),
        ("stop", "stop needs a stack name"),
        ("restart alice bob", "unexpected argument 'bob' after the name"),
        ("credentials alice --for 3d", "unknown option '--for'"),
    ],
)
def test_lifecycle_usage_errors_say_what_was_wrong(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse(text, validate_name=validate_stack_name)
    assert raised.value.problem.startswith(problem)
