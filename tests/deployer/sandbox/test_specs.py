"""The OpenAPI subset packaged with the Dokploy fake is the shared reference, unchanged."""

import json

from deployer.sandbox.dokploy_validation import _openapi_path
from tests import specs

SPECS = specs.require("dokploy-openapi.json")


def test_packaged_dokploy_subset_matches_the_reference_document() -> None:
    full = json.loads((SPECS / "dokploy-openapi.json").read_text())
    subset = json.loads(_openapi_path().read_text())
    assert subset["paths"], "the subset lists the procedures the fake serves"
    for path, item in subset["paths"].items():
        assert item == full["paths"][path], path
    assert subset.get("components", {}) == full.get("components", {})
