"""Delivery: a stack's new login to its owner, through the Courier, and its record.

The owner is the live stack's (a transfer moves it), else whoever asked: a new stack's
requester becomes its owner when it goes live. The password goes to the courier and nowhere
else: the event says who asked and to whom, and a courier's failure is told by its kind,
never by its text (which might quote what it was sending).
"""

from __future__ import annotations

from deployer.core.events import EventKind
from deployer.core.models import Deployment
from deployer.engine.journal import Journal
from deployer.engine.records import Records
from deployer.errors import AistackError, PermanentError
from deployer.ports import Courier


class Delivery:
    def __init__(self, courier: Courier, journal: Journal, records: Records) -> None:
        self._courier = courier
        self._journal = journal
        self._records = records

    async def deliver(self, dep: Deployment, username: str, password: str) -> str:
        """Hand the login to the owner and record `credentials.sent`; returns the owner."""
        owner = await self._records.owner(dep.stack) or dep.requester
        try:
            await self._courier.deliver_credentials(dep, owner, username, password)
        except AistackError:
            raise  # our own words, which never quote the password
        except Exception as exc:
            raise PermanentError(
                f"the login for {dep.stack} could not be sent to {owner} ({type(exc).__name__})"
            ) from None
        outcome = f"a new password for login {username} went to {owner}"
        data = {"to": owner, "username": username, "outcome": outcome}
        await self._journal.emit(dep, EventKind.CREDENTIALS_SENT, state=str(dep.state),
                                 actor=dep.requester, data=data)  # fmt: skip
        return owner
