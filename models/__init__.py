"""SQLModel tables, engine/session helpers and Alembic migrations.

Knows nothing of HTTP or Dagster.
"""

from models.access import ApiToken, RetrievalBudget, SecurityLevel, User
from models.alerts import (
    Alert,
    AlertDelivery,
    AlertPolicy,
    AlertPolicyChannel,
    NotificationChannel,
)
from models.audit import (
    ActivityNote,
    AppSetting,
    DomainDetailsRecord,
    RawFile,
    SslDetailsRecord,
    UpdateJob,
)
from models.enums import DeviceCategory, OrganizationType, SslSourceKind
from models.inventory import CategoryDefaultProduct, Contract, Device, Organization, Product
from models.metrics import UpdateCounter, UpdateDurationBucket

__all__ = [
    "ActivityNote",
    "Alert",
    "AlertDelivery",
    "AlertPolicy",
    "AlertPolicyChannel",
    "ApiToken",
    "AppSetting",
    "CategoryDefaultProduct",
    "Contract",
    "Device",
    "DeviceCategory",
    "DomainDetailsRecord",
    "NotificationChannel",
    "Organization",
    "OrganizationType",
    "Product",
    "RawFile",
    "RetrievalBudget",
    "SecurityLevel",
    "SslDetailsRecord",
    "SslSourceKind",
    "UpdateCounter",
    "UpdateDurationBucket",
    "UpdateJob",
    "User",
]
