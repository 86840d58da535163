"""Users, their security levels and API tokens (only a hash of a token is stored)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.types import JSONList, UTCDateTime


class SecurityLevel(SQLModel, table=True):
    __tablename__ = "security_levels"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    crm_access: bool = False
    view_organization_types: list[str] = Field(default_factory=list, sa_type=JSONList)
    can_add_devices: bool = False
    can_edit_devices: bool = False
    can_delete_devices: bool = False
    is_admin: bool = False


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    security_level_id: int = Field(foreign_key="security_levels.id")
    created_at: datetime = Field(sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Registered from DSTRACK_ADMIN_TOKEN: replaced when another token is configured there.
    from_environment: bool = False


class RetrievalBudget(SQLModel, table=True):
    """What is left of a user's retrievals (a token bucket), shared by every API worker."""

    __tablename__ = "retrieval_budgets"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    tokens: float
    refilled_at: datetime = Field(sa_type=UTCDateTime)
    version: int = 0  # compare-and-set: concurrent takers never both spend the same tokens
