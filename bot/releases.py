"""PURE: a stack's releases -> the Block Kit answer to `/aistack releases <name>`.

One line per release, oldest first (the newest are kept when they do not all fit): its
number, image, environment fingerprint (never a value), port, limits, who asked and who
approved, when it went live, the release it put back if it was a roll back, and which one
runs now. Text from users and upstreams is escaped, as everywhere (bot/messages.py).
"""

from __future__ import annotations

from bot.blocks import Message, context, escape, header, mention, message, pack, section
from bot.messages import utc
from deployer import Release


def releases_message(name: str, releases: list[Release]) -> Message:
    if not releases:
        empty = f"{escape(name)} has no releases yet."
        return message(empty, [section(empty)])
    packed, left = pack([release_line(r) for r in releases], keep_last=True)
    note = [context(f"{left} older releases not shown; newest last")] if left else []
    live = next((r.number for r in releases if r.live), None)
    runs = f", release {live} live" if live is not None else ", none live"
    blocks = [header(f"aistack: releases of {name}"), *note, *packed]
    return message(f"{escape(name)}: {len(releases)} releases{runs}", blocks)


def release_line(r: Release) -> str:
    approved = r.approver is not None and r.approver != r.requester
    by = f"by {mention(r.requester)}" + (f", approved by {mention(r.approver)}" if approved else "")
    parts = [
        f"*{r.number}*",
        f"`{escape(r.image)}`",
        f"env `{escape(r.env_fingerprint)}`",
        f"port {r.container_port}",
        escape(r.limits),
        by,
        f"{utc(r.at):%Y-%m-%d %H:%M} UTC",
    ]
    if r.restores is not None:
        parts.append(f"roll back of {r.restores}")
    line = " · ".join(parts)
    return f"{line} · *← live*" if r.live else line
