"""In-memory model of the fake Hetzner Cloud DNS: zones, RRSets and the actions that change them.

Every refusal is an `ApiError` (status + Hetzner error `code`). Writes check their input with
the `check_*` functions of `hetzner_checks.py`, then commit: each change starts an action and is
applied at once unless that action is set to fail; `hetzner.py` serves all of this over HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from deployer.sandbox.hetzner_checks import (
    ApiError,
    Record,
    check_keys,
    check_labels,
    check_name,
    check_records,
    check_ttl,
    check_type,
)

NAMESERVERS = ("hydrogen.ns.hetzner.com.", "oxygen.ns.hetzner.com.", "helium.ns.hetzner.de.")
ZONE_TTL = 3600
FIRST_ZONE_ID = 53091
FIRST_ACTION_ID = 600_000_000_000_000


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RRSet:
    name: str
    type: str
    records: list[Record]
    ttl: int | None
    zone_id: int
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": f"{self.name}/{self.type}",
            "name": self.name,
            "type": self.type,
            "ttl": self.ttl,
            "labels": dict(self.labels),
            "protection": {"change": False},
            "records": [{"value": r.value, "comment": r.comment} for r in self.records],
            "zone": self.zone_id,
        }


@dataclass
class Zone:
    id: int
    name: str
    mode: str
    created: str = field(default_factory=now_iso)
    serial: int = field(default_factory=lambda: int(datetime.now(UTC).strftime("%Y%m%d01")))
    rrsets: dict[tuple[str, str], RRSet] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ns = [Record(n) for n in NAMESERVERS]
        self.rrsets[("@", "NS")] = RRSet("@", "NS", ns, ZONE_TTL, self.id)
        self.rrsets[("@", "SOA")] = RRSet("@", "SOA", [self._soa()], ZONE_TTL, self.id)

    def _soa(self) -> Record:
        return Record(f"{NAMESERVERS[0]} dns.hetzner.com. {self.serial} 86400 10800 3600000 3600")

    def bump(self) -> None:
        """Every accepted change bumps the SOA serial, as Hetzner does."""
        self.serial += 1
        self.rrsets[("@", "SOA")].records = [self._soa()]

    def to_json(self, updating: bool) -> dict[str, Any]:
        primaries = [{"address": "198.51.100.53", "port": 53}] if self.mode == "secondary" else []
        return {
            "id": self.id,
            "name": self.name,
            "mode": self.mode,
            "ttl": ZONE_TTL,
            "labels": {},
            "primary_nameservers": primaries,
            "created": self.created,
            "protection": {"delete": False},
            "status": "updating" if updating else "ok",
            "record_count": sum(len(rr.records) for rr in self.rrsets.values()),
            "registrar": "hetzner",
            "authoritative_nameservers": {
                "assigned": list(NAMESERVERS),
                "delegated": list(NAMESERVERS),
                "delegation_last_check": self.created,
                "delegation_status": "valid",
            },
        }


@dataclass
class Action:
    id: int
    command: str
    zone_id: int
    polls_needed: int
    fail: bool
    started: str = field(default_factory=now_iso)
    status: str = "running"
    progress: int = 0
    finished: str | None = None
    polls: int = 0

    def poll(self) -> None:
        """Polls 1..polls_needed still see `running`; the next one sees the outcome. Only the
        poll endpoints (`/actions/{id}`, `/actions?id=`, `/zones/actions/{id}`) call this: a
        listing or the zone's `status` reads the action as it stands without moving it on."""
        if self.status != "running":
            return
        self.polls += 1
        if self.polls <= self.polls_needed:
            self.progress = 50
            return
        self.status = "error" if self.fail else "success"
        self.progress = 100
        self.finished = now_iso()

    def to_json(self) -> dict[str, Any]:
        error = None
        if self.status == "error":
            error = {"code": "action_failed", "message": f"action {self.command} failed"}
        return {
            "id": self.id,
            "command": self.command,
            "status": self.status,
            "progress": self.progress,
            "started": self.started,
            "finished": self.finished,
            "resources": [{"id": self.zone_id, "type": "zone"}],
            "error": error,
        }


