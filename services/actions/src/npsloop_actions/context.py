"""What the actions handlers decide with: the policy, the store directory, who we are, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from npsloop_platform.stores import StoreDirectory
from npsloop_schemas import CaseKind

from .business_hours import Calendar
from .policy import Policy


@dataclass
class Context:
    """What the handlers decide with: the policy, the store directory, who we are, the clock."""

    policy: Policy
    stores: StoreDirectory = field(default_factory=StoreDirectory)
    source: str = "npsloop-actions"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _calendars: dict[tuple[str, str | None], Calendar] = field(default_factory=dict)

    def calendar(self, tenant_id: str, store_id: str | None) -> Calendar:
        key = (tenant_id, store_id)
        if key not in self._calendars:
            self._calendars[key] = Calendar(self.policy.sla, self.stores.store(tenant_id, store_id))
        return self._calendars[key]

    def sla(self, tenant_id: str, store_id: str | None, kind: CaseKind, start: datetime) -> dict[str, Any]:
        """The SLA columns of a case whose clock starts at `start`."""
        cal, hours = self.calendar(tenant_id, store_id), self.policy.sla.hours(kind)
        return {
            "sla_started_at": start,
            "sla_hours": hours,
            "sla_fingerprint": self.policy.sla_fingerprint,
            "sla_warn_at": cal.add(start, hours * self.policy.sla.warning_at),
            "sla_due_at": cal.add(start, hours),
            "warned_at": None,
            "breached_at": None,
            "escalation_level": 0,
            "next_escalation_at": None,
        }
