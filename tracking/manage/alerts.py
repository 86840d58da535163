"""What people do with alerts: notification channels, alert policies, acknowledging an alert,
muting a device. Managing an organization's channels and policy needs ``canEditDevices`` on it;
global ones need ``isAdmin``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import Alert, AlertPolicy, AlertPolicyChannel, Device, NotificationChannel, Organization
from models.alerts import GLOBAL_SCOPE
from models.db import reader, transaction
from tracking.alerts import alerting_of, organization_scope
from tracking.alerts.tables import DELIVERIES, DEVICES
from tracking.core import clock
from tracking.core.alert_rules import (
    DEFAULT_THRESHOLDS_DAYS,
    AlertState,
    ChannelKind,
    DeliveryState,
    check_failures_before_alert,
    clean_thresholds,
)
from tracking.core.errors import DstrackError, ErrorCode, ValidationError, forbidden, not_found
from tracking.core.notices import TrialNotice, clean_recipients, webhook_url
from tracking.core.text import clean_name
from tracking.manage.access import Viewer
from tracking.manage.device_rules import editable_device
from tracking.probes.notify import (
    HOSTED_SCHEMES,
    ChannelTarget,
    NotifyError,
    check_apprise_url,
    check_secret,
    checked_addresses,
    new_secret,
)
from tracking.refresh.records import add_note
from tracking.refresh.services import Services


@dataclass(frozen=True)
class NewChannel:
    name: str | None
    kind: ChannelKind
    organization_id: int | None
    email_to: Sequence[str] | None = None
    url: str | None = None
    secret: str | None = None


def _managed_organization(session: Session, viewer: Viewer, organization_id: int | None) -> None:
    """Refuses unless the viewer may manage the channels and policy of the organization
    (None: the global ones)."""
    if organization_id is None:
        if not viewer.is_admin:
            raise forbidden("Only administrators may manage global channels and the global policy.")
        return
    organization = session.get(Organization, organization_id)
    if organization is None or not viewer.may_view(organization.type):
        raise not_found("organizationId", "Organization")
    if not viewer.may_edit_devices(organization.type):
        raise forbidden("Your security level does not allow managing alerts of this organization.")


async def _check_host(services: Services, url: str) -> None:
    """The URL's host must resolve to addresses the private-address guard accepts."""
    try:
        await checked_addresses(
            urlsplit(url).hostname or "", services.resolver, services.settings.allow_private_targets
        )
    except NotifyError as error:
        raise ValidationError(error.code, error.message, field="url") from error


async def create_channel(
    services: Services, *, viewer: Viewer, new: NewChannel
) -> tuple[NotificationChannel, str | None]:
    """A channel, and its webhook signing secret (shown once; None for other kinds)."""
    with reader(services.engine) as session:
        _managed_organization(session, viewer, new.organization_id)
    name = clean_name(new.name, field="name", max_length=200)
    secret: str | None = None
    if new.kind is ChannelKind.EMAIL:
        target = ",".join(clean_recipients(new.email_to))
    elif new.kind is ChannelKind.WEBHOOK:
        target = webhook_url(new.url)
        secret = check_secret(new.secret) if new.secret else new_secret()
        await _check_host(services, target)
    else:
        target = check_apprise_url((new.url or "").strip())
        if urlsplit(target).scheme.lower() in HOSTED_SCHEMES:
            await _check_host(services, target)
    with transaction(services.engine) as session:
        _managed_organization(session, viewer, new.organization_id)
        channel = NotificationChannel(
            name=name,
            kind=new.kind.value,
            organization_id=new.organization_id,
            target=target,
            secret=secret,
            created_at=clock.now(),
        )
        session.add(channel)
    return channel, secret


def managed_channel(
    session: Session, viewer: Viewer, channel_id: int | None
) -> NotificationChannel:
    channel = session.get(NotificationChannel, channel_id) if channel_id else None
    if channel is None or channel.deleted_at is not None:
        raise not_found("id", "Notification channel")
    if channel.organization_id is None and not viewer.is_admin:
        raise not_found("id", "Notification channel")
    _managed_organization(session, viewer, channel.organization_id)
    return channel


