import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from deployer.core.names import suggest_stack_name, validate_stack_name
from deployer.errors import InvalidStackName

SUFFIX = "ai.example.com"

VALID = [
    ("alice", "alice"),
    ("bob-2", "bob-2"),
    ("a1", "a1"),
    ("  carol  ", "carol"),  # surrounding spaces from Slack are forgiven
    ("x" * 40, "x" * 40),
    ("dev-team", "dev-team"),
    ("ab-cd-ef", "ab-cd-ef"),
]

INVALID = [
    ("", "required"),
    ("   ", "required"),
    ("Alice", "lowercase: try 'alice'"),
    ("ALICE", "lowercase"),
    ("al_ice", "'_'"),
    ("al.ice", "'.'"),
    ("al ice", "' '"),
    ("alice!", "'!'"),
    ("élodie", "'é'"),
    ("1alice", "must start with a letter"),
    ("-alice", "must start with a letter"),
    ("alice-", "must not end with '-'"),
    ("xn--alice", "punycode"),
    ("ab--cd", "punycode"),
    ("a", "too short"),
    ("x" * 41, "at most 40"),
    ("www", "reserved"),
    ("api", "reserved"),
    ("admin", "reserved"),
    ("traefik", "reserved"),
    ("dokploy", "reserved"),
    ("mail", "reserved"),
    ("portal", "reserved"),
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_valid_names_are_accepted(raw: str, expected: str) -> None:
    assert validate_stack_name(raw, suffix=SUFFIX) == expected


@pytest.mark.parametrize(("raw", "says"), INVALID)
def test_each_broken_rule_has_its_own_message(raw: str, says: str) -> None:
    with pytest.raises(InvalidStackName) as caught:
        validate_stack_name(raw, suffix=SUFFIX)
    assert says in str(caught.value)


def test_full_host_must_fit_in_253_characters() -> None:
    long_suffix = ".".join(["a" * 60] * 4)  # 243 characters
    with pytest.raises(InvalidStackName, match="at most 253"):
        validate_stack_name("alicealice", suffix=long_suffix)


SUGGESTED = [
    ("Alice", "alice"),
    ("Alice_1", "alice-1"),  # used to suggest 'alice_1', itself refused
    ("al_ice", "al-ice"),
    ("al..ice", "al-ice"),
    ("élodie", "elodie"),
    ("1alice", "alice"),
    ("-alice-", "alice"),
    ("xn--alice", "xn-alice"),
    ("x" * 41, "x" * 40),
    ("Bob " + "y" * 40, "bob-" + "y" * 36),
]


@pytest.mark.parametrize(("raw", "suggested"), SUGGESTED)
def test_a_refused_name_comes_with_a_valid_suggestion(raw: str, suggested: str) -> None:
    with pytest.raises(InvalidStackName) as caught:
        validate_stack_name(raw, suffix=SUFFIX)
    assert str(caught.value).endswith(f": try '{suggested}'.")
    assert validate_stack_name(suggested, suffix=SUFFIX) == suggested


@pytest.mark.parametrize("raw", ["", "A", "WWW", "_", "1-2", "é", "Dokploy"])
def test_no_suggestion_when_no_valid_name_can_be_made(raw: str) -> None:
    with pytest.raises(InvalidStackName) as caught:
        validate_stack_name(raw, suffix=SUFFIX)
    assert "try '" not in str(caught.value)
    assert suggest_stack_name(raw, suffix=SUFFIX) is None


# Near-names: ß, a combining accent and a full-width A fold into other letters.
NAMEISH = st.text(alphabet="abzAZ019-_ .éİ\u00df\u0301\uff21", max_size=60)


@given(raw=st.one_of(st.text(max_size=60), NAMEISH), long_suffix=st.booleans())
@example(raw="Alice_1", long_suffix=False)
@example(raw="Bob " + "y" * 40, long_suffix=True)  # 'bob-' and 16 'y': 20 characters
def test_any_suggestion_is_accepted_by_the_validator(raw: str, long_suffix: bool) -> None:
    # 232 characters: the host limit then leaves a name at most 20.
    suffix = ".".join(["a" * 60] * 3 + ["b" * 49]) if long_suffix else SUFFIX
    try:
        validate_stack_name(raw, suffix=suffix)
    except InvalidStackName as refused:
        offered = re.search(r": try '([^']*)'\.\Z", str(refused))
        suggestion = suggest_stack_name(raw, suffix=suffix)
        assert (offered[1] if offered else None) == suggestion  # the message offers it
        if suggestion is not None:
            assert validate_stack_name(suggestion, suffix=suffix) == suggestion
