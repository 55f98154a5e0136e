"""The env text's round trip: written by the client, stored by Dokploy, parsed at deploy time.

`parse` is held to dotenv 16.4.5 (the table's expectations were checked against that package
offline, and recording 99's against index.md finding 5); `to_dotenv` is held to `parse`; and
the fake's deploy is held to both, through the real client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import SecretStr

from deployer.adapters.dokploy import DokployPaas
from deployer.adapters.dotenv import to_dotenv, unrepresentable
from deployer.adapters.resilience import RetryPolicy, Upstream
from deployer.errors import PermanentError
from deployer.sandbox.dotenv import UnresolvedReference, expand, parse
from deployer.sandbox.server import API_KEY, Sandbox
from deployer.testing import RecordedSleeps
from tests import specs

RECORDED = specs.require("dokploy-recorded") / "dokploy-recorded"

# Recording 99's text and what dotenv 16.4.5 makes of it (index.md, finding 5).
RECORDED_99 = {
    "A": "abc #def",
    "B": "plain value",
    "C": "single",
    "D": "line1\nline2",
    "E": "x\ny",
    "F": "value",
}

PARSE_TABLE = [
    ("export A=1", {"A": "1"}),
    ("A: b", {"A": "b"}),  # a colon and a space also separate
    ("A:b", {}),
    ("A=1\r\nB=2\rC=3", {"A": "1", "B": "2", "C": "3"}),  # CR and CRLF become LF first
    ("A=1\nA=2", {"A": "2"}),  # the later key wins
    ("__proto__=x\nB=1", {"B": "1"}),  # a JavaScript object ignores __proto__
    ('A="a\\rb"', {"A": "a\rb"}),  # double quotes decode \r and \n ...
    ("A='x\\n'", {"A": "x\\n"}),  # ... single quotes nothing
    ("A=`it's`", {"A": "it's"}),
    ("A=  spaced  ", {"A": "spaced"}),
    ("A=\u00a0x\u00a0", {"A": "x"}),  # JavaScript's trim knows NBSP ...
    ("A=\x85x", {"A": "\x85x"}),  # ... but not NEL, which Python's strip() removes
    ("# comment\nA=1 # c", {"A": "1"}),
    ("A=b#c", {"A": "b"}),
    ('A="unterminated\nB=2', {"A": '"unterminated', "B": "2"}),
    ("A\u2028B=1", {"B": "1"}),  # U+2028 ends a line for JavaScript's ^ and $
    ("A='say \"hi\"' # note", {"A": 'say "hi"'}),
    ("A=", {"A": ""}),
    ("A = b", {"A": "b"}),
    ('A="x" trailing', {"A": '"x" trailing'}),
    ("A='multi\nline'", {"A": "multi\nline"}),
    ('A="\\\\n"', {"A": "\\\n"}),
    # Why a value may not end in a backslash: it escapes the closing quote, and the match runs
    # on to a later line's quote.
    ("A='x\\'\nB=`' #`", {"A": "x\\'\nB=`"}),
]


def test_recording_99_parses_as_dotenv_16_4_5_does() -> None:
    (path,) = RECORDED.glob("99-*.json")
    assert parse(json.loads(path.read_text())["request"]["body"]["env"]) == RECORDED_99


@pytest.mark.parametrize(("text", "expected"), PARSE_TABLE)
def test_parse_follows_dotenv_16_4_5(text: str, expected: dict[str, str]) -> None:
    assert parse(text) == expected


def test_expand_resolves_project_then_environment_then_own_references() -> None:
    variables = parse(
        "URL=https://${{project.HOST}}:${{environment.PORT}}\nNAME=${{project.APP}}\n"
        "COPY=${{NAME}}\nLITERAL=$1 ${HOME} {{x}}"
    )
    project = {"HOST": "db.example.test", "APP": "${{environment.PORT}}"}
    resolved = expand(variables, project, {"PORT": "5432"})
    assert resolved == {
        "URL": "https://db.example.test:5432",
        "NAME": "5432",  # each pass reads the previous pass's result
        "COPY": "${{project.APP}}",  # own references read the unresolved values
        "LITERAL": "$1 ${HOME} {{x}}",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${{project.NOPE}}", "Invalid project environment variable: project.NOPE"),
        ("${{environment.NOPE}}", "Invalid environment variable: environment.NOPE"),
        ("${{NOPE}}", "Invalid service environment variable: NOPE"),
    ],
)
def test_expand_refuses_an_unknown_reference_as_dokploy_does(value: str, message: str) -> None:
    with pytest.raises(UnresolvedReference, match=f"^{message}$"):
        expand({"A": value}, {}, {})


# -- the client's writer -------------------------------------------------------------------------

KEYS = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True).filter(lambda k: k != "__proto__")
TRICKY = st.sampled_from(
    ["'", '"', "`", "#", " ", "\t", "\n", "\r", "\\", "\\n", "\\r", "=", "$", "{", "}",
     "\u2028", "\u00a0", "\ufeff", "\x85", "export ", "K='v'", "é", "😀"]
)  # fmt: skip
VALUES = st.lists(st.one_of(TRICKY, st.text(max_size=4)), max_size=8).map("".join)
CARRIED = VALUES.filter(lambda value: unrepresentable("K", value) is None)


@given(st.dictionaries(KEYS, CARRIED, max_size=6))
@example({"HASH": "a #b", "QUOTES": 'it\'s "x"', "NEWLINE": "1\n2", "CR": "a\r\nb", "E": ""})
def test_what_unrepresentable_accepts_parses_back_byte_for_byte(env: dict[str, str]) -> None:
    assert parse(to_dotenv(env) or "") == env


@given(VALUES, VALUES)
def test_a_reference_is_always_refused(before: str, after: str) -> None:
    assert unrepresentable("K", f"{before}${{{{{after}") is not None


SECRET = "s3cr3t-value"


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("BAD KEY", SECRET, "not a key dotenv reads"),
        ("ÉTÉ", SECRET, "not a key dotenv reads"),
        ("__proto__", SECRET, "drops"),
        ("K", f"{SECRET} ${{{{project.X}}}}", "expands"),
        ("K", f"{SECRET}\0", "NUL"),
        ("K", f"{SECRET}\ud800", "not valid Unicode"),
        ("K", f"{SECRET}\\", "ending in a backslash"),
        ("K", f"{SECRET}'`\"", "single quotes fail on its ', backticks fail on its `, double"),
        ("K", f"{SECRET}'`\\n", "double quotes fail on a literal \\n or \\r"),
        ("K", f'{SECRET}\r"', "single quotes fail on a carriage return"),
    ],
)
def test_unrepresentable_says_why_without_the_value(key: str, value: str, why: str) -> None:
    reason = unrepresentable(key, value)
    assert reason is not None and why in reason and "\n" not in reason
    with pytest.raises(PermanentError) as caught:
        to_dotenv({"OK": "fine", key: value})
    assert key in str(caught.value) and SECRET not in str(caught.value)


def test_quoting_is_chosen_per_value() -> None:
    env = {"A": "plain", "B": "it's", "C": "it's `x`", "D": "cr\r", "E": ""}
    assert to_dotenv(env) == "A='plain'\nB=`it's`\nC=\"it's `x`\"\nD=\"cr\\r\"\nE=''"
    assert to_dotenv({}) is None


# -- the fake's deploy, through the real client --------------------------------------------------


@pytest.fixture
async def paas(sandbox: Sandbox) -> AsyncIterator[DokployPaas]:
    upstream = Upstream("Dokploy", RetryPolicy(attempts=2), sleep=RecordedSleeps())
    paas = DokployPaas(sandbox.urls["dokploy"], SecretStr(API_KEY), upstream, 0.5)
    yield paas
    await paas.close()


async def test_the_container_gets_exactly_the_env_the_client_saved(
    paas: DokployPaas, sandbox: Sandbox
) -> None:
    env = {
        "HASH": "abc #def",
        "TRAILING_COMMENT": "value # not a comment",
        "SPACES": "  two  spaces  ",
        "SINGLE": "it's",
        "DOUBLE": 'say "hi"',
        "SINGLE_AND_DOUBLE": 'it\'s "quoted"',
        "SINGLE_AND_TICK": "it's `ticked`",
        "NEWLINE": "line1\nline2",
        "CRLF": "a\r\nb",
        "LITERAL_BACKSLASH_N": "C:\\new\\table",
        "EQUALS": "a=b=c",
        "DOLLAR": "$HOME ${HOME} {{not.a.ref}}",
        "UNICODE": "été 😀\u2028next",
        "EMPTY": "",
    }
    project = await paas.ensure_project("ai-stack-env", "env round trip")
    app = await paas.ensure_application(project, "opencode-env")
    await paas.configure_image(app.application_id, "nginx:alpine", env)
    stored = sandbox.dokploy.store.applications[app.application_id]["env"]
    assert stored == to_dotenv(env)  # Dokploy keeps the text byte for byte
    assert sandbox.dokploy.container_env(app.application_id) is None  # parsed at deploy only
    await paas.start_deploy(app.application_id, "env round trip")
    await sandbox.dokploy.settled()
    assert sandbox.dokploy.container_env(app.application_id) == env
