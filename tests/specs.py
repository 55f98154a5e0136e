"""Where the reference material lives: ../shared/specs beside the checkout (CI lays it there).

On a developer's machine without it, tests that need it skip with a reason; under CI they
fail, so a missing copy is never mistaken for a pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPECS = Path(os.environ.get("AISTACK_SPECS_DIR", REPO.parent / "shared" / "specs"))


def require(*names: str) -> Path:
    """The specs folder, after checking that each named file or folder is in it."""
    missing = [n for n in names if not (SPECS / n).exists()]
    if missing:
        reason = f"reference specs not found: {', '.join(missing)} under {SPECS}"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    return SPECS
