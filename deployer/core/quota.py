"""How many stacks one person and the server may hold: the rule, as a pure function.

A person holds the stacks they own live and the new ones being made for them (approved and
not yet live). Only a new stack counts against the limits: a redeploy changes a stack that
is already held.
"""

from __future__ import annotations

from collections.abc import Mapping


def quota_refusal(
    requester: str,
    stack: str,
    held: Mapping[str, str],  # stack -> who holds it (live owner, or requester on its way)
    per_user: int,
    total: int,
) -> str | None:
    """Why `requester` may not have `stack` as a new stack, naming who holds what; None when
    they may."""
    others = {name: who for name, who in held.items() if name != stack}
    mine = sorted(name for name, who in others.items() if who == requester)
    if len(mine) >= per_user:
        return (
            f"{requester} already holds {len(mine)} stack{_s(mine)} ({', '.join(mine)}) and "
            f"AISTACK_MAX_STACKS_PER_USER is {per_user}: destroy one first"
        )
    if len(others) >= total:
        by_holder: dict[str, int] = {}
        for who in others.values():
            by_holder[who] = by_holder.get(who, 0) + 1
        top = sorted(by_holder.items(), key=lambda item: (-item[1], item[0]))[:5]
        holders = ", ".join(f"{who} {count}" for who, count in top)
        return (
            f"the server holds {len(others)} stacks and AISTACK_MAX_STACKS is {total} "
            f"(most held by: {holders}): one must be destroyed first"
        )
    return None


def _s(items: list[str]) -> str:
    return "" if len(items) == 1 else "s"
