"""The quota rule alone: who holds what, and the words a refusal says it in."""

from deployer.core.quota import quota_refusal


def test_a_person_at_their_limit_is_refused_naming_what_they_hold() -> None:
    held = {"ana": "U1", "ben": "U1", "cy": "U2"}
    said = quota_refusal("U1", "dan", held, per_user=2, total=50)
    assert said == (
        "U1 already holds 2 stacks (ana, ben) and AISTACK_MAX_STACKS_PER_USER is 2: "
        "destroy one first"
    )
    assert quota_refusal("U2", "dan", held, per_user=2, total=50) is None


def test_the_stack_asked_for_is_not_counted_against_its_own_request() -> None:
    # a request again for a stack on its way (a retry) does not count that stack twice
    assert quota_refusal("U1", "ben", {"ana": "U1", "ben": "U1"}, per_user=2, total=50) is None


def test_a_full_server_is_refused_naming_who_holds_most() -> None:
    held = {"a": "U1", "b": "U1", "c": "U2", "d": "U3"}
    said = quota_refusal("U4", "e", held, per_user=2, total=4)
    assert said == (
        "the server holds 4 stacks and AISTACK_MAX_STACKS is 4 (most held by: U1 2, U2 1, "
        "U3 1): one must be destroyed first"
    )
    assert quota_refusal("U4", "e", held, per_user=2, total=5) is None