class DnsState:
    """Zones, RRSets and actions; each write is applied at once unless its action will fail."""

    def __init__(
        self,
        *,
        zones: Iterable[str],
        secondary_zones: Iterable[str] = (),
        action_polls: int = 0,
        lock_zone_while_running: bool = False,
    ) -> None:
        self._seed = [(z, "primary") for z in zones] + [(z, "secondary") for z in secondary_zones]
        self.action_polls = action_polls
        self.lock_zone_while_running = lock_zone_while_running
        self.fail_actions: set[str] = set()
        self.zones: dict[int, Zone] = {}
        self.actions: dict[int, Action] = {}
        self._action_ids = itertools.count(FIRST_ACTION_ID)  # never reused, even across reset
        DnsState.reset(self)

    def reset(self) -> None:
        self.fail_actions.clear()
        self.actions.clear()
        self.zones = {
            FIRST_ZONE_ID + i: Zone(FIRST_ZONE_ID + i, name, mode)
            for i, (name, mode) in enumerate(self._seed)
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            "zones": {
                zone.name: [
                    {
                        "name": rr.name,
                        "type": rr.type,
                        "ttl": rr.ttl,
                        "records": [r.value for r in rr.records],
                    }
                    for _, rr in sorted(zone.rrsets.items())
                ]
                for zone in self.zones.values()
            }
        }

    # -- lookups -------------------------------------------------------------------------

    def zone(self, id_or_name: str) -> Zone:
        for zone in self.zones.values():
            if id_or_name in (str(zone.id), zone.name):
                return zone
        raise ApiError(404, "not_found", "Zone not found")

    def primary_zone(self, id_or_name: str) -> Zone:
        zone = self.zone(id_or_name)
        if zone.mode != "primary":
            raise ApiError(
                422, "incorrect_zone_mode", "This operation is not supported for this Zone's mode"
            )
        return zone

    def zone_json(self, zone: Zone) -> dict[str, Any]:
        return zone.to_json(updating=self._running_on(zone))

    def rrset(self, zone: Zone, name: str, rr_type: str) -> RRSet:
        rrset = zone.rrsets.get((name, rr_type))
        if rrset is None:
            raise ApiError(404, "not_found", "RRSet not found")
        return rrset

    def zone_actions(
        self, zone: Zone, statuses: Collection[str], sort: Sequence[tuple[str, bool]] = ()
    ) -> list[Action]:
        """The zone's actions with one of `statuses` (all when empty), by id unless `sort`
        says otherwise ((field, descending), first term first). Read as they stand: listing
        never advances an action. A null `finished` sorts last ascending, first descending."""
        found = sorted(
            (
                a
                for a in self.actions.values()
                if a.zone_id == zone.id and (not statuses or a.status in statuses)
            ),
            key=lambda a: a.id,
        )
        for name, descending in reversed(sort):  # stable sorts: the last pass is the primary key
            found.sort(key=_sort_key(name), reverse=descending)
        return found

    def poll_action(self, action_id: int) -> Action:
        action = self.actions.get(action_id)
        if action is None:
            raise ApiError(404, "not_found", "Action not found")
        action.poll()
        return action

    # -- writes: each computes the RRSet's new value (None = gone) and commits it ---------

    def create_rrset(self, zone: Zone, body: Any) -> tuple[RRSet, Action]:
        body, errors = check_keys(
            body, {"name", "type", "ttl", "records", "labels"}, {"name", "type", "records"}
        )
        check_name(errors, body.get("name"), zone.name)
        check_type(errors, body.get("type"))
        check_ttl(errors, body.get("ttl"))
        records = check_records(errors, body.get("records"))
        check_labels(errors, body.get("labels", {}))
        errors.raise_if_any()
        name, rr_type = body["name"], body["type"]
        if (name, rr_type) in zone.rrsets:
            raise ApiError(
                409,
                "uniqueness_error",
                "RRSet already exists",
                {"fields": [{"name": "name", "messages": ["already exists"]}]},
            )
        self._check_cname(zone, name, rr_type)
        labels = dict(body.get("labels", {}))
        rrset = RRSet(name, rr_type, records, body.get("ttl"), zone.id, labels)
        return rrset, self._commit(zone, "create_rrset", rrset.name, rrset.type, rrset)

    def delete_rrset(self, zone: Zone, name: str, rr_type: str) -> Action:
        self.rrset(zone, name, rr_type)
        return self._commit(zone, "delete_rrset", name, rr_type, None)

    def set_records(self, zone: Zone, name: str, rr_type: str, body: Any) -> Action:
        records = self._records_body(zone, name, rr_type, body, {"records"})[0]
        new = replace(self.rrset(zone, name, rr_type), records=records)
        return self._commit(zone, "set_rrset_records", name, rr_type, new)

    def add_records(self, zone: Zone, name: str, rr_type: str, body: Any) -> Action:
        records, body = self._records_body(zone, name, rr_type, body, {"records", "ttl"})
        ttl = body.get("ttl")
        rrset = zone.rrsets.get((name, rr_type))
        if rrset is None:
            self._check_cname(zone, name, rr_type)
            new = RRSet(name, rr_type, records, ttl, zone.id)
        elif ttl is not None and rrset.ttl is not None and ttl != rrset.ttl:
            raise ApiError(
                422,
                "invalid_input",
                "ttl differs from the RRSet's ttl",
                {"fields": [{"name": "ttl", "messages": ["must equal the RRSet ttl"]}]},
            )
        else:
            known = {r.value for r in rrset.records}
            added = [r for r in records if r.value not in known]
            new = replace(rrset, records=rrset.records + added)
        return self._commit(zone, "add_rrset_records", name, rr_type, new)

    def remove_records(self, zone: Zone, name: str, rr_type: str, body: Any) -> Action:
        gone = {r.value for r in self._records_body(zone, name, rr_type, body, {"records"})[0]}
        rrset = self.rrset(zone, name, rr_type)
        kept = [r for r in rrset.records if r.value not in gone]
        new = replace(rrset, records=kept) if kept else None  # emptied: the RRSet is deleted
        return self._commit(zone, "remove_rrset_records", name, rr_type, new)

    def change_ttl(self, zone: Zone, name: str, rr_type: str, body: Any) -> Action:
        body, errors = check_keys(body, {"ttl"}, {"ttl"})
        check_ttl(errors, body.get("ttl"))
        errors.raise_if_any()
        new = replace(self.rrset(zone, name, rr_type), ttl=body["ttl"])
        return self._commit(zone, "change_rrset_ttl", name, rr_type, new)

    # -- helpers -------------------------------------------------------------------------

    def _records_body(
        self, zone: Zone, name: str, rr_type: str, body: Any, allowed: set[str]
    ) -> tuple[list[Record], dict[str, Any]]:
        body, errors = check_keys(body, allowed, {"records"})
        check_name(errors, name, zone.name)
        check_type(errors, rr_type)
        if "ttl" in allowed:
            check_ttl(errors, body.get("ttl"))
        records = check_records(errors, body.get("records"))
        errors.raise_if_any()
        return records, body

    def _check_cname(self, zone: Zone, name: str, rr_type: str) -> None:
        others = {t for (n, t) in zone.rrsets if n == name}
        if (rr_type == "CNAME" and others) or (rr_type != "CNAME" and "CNAME" in others):
            raise ApiError(
                422,
                "invalid_input",
                "CNAME cannot coexist with other records",
                {"fields": [{"name": "type", "messages": ["conflicts with CNAME"]}]},
            )

    def _running_on(self, zone: Zone) -> bool:
        return any(a.zone_id == zone.id and a.status == "running" for a in self.actions.values())

    def _commit(
        self, zone: Zone, command: str, name: str, rr_type: str, new: RRSet | None
    ) -> Action:
        """Start the action and apply the change now, unless the action is doomed to fail."""
        if self.lock_zone_while_running and self._running_on(zone):
            raise ApiError(423, "locked", "another action is running on this zone")
        fail = name in self.fail_actions
        self.fail_actions.discard(name)
        action = Action(next(self._action_ids), command, zone.id, self.action_polls, fail)
        self.actions[action.id] = action
        if not fail:
            if new is None:
                del zone.rrsets[(name, rr_type)]
            else:
                zone.rrsets[(name, rr_type)] = new
            zone.bump()
        return action


def _sort_key(name: str) -> Callable[[Action], tuple[bool, Any]]:
    """The action's `name` field, a null ranking after every value (as in SQL ascending)."""

    def key(action: Action) -> tuple[bool, Any]:
        value = getattr(action, name)
        return value is None, value

    return key
