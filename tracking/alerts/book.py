"""The alert policies in force: each organization's rules and the channels its alerts go to.

An organization's own policy, if it has one, else the global default (else the built-in
defaults). An alert goes to the channels of the organization's own policy plus those of the
global default policy: global channels hear about every organization.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from models.alerts import GLOBAL_SCOPE
from tracking.alerts.tables import CHANNELS, POLICIES, POLICY_CHANNELS
from tracking.core.alert_rules import DEFAULT_THRESHOLDS_DAYS, PolicyRules


def organization_scope(organization_id: int) -> str:
    return f"organization:{organization_id}"


@dataclass(frozen=True)
class Book:
    """Policies by organization id (None: the global default) and their channels."""

    rules: dict[int | None, PolicyRules] = field(default_factory=dict)
    channels: dict[int | None, tuple[int, ...]] = field(default_factory=dict)

    def rules_for(self, organization_id: int) -> PolicyRules:
        return self.rules.get(organization_id) or self.rules.get(None) or PolicyRules()

    def recipients(self, organization_id: int) -> tuple[int, ...]:
        """Channel ids an alert of the organization goes to (enabled, not deleted)."""
        own = self.channels.get(organization_id, ())
        return tuple(dict.fromkeys(own + self.channels.get(None, ())))

    @property
    def max_threshold_days(self) -> int:
        values = [max(r.thresholds_days) for r in self.rules.values() if r.thresholds_days]
        return max(values + list(DEFAULT_THRESHOLDS_DAYS))


def load_book(session: Session, organization_ids: Collection[int] | None = None) -> Book:
    """The global policy and those of ``organization_ids`` (None: every policy): two queries."""
    query = sa.select(
        POLICIES.c.id,
        POLICIES.c.organization_id,
        POLICIES.c.expiry_thresholds_days,
        POLICIES.c.notify_on_change,
        POLICIES.c.failures_before_alert,
    )
    if organization_ids is not None:
        query = query.where(
            sa.or_(
                POLICIES.c.scope == GLOBAL_SCOPE,
                POLICIES.c.organization_id.in_(sorted(set(organization_ids))),
            )
        )
    rows = session.execute(query).all()
    if not rows:
        return Book()
    rules: dict[int | None, PolicyRules] = {}
    owner: dict[int, int | None] = {}
    for row in rows:
        rules[row.organization_id] = PolicyRules(
            thresholds_days=tuple(row.expiry_thresholds_days or DEFAULT_THRESHOLDS_DAYS),
            notify_on_change=row.notify_on_change,
            failures_before_alert=row.failures_before_alert,
        )
        owner[row.id] = row.organization_id
    links = session.execute(
        sa.select(POLICY_CHANNELS.c.policy_id, POLICY_CHANNELS.c.channel_id)
        .join(CHANNELS, CHANNELS.c.id == POLICY_CHANNELS.c.channel_id)
        .where(
            POLICY_CHANNELS.c.policy_id.in_(sorted(owner)),
            CHANNELS.c.enabled == sa.true(),
            CHANNELS.c.deleted_at.is_(None),
        )
        .order_by(POLICY_CHANNELS.c.channel_id)
    ).all()
    channels: dict[int | None, list[int]] = {}
    for link in links:
        channels.setdefault(owner[link.policy_id], []).append(link.channel_id)
    return Book(rules, {k: tuple(v) for k, v in channels.items()})
