"""`aistack-bot` / `python -m bot`: the Slack bot's entry point."""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "aistack-bot: the Slack bot arrives in a later release; use the `aistack` CLI meanwhile.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