def delete_channel(
    engine: Engine, *, viewer: Viewer, channel_id: int | None
) -> NotificationChannel:
    """Deleted: no policy names it, its pending deliveries fail; past deliveries keep it."""
    now = clock.now()
    with transaction(engine) as session:
        channel = managed_channel(session, viewer, channel_id)
        channel.deleted_at = now
        session.add(channel)
        session.execute(
            sa.delete(AlertPolicyChannel).where(col(AlertPolicyChannel.channel_id) == channel.id)
        )
        session.execute(
            sa.update(DELIVERIES)
            .where(
                DELIVERIES.c.channel_id == channel.id,
                DELIVERIES.c.state == DeliveryState.PENDING.value,
            )
            .values(
                state=DeliveryState.FAILED.value,
                last_error="the channel was deleted",
                claimed_by=None,
                claimed_until=None,
            )
        )
        return channel


async def test_channel(
    services: Services, *, viewer: Viewer, channel_id: int | None
) -> NotificationChannel:
    """Sends a test message now; a failure is a ``NOTIFICATION_FAILED`` error saying why."""
    with reader(services.engine) as session:
        channel = managed_channel(session, viewer, channel_id)
    alerting = alerting_of(services)
    now = clock.now()
    target = ChannelTarget(channel.kind, channel.name, channel.target, channel.secret)
    try:
        await alerting.notifier.send(
            target,
            TrialNotice(channel.name, now),
            f"msg_test_{channel.id}_{int(now.timestamp())}",
            now,
        )
    except NotifyError as error:
        raise DstrackError(
            ErrorCode.NOTIFICATION_FAILED, f"The test message was not delivered: {error.message}"
        ) from error
    return channel


# --- policies --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyChanges:
    organization_id: int | None
    thresholds_days: Sequence[int] | None = None
    notify_on_change: bool | None = None
    failures_before_alert: int | None = None
    channel_ids: Sequence[int] | None = None


@dataclass(frozen=True)
class EffectivePolicy:
    organization: Organization | None  # None: the global default
    thresholds_days: tuple[int, ...]
    notify_on_change: bool
    failures_before_alert: int
    channels: list[NotificationChannel]


def _policy_row(session: Session, organization_id: int | None) -> AlertPolicy | None:
    scope = GLOBAL_SCOPE if organization_id is None else organization_scope(organization_id)
    return session.exec(select(AlertPolicy).where(AlertPolicy.scope == scope)).first()


def _channels_for(
    session: Session, viewer: Viewer, organization_id: int | None, ids: Sequence[int]
) -> list[NotificationChannel]:
    found = {
        c.id: c
        for c in session.exec(
            select(NotificationChannel).where(col(NotificationChannel.id).in_(sorted(set(ids))))
        )
    }
    chosen = []
    for channel_id in dict.fromkeys(ids):
        channel = found.get(channel_id)
        if channel is None or channel.deleted_at is not None:
            raise not_found("channelIds", "Notification channel")
        if channel.organization_id is None:
            if not viewer.is_admin:
                raise not_found("channelIds", "Notification channel")
        elif channel.organization_id != organization_id:
            raise ValidationError(
                ErrorCode.INVALID_INPUT,
                f'The channel "{channel.name}" belongs to another organization.',
                field="channelIds",
            )
        chosen.append(channel)
    return chosen


def set_policy(engine: Engine, *, viewer: Viewer, changes: PolicyChanges) -> EffectivePolicy:
    """Create or change the global default or an organization's own policy. Fields left out
    keep their value (a new organization policy starts from the global default's)."""
    thresholds = (
        clean_thresholds(changes.thresholds_days) if changes.thresholds_days is not None else None
    )
    if changes.failures_before_alert is not None:
        check_failures_before_alert(changes.failures_before_alert)
    now = clock.now()
    organization_id = changes.organization_id
    with transaction(engine) as session:
        _managed_organization(session, viewer, organization_id)
        chosen = (
            _channels_for(session, viewer, organization_id, changes.channel_ids)
            if changes.channel_ids is not None
            else None
        )
        policy = _policy_row(session, organization_id)
        if policy is None:
            base = _policy_row(session, None)
            policy = AlertPolicy(
                scope=GLOBAL_SCOPE
                if organization_id is None
                else organization_scope(organization_id),
                organization_id=organization_id,
                expiry_thresholds_days=list(
                    base.expiry_thresholds_days if base else DEFAULT_THRESHOLDS_DAYS
                ),
                notify_on_change=base.notify_on_change if base else True,
                failures_before_alert=base.failures_before_alert if base else 3,
                updated_at=now,
            )
        before = tuple(policy.expiry_thresholds_days)
        if thresholds is not None:
            policy.expiry_thresholds_days = list(thresholds)
        if changes.notify_on_change is not None:
            policy.notify_on_change = changes.notify_on_change
        if changes.failures_before_alert is not None:
            policy.failures_before_alert = changes.failures_before_alert
        policy.updated_at = now
        session.add(policy)
        session.flush()
        if chosen is not None:
            session.execute(
                sa.delete(AlertPolicyChannel).where(col(AlertPolicyChannel.policy_id) == policy.id)
            )
            for channel in chosen:
                assert policy.id is not None and channel.id is not None
                session.add(AlertPolicyChannel(policy_id=policy.id, channel_id=channel.id))
        if thresholds is not None and thresholds != before:
            _rearm(session, organization_id, max(thresholds + before), now)
    return effective_policy(engine, viewer=viewer, organization_id=organization_id)


