"""Who may do what. Pure: group membership is resolved by the caller and passed in.

Approvers and deployers are Slack user ids (U..., W...) and user group ids (S...). An empty
deployer list lets everyone request; approvers are required whenever approval is on.

`owner` is who owns the stack live (None: it is not live). A request for someone else's live
stack replaces or removes it, so its owner may reject that request, as an approver may.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bot.blocks import mention
from deployer import Deployment


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


ALLOW = Decision(True)


@dataclass(frozen=True)
class AccessPolicy:
    approvers: frozenset[str] = frozenset()
    deployers: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    approval_required: bool = True
    allow_self_approval: bool = False

    @property
    def groups(self) -> frozenset[str]:
        """The user groups whose members the caller must resolve."""
        return frozenset(i for i in self.approvers | self.deployers if i.startswith("S"))

    def in_channel(self, channel: str) -> Decision:
        if not self.channels or channel in self.channels:
            return ALLOW
        return Decision(
            False,
            "aistack does not take requests in this channel; use "
            + ", ".join(f"<#{c}>" for c in sorted(self.channels)),
        )

    def may_request(self, user: str, groups: Collection[str]) -> Decision:
        if not self.deployers or _member(user, groups, self.deployers):
            return ALLOW
        return Decision(
            False, "only deployers may request a stack; ask one of: " + _who(self.deployers)
        )

    def may_approve(
        self, user: str, groups: Collection[str], dep: Deployment, owner: str | None = None
    ) -> Decision:
        if not self.approval_required and owner is not None and user == owner != dep.requester:
            return ALLOW  # no approval step: the owner's consent is what a takeover waits for
        if not _member(user, groups, self.approvers):
            return Decision(False, self._not_an_approver(user, dep, owner))
        if user == dep.requester and not self.allow_self_approval:
            return Decision(False, "you asked for this one, so someone else has to approve it")
        return ALLOW

    def _not_an_approver(self, user: str, dep: Deployment, owner: str | None) -> str:
        """Whoever may still reject is told so: the refusal must not take that away."""
        who = _who(self.approvers)
        if user == dep.requester:
            return (f"only approvers can approve; approvers are: {who}. You asked for this "
                    "one: you may still withdraw it with Reject")  # fmt: skip
        if user == owner:
            return (f"only approvers can approve; approvers are: {who}. It is your live "
                    "stack: you may reject it with Reject")  # fmt: skip
        return "only approvers can approve or reject; approvers are: " + who

    def may_reject(
        self, user: str, groups: Collection[str], dep: Deployment, owner: str | None = None
    ) -> Decision:
        """Approvers reject; the requester may withdraw their own request; the owner of the
        live stack may refuse what would replace or remove it."""
        if user in (dep.requester, owner) or _member(user, groups, self.approvers):
            return ALLOW
        return Decision(False, "only approvers (or whoever asked) can reject, or the owner "
                        "of the live stack it would change; approvers are: "
                        + _who(self.approvers))  # fmt: skip

    def may_transfer(self, user: str, groups: Collection[str], owner: str | None) -> Decision:
        """The owner gives her stack away; an approver may reassign it (someone left)."""
        if (owner is not None and user == owner) or _member(user, groups, self.approvers):
            return ALLOW
        return Decision(
            False, "only the stack's owner or an approver can transfer it; approvers are: "
            + _who(self.approvers),
        )  # fmt: skip

    def may_renew_login(self, user: str, groups: Collection[str], owner: str) -> Decision:
        """The owner renews her stack's password; an approver may too (a password that got
        out), and the new one still goes to the owner alone."""
        if user == owner or _member(user, groups, self.approvers):
            return ALLOW
        return Decision(
            False, f"only the stack's owner ({mention(owner)}) or an approver can "
            "renew its password; approvers are: " + _who(self.approvers),
        )  # fmt: skip

    def may_extend(self, user: str, groups: Collection[str], owner: str | None) -> Decision:
        """The owner pushes her stack's expiry out without asking (up to the maximum); an
        approver may too (someone is away)."""
        if (owner is not None and user == owner) or _member(user, groups, self.approvers):
            return ALLOW
        return Decision(
            False, "only the stack's owner or an approver can extend it; approvers are: "
            + _who(self.approvers),
        )  # fmt: skip

    def may_change_directly(self, user: str, owner: str | None) -> bool:
        """The owner of a live stack removes, stops, starts, restarts or rolls it back without
        asking; others need approval, or with approval off, the owner's consent (someone
        else's live stack is never changed unasked)."""
        if owner is not None:
            return owner == user
        return not self.approval_required

    def may_read_logs(self, user: str, groups: Collection[str], owner: str | None) -> Decision:
        """A stack's logs can show what its owner works on: the owner reads them, and an
        approver may (someone has to help when it breaks); nobody else. A stack that is not
        live has no logs: the deployer says so to anyone."""
        if owner is None or user == owner or _member(user, groups, self.approvers):
            return ALLOW
        whose = _who(frozenset({owner})) if owner[:1] in ("U", "W") else owner  # or cli:name
        return Decision(False, f"only the stack's owner ({whose}) or an approver can read its "
                        f"logs; approvers are: {_who(self.approvers)}")  # fmt: skip

    def may_retry_rollback(
        self, user: str, groups: Collection[str], dep: Deployment, owner: str | None
    ) -> Decision:
        if user in (dep.requester, owner) or _member(user, groups, self.approvers):
            return ALLOW
        return Decision(
            False, "only the requester, the stack's owner or an approver can retry a rollback"
        )


def _member(user: str, groups: Collection[str], allowed: frozenset[str]) -> bool:
    return user in allowed or any(g in allowed for g in groups)


def _who(ids: frozenset[str]) -> str:
    return ", ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in sorted(ids))
