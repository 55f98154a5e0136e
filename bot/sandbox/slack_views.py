"""The Slack fake's views and conversations: the App Home tab (`views.publish`), modals
(`views.open` with a trigger id, `views.update`), and opening a direct message
(`conversations.open`), as Slack answers them (../shared/specs/slack.md; the arguments are
checked against the packaged OpenAPI subset before they get here).

A trigger id opens one view, once (a second use is `trigger_exchanged`); the Slack driver's
trigger ids are the only well-formed ones. A view holds at most 100 blocks; a modal's title,
submit and close are plain text of at most 24 characters.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.checks import json_object
from bot.sandbox.wire import Json, dm_channel, error_reply

MAX_VIEW_BLOCKS = 100
MAX_MODAL_LABEL = 24
_TRIGGER = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")  # as the driver issues them (driver.py)


@dataclass
class View:
    id: str
    type: str  # home | modal
    user: str | None  # whose Home tab (a modal's opener is known to its trigger, not here)
    payload: Json  # the view as last published, opened or updated
    history: list[Json] = field(default_factory=list)  # earlier payloads, oldest first


Violate = Callable[[str, Iterable[str]], None]  # (method, problems): the fake's record


class SlackViews:
    """What was published and opened; what broke Slack's rules goes to `violate`."""

    def __init__(self, users: dict[str, str], violate: Violate) -> None:
        self._users = users
        self._violate = violate
        self._ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        self.views: dict[str, View] = {}  # view_id -> view
        self.homes: dict[str, str] = {}  # user -> the view_id of their Home tab
        self.used_triggers: set[str] = set()

    def handlers(self) -> dict[str, Callable[[Json], Json]]:
        """The Web API methods answered here, by name."""
        return {
            "views.publish": self.publish,
            "views.open": self.open,
            "views.update": self.update,
            "conversations.open": self.open_conversation,
        }

    def home(self, user: str) -> Json | None:
        """The Home tab `user` sees now (None: never published)."""
        view_id = self.homes.get(user)
        return None if view_id is None else self.views[view_id].payload

    def modals(self) -> list[View]:
        """Every modal opened, oldest first."""
        return [v for v in self.views.values() if v.type == "modal"]

    # -- methods -----------------------------------------------------------------------------
    def publish(self, args: Json) -> Json:
        user, view = args["user_id"], json_object(args.get("view"))
        if user not in self._users:
            return error_reply("user_not_found")
        if view is None or view.get("type") != "home":
            return self._invalid("views.publish", ["the view must be an object of type home"])
        view_id = self.homes.get(user)
        if view_id is None:
            view_id = self.homes[user] = self._new_id()
            self.views[view_id] = View(view_id, "home", user, view)
        else:
            self.views[view_id].history.append(self.views[view_id].payload)
            self.views[view_id].payload = view
        return self._answer(self.views[view_id])

    def open(self, args: Json) -> Json:
        trigger, view = str(args["trigger_id"]), json_object(args.get("view"))
        if not _TRIGGER.fullmatch(trigger):
            return error_reply("invalid_trigger_id")
        if trigger in self.used_triggers:
            return error_reply("trigger_exchanged")
        problems = _problems(view, "modal")
        if problems:
            return self._invalid("views.open", problems)
        assert view is not None
        self.used_triggers.add(trigger)
        opened = View(self._new_id(), "modal", None, view)
        self.views[opened.id] = opened
        return self._answer(opened)

    def update(self, args: Json) -> Json:
        view_id = args.get("view_id") or self._by_external_id(args.get("external_id"))
        current = self.views.get(str(view_id)) if view_id else None
        view = json_object(args.get("view"))
        if current is None:
            return error_reply("not_found")
        problems = _problems(view, current.type)
        if problems:
            return self._invalid("views.update", problems)
        assert view is not None
        current.history.append(current.payload)
        current.payload = view
        return self._answer(current)

    def open_conversation(self, args: Json) -> Json:
        users = [u for u in str(args.get("users", "")).split(",") if u]
        if len(users) != 1:  # a group DM is not something aistack opens
            return error_reply("not_enough_users" if not users else "too_many_users")
        if users[0] not in self._users:
            return error_reply("user_not_found")
        return {"ok": True, "channel": {"id": dm_channel(users[0])}}

    # -- answers --------------------------------------------------------------------------------
    def _invalid(self, method: str, problems: list[str]) -> Json:
        self._violate(method, problems)
        return error_reply("invalid_arguments")

    def _by_external_id(self, external_id: Any) -> str | None:
        found = [v.id for v in self.views.values() if v.payload.get("external_id") == external_id]
        return found[0] if external_id and found else None

    def _new_id(self) -> str:
        return f"V{next(self._ids):08d}"

    @staticmethod
    def _answer(view: View) -> Json:
        shown = {"id": view.id, "team_id": "T0SANDBOX", "hash": f"{len(view.history)}.{view.id}"}
        return {"ok": True, "view": {**view.payload, **shown}}


def _problems(view: Json | None, kind: str) -> list[str]:
    """What breaks Slack's rules for a view of type `kind`: its blocks, a modal's labels."""
    if view is None or view.get("type") != kind:
        return [f"the view must be an object of type {kind}"]
    problems = []
    blocks = view.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > MAX_VIEW_BLOCKS:
        problems.append(f"blocks: a list of at most {MAX_VIEW_BLOCKS}")
    if kind == "modal":
        for key, required in (("title", True), ("submit", False), ("close", False)):
            label = view.get(key)
            if label is None and not required:
                continue
            if not _plain(label) or len(str(label["text"])) > MAX_MODAL_LABEL:  # type: ignore[index]
                problems.append(f"{key}: plain_text of at most {MAX_MODAL_LABEL} characters")
    return problems


def _plain(label: Any) -> bool:
    return isinstance(label, dict) and label.get("type") == "plain_text" and bool(label.get("text"))