def _rearm(session: Session, organization_id: int | None, days: int, now: datetime) -> None:
    """New thresholds: devices expiring within them are looked at by the next sweep."""
    query = (
        sa.update(DEVICES)
        .where(DEVICES.c.expires_at > now, DEVICES.c.expires_at <= now + timedelta(days=days))
        .values(expiry_alert_due_at=now)
    )
    if organization_id is not None:
        query = query.where(DEVICES.c.organization_id == organization_id)
    session.execute(query)


def effective_policy(
    engine: Engine, *, viewer: Viewer, organization_id: int | None
) -> EffectivePolicy:
    """The organization's own policy, else the global default (``organization`` None)."""
    with reader(engine) as session:
        organization = session.get(Organization, organization_id) if organization_id else None
        if organization_id is not None and (
            organization is None or not viewer.may_view(organization.type)
        ):
            raise not_found("organizationId", "Organization")
        policy = _policy_row(session, organization_id) if organization_id else None
        if policy is None:
            organization = None
            policy = _policy_row(session, None)
        channels: list[NotificationChannel] = []
        if policy is not None:
            channels = list(
                session.exec(
                    select(NotificationChannel)
                    .join(
                        AlertPolicyChannel,
                        col(AlertPolicyChannel.channel_id) == col(NotificationChannel.id),
                    )
                    .where(AlertPolicyChannel.policy_id == policy.id)
                    .order_by(col(NotificationChannel.id))
                )
            )
            channels = [c for c in channels if c.organization_id is not None or viewer.is_admin]
    if policy is None:
        return EffectivePolicy(None, DEFAULT_THRESHOLDS_DAYS, True, 3, [])
    return EffectivePolicy(
        organization,
        tuple(policy.expiry_thresholds_days),
        policy.notify_on_change,
        policy.failures_before_alert,
        channels,
    )


# --- alerts and devices ----------------------------------------------------------------------


def acknowledge(engine: Engine, *, viewer: Viewer, alert_id: int | None) -> Alert:
    """OPEN -> ACKNOWLEDGED (by whom, when); other states stay as they are."""
    with transaction(engine) as session:
        alert = session.get(Alert, alert_id) if alert_id else None
        device = session.get(Device, alert.device_id) if alert else None
        organization = session.get(Organization, device.organization_id) if device else None
        if alert is None or organization is None or not viewer.may_view(organization.type):
            raise not_found("id", "Alert")
        if not viewer.may_edit_devices(organization.type):
            raise forbidden("Your security level does not allow acknowledging alerts.")
        if alert.state == AlertState.OPEN:
            alert.state = AlertState.ACKNOWLEDGED.value
            alert.acknowledged_at = clock.now()
            alert.acknowledged_by = viewer.name
            session.add(alert)
        return alert


def set_alerts_muted(
    engine: Engine, *, viewer: Viewer, device_id: int | None, muted: bool
) -> Device:
    """A muted device raises no alert; unmuted, the expiry sweep looks at it again."""
    now = clock.now()
    with transaction(engine) as session:
        device = editable_device(session, viewer, device_id)
        assert device.id is not None
        if device.alerts_muted != muted:
            device.alerts_muted = muted
            if not muted and device.expires_at is not None:
                device.expiry_alert_due_at = now
            device.modified_at = now
            session.add(device)
            verb = "muted" if muted else "unmuted"
            add_note(
                session, device.id, f"Alerts {verb} by {viewer.name}.", author=viewer.name, now=now
            )
        return device
