"""The OpenAPI subset packaged with the Slack fake is the shared reference, unchanged."""

import json

from bot.sandbox.checks import SPEC_PATH
from tests import specs

SPECS = specs.require("slack-web-openapi-v2.json")

METHODS = [
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "usergroups.users.list",
    "users.info",
    "views.publish",
    "views.open",
    "views.update",
    "conversations.open",
]


def test_packaged_slack_subset_matches_the_reference_document() -> None:
    full = json.loads((SPECS / "slack-web-openapi-v2.json").read_text())
    subset = json.loads(SPEC_PATH.read_text())
    assert sorted(subset["paths"]) == sorted(f"/{m}" for m in METHODS)
    assert subset["paths"] == {path: full["paths"][path] for path in subset["paths"]}
    assert subset["definitions"] == {n: full["definitions"][n] for n in subset["definitions"]}
    for key in ("swagger", "basePath", "info"):
        assert subset[key] == full[key], key
