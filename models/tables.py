"""The tables as SQLAlchemy Core sees them, for reads and writes that skip the ORM (plain rows,
one executemany per table): one typed name per table, here only."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

from models.access import ApiToken, RetrievalBudget, SecurityLevel, User
from models.alerts import Alert, AlertDelivery, AlertPolicy, AlertPolicyChannel, NotificationChannel
from models.audit import (
    ActivityNote,
    AppSetting,
    DomainDetailsRecord,
    RawFile,
    SslDetailsRecord,
    UpdateJob,
)
from models.inventory import CategoryDefaultProduct, Contract, Device, Organization, Product
from models.metrics import UpdateCounter, UpdateDurationBucket


def _table(model: type[SQLModel]) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


ACTIVITY_NOTES = _table(ActivityNote)
ALERTS = _table(Alert)
ALERT_DELIVERIES = _table(AlertDelivery)
ALERT_POLICIES = _table(AlertPolicy)
ALERT_POLICY_CHANNELS = _table(AlertPolicyChannel)
API_TOKENS = _table(ApiToken)
APP_SETTINGS = _table(AppSetting)
CATEGORY_DEFAULT_PRODUCTS = _table(CategoryDefaultProduct)
CONTRACTS = _table(Contract)
DEVICES = _table(Device)
DOMAIN_DETAILS = _table(DomainDetailsRecord)
NOTIFICATION_CHANNELS = _table(NotificationChannel)
ORGANIZATIONS = _table(Organization)
PRODUCTS = _table(Product)
RAW_FILES = _table(RawFile)
RETRIEVAL_BUDGETS = _table(RetrievalBudget)
SECURITY_LEVELS = _table(SecurityLevel)
SSL_DETAILS = _table(SslDetailsRecord)
UPDATE_COUNTERS = _table(UpdateCounter)
UPDATE_DURATION_BUCKETS = _table(UpdateDurationBucket)
UPDATE_JOBS = _table(UpdateJob)
USERS = _table(User)
