import pytest

from deployer.core.names import validate_stack_name
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
