"""Who is calling: API tokens -> users -> security levels, and what they may do.

Only a SHA-256 of each token is stored; tokens are random, so a plain hash suffices.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select, update

from models import ApiToken, OrganizationType, SecurityLevel, User
from models.db import reader, retry_on_conflict, transaction
from tracking.core import clock
from tracking.core.errors import ErrorCode, ValidationError
from tracking.core.text import clean_name

log = logging.getLogger(__name__)

ADMIN_LEVEL_NAME = "Administrator"
ADMIN_USER_NAME = "admin"


@dataclass(frozen=True)
class Viewer:
    """The authenticated caller and the permissions of their security level."""

    user_id: int
    name: str
    is_admin: bool
    crm_access: bool
    view_organization_types: frozenset[str]
    can_add_devices: bool
    can_edit_devices: bool
    can_delete_devices: bool

    def may_view(self, organization_type: str) -> bool:
        return self.is_admin or (
            self.crm_access and organization_type in self.view_organization_types
        )

    @property
    def visible_types(self) -> frozenset[str] | None:
        """The organization types this viewer sees, or None for all (administrators)."""
        if self.is_admin:
            return None
        return self.view_organization_types if self.crm_access else frozenset()

    def may_add_devices(self, organization_type: str) -> bool:
        return self.is_admin or (self.may_view(organization_type) and self.can_add_devices)

    def may_edit_devices(self, organization_type: str) -> bool:
        return self.is_admin or (self.may_view(organization_type) and self.can_edit_devices)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "dst_" + secrets.token_urlsafe(32)


def authenticate(engine: Engine, token: str) -> Viewer | None:
    """The viewer a bearer token stands for, or None (unknown, revoked, or malformed)."""
    if not token or len(token) > 200:
        return None
    query = (
        select(User, SecurityLevel)
        .join(ApiToken, ApiToken.user_id == User.id)  # type: ignore[arg-type]
        .join(SecurityLevel, SecurityLevel.id == User.security_level_id)  # type: ignore[arg-type]
        .where(ApiToken.token_sha256 == hash_token(token))
        .where(col(ApiToken.revoked_at).is_(None))
    )
    with reader(engine) as session:
        row = session.exec(query).first()
    if row is None:
        return None
    user, level = row
    return viewer_for(user, level)


def viewer_for(user: User, level: SecurityLevel) -> Viewer:
    assert user.id is not None
    return Viewer(
        user_id=user.id,
        name=user.name,
        is_admin=level.is_admin,
        crm_access=level.crm_access,
        view_organization_types=frozenset(level.view_organization_types),
        can_add_devices=level.can_add_devices,
        can_edit_devices=level.can_edit_devices,
        can_delete_devices=level.can_delete_devices,
    )


def ensure_admin_user(engine: Engine) -> User:
    """The built-in administrator (and its security level), created on first use.

    Safe when several processes start at once: the one that loses the race finds the rows.
    """
    return retry_on_conflict(lambda: _ensure_admin_user(engine))


def _ensure_admin_user(engine: Engine) -> User:
    with transaction(engine) as session:
        level = session.exec(
            select(SecurityLevel).where(SecurityLevel.name == ADMIN_LEVEL_NAME)
        ).first()
        if level is None:
            level = SecurityLevel(
                name=ADMIN_LEVEL_NAME,
                crm_access=True,
                view_organization_types=[t.value for t in OrganizationType],
                can_add_devices=True,
                can_edit_devices=True,
                can_delete_devices=True,
                is_admin=True,
            )
            session.add(level)
            session.flush()
        user = session.exec(select(User).where(User.name == ADMIN_USER_NAME)).first()
        if user is None:
            assert level.id is not None
            user = User(name=ADMIN_USER_NAME, security_level_id=level.id, created_at=clock.now())
            session.add(user)
            session.flush()
        return user


def register_token(
    engine: Engine, *, user_id: int, token: str, from_environment: bool = False
) -> None:
    """Make ``token`` valid for the user; registering the same token again changes nothing.

    A token once revoked stays revoked: a leaked token must not come back with a restart.
    With ``from_environment``, the token stands for ``DSTRACK_ADMIN_TOKEN``: every other token
    registered from there is revoked, so the token configured last is the only one of its kind.
    Safe when several processes register the same token at once.
    """
    digest = hash_token(token)

    def register() -> None:
        with transaction(engine) as session:
            existing = session.exec(select(ApiToken).where(ApiToken.token_sha256 == digest)).first()
            if existing is None:
                session.add(
                    ApiToken(
                        user_id=user_id,
                        token_sha256=digest,
                        created_at=clock.now(),
                        from_environment=from_environment,
                    )
                )
            elif existing.revoked_at is not None:
                log.warning("the configured token was revoked and stays revoked; set a new one")
            elif from_environment and not existing.from_environment:
                existing.from_environment = True  # stored before tokens were marked
                session.add(existing)
            if from_environment:
                _revoke_other_environment_tokens(session, keep=digest)

    retry_on_conflict(register)


def _revoke_other_environment_tokens(session: Session, *, keep: str) -> None:
    replaced = session.exec(
        update(ApiToken)
        .where(col(ApiToken.from_environment).is_(True))
        .where(col(ApiToken.revoked_at).is_(None))
        .where(col(ApiToken.token_sha256) != keep)
        .values(revoked_at=clock.now())
    )
    if replaced.rowcount:
        log.info("DSTRACK_ADMIN_TOKEN changed: the token configured before is revoked")


ADMIN_TOKEN_MIN_LENGTH = 16
ADMIN_TOKEN_MAX_LENGTH = 200  # the longest token authenticate() accepts


def check_admin_token(token: str) -> None:
    """``DSTRACK_ADMIN_TOKEN`` must be hard to guess and usable in a header."""
    if len(token) < ADMIN_TOKEN_MIN_LENGTH:
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"DSTRACK_ADMIN_TOKEN is {len(token)} characters long; it must have at least "
            f"{ADMIN_TOKEN_MIN_LENGTH} (generate one with: python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))').",
            field="DSTRACK_ADMIN_TOKEN",
        )
    if len(token) > ADMIN_TOKEN_MAX_LENGTH or token != token.strip() or not token.isprintable():
        raise ValidationError(
            ErrorCode.INVALID_INPUT,
            f"DSTRACK_ADMIN_TOKEN must be at most {ADMIN_TOKEN_MAX_LENGTH} printable characters, "
            "without spaces at either end.",
            field="DSTRACK_ADMIN_TOKEN",
        )


def ensure_admin_token(engine: Engine, token: str) -> None:
    """``DSTRACK_ADMIN_TOKEN``: an administrator whose API token is this value exists, and the
    token configured there before (if another) no longer works. Tokens made by
    ``dstrack create-token`` or ``createUser`` are left alone."""
    check_admin_token(token)
    admin = ensure_admin_user(engine)
    assert admin.id is not None
    register_token(engine, user_id=admin.id, token=token, from_environment=True)


def issue_token(engine: Engine, *, user_id: int) -> str:
    """A new random token for the user; only its hash is kept, so show it once."""
    token = new_token()
    register_token(engine, user_id=user_id, token=token)
    return token


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise ValidationError(
            ErrorCode.FORBIDDEN, "Only administrators may manage users and security levels."
        )


def create_security_level(
    engine: Engine,
    *,
    viewer: Viewer,
    name: str,
    crm_access: bool,
    view_organization_types: list[OrganizationType],
    can_add_devices: bool,
    can_edit_devices: bool,
    can_delete_devices: bool,
    is_admin: bool = False,
) -> SecurityLevel:
    _require_admin(viewer)
    clean = clean_name(name, field="name", max_length=200)
    with transaction(engine) as session:
        if session.exec(select(SecurityLevel).where(SecurityLevel.name == clean)).first():
            raise ValidationError(
                ErrorCode.DUPLICATE_NAME, f'A security level named "{clean}" exists.', field="name"
            )
        level = SecurityLevel(
            name=clean,
            crm_access=crm_access,
            view_organization_types=sorted({t.value for t in view_organization_types}),
            can_add_devices=can_add_devices,
            can_edit_devices=can_edit_devices,
            can_delete_devices=can_delete_devices,
            is_admin=is_admin,
        )
        session.add(level)
        return level


def create_user(
    engine: Engine, *, viewer: Viewer, name: str, security_level_id: int | None
) -> tuple[User, SecurityLevel, str]:
    """A user with a new API token; the token is returned once and only its hash is kept."""
    _require_admin(viewer)
    clean = clean_name(name, field="name", max_length=200)
    with transaction(engine) as session:
        level = session.get(SecurityLevel, security_level_id) if security_level_id else None
        if level is None:
            raise ValidationError(
                ErrorCode.NOT_FOUND, "Security level not found.", field="securityLevelId"
            )
        if session.exec(select(User).where(User.name == clean)).first():
            raise ValidationError(
                ErrorCode.DUPLICATE_NAME, f'A user named "{clean}" exists.', field="name"
            )
        assert level.id is not None and clean is not None
        user = User(name=clean, security_level_id=level.id, created_at=clock.now())
        session.add(user)
        session.flush()
        assert user.id is not None
        token = new_token()
        session.add(
            ApiToken(user_id=user.id, token_sha256=hash_token(token), created_at=clock.now())
        )
    return user, level, token


def revoke_tokens(engine: Engine, *, user_name: str) -> int:
    """Revoke every token of a user; returns how many were active."""
    now = clock.now()
    with transaction(engine) as session:
        user = session.exec(select(User).where(User.name == user_name)).first()
        if user is None:
            raise ValidationError(ErrorCode.NOT_FOUND, "User not found.", field="user")
        tokens = session.exec(
            select(ApiToken).where(ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None))
        ).all()
        for token in tokens:
            token.revoked_at = now
            session.add(token)
        return len(tokens)


def user_named(engine: Engine, name: str) -> User | None:
    with reader(engine) as session:
        return session.exec(select(User).where(User.name == name)).first()
