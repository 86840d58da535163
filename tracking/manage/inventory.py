"""Organizations, contracts, products and the service-wide tracking switch."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import (
    CategoryDefaultProduct,
    Contract,
    DeviceCategory,
    Organization,
    OrganizationType,
    Product,
)
from models.db import reader, retry_on_conflict, transaction
from models.inventory import NAME_MAX
from tracking.core import clock
from tracking.core.errors import ErrorCode, ValidationError, forbidden, not_found
from tracking.core.text import clean_name
from tracking.manage.access import Viewer

SYSTEM_PRODUCT_NAME = "None"


def ensure_system_data(engine: Engine) -> None:
    """The system product "None" exists (every device needs a product).

    Safe when several processes start at once: the one that loses the race finds the row.
    """

    def ensure() -> None:
        with transaction(engine) as session:
            if session.exec(select(Product).where(Product.is_system)).first() is None:
                session.add(
                    Product(name=SYSTEM_PRODUCT_NAME, is_system=True, created_at=clock.now())
                )

    retry_on_conflict(ensure)


# Organizations ---------------------------------------------------------------------------


def create_organization(
    engine: Engine, *, viewer: Viewer, name: str, type: OrganizationType
) -> Organization:
    clean = clean_name(name, field="name", max_length=NAME_MAX)
    if not viewer.may_view(type):
        raise forbidden(f"You may not manage organizations of type {type.value}.")
    with transaction(engine) as session:
        organization = Organization(name=clean, type=type, created_at=clock.now())
        session.add(organization)
        return organization


def visible_organization(
    session: Session, viewer: Viewer, organization_id: int | None, *, field: str
) -> Organization:
    organization = session.get(Organization, organization_id) if organization_id else None
    if organization is None or not viewer.may_view(organization.type):
        raise not_found(field, "Organization")
    return organization


# Contracts -------------------------------------------------------------------------------


def create_contract(
    engine: Engine, *, viewer: Viewer, organization_id: int | None, name: str
) -> Contract:
    clean = clean_name(name, field="name", max_length=NAME_MAX)
    with transaction(engine) as session:
        organization = visible_organization(
            session, viewer, organization_id, field="organizationId"
        )
        assert organization.id is not None
        contract = Contract(name=clean, organization_id=organization.id, created_at=clock.now())
        session.add(contract)
        return contract


def contract_for_device(
    session: Session, viewer: Viewer, contract_id: int | None, organization: Organization
) -> Contract:
    """A device's contract must belong to the device's organization."""
    contract = session.get(Contract, contract_id) if contract_id else None
    if contract is None:
        raise not_found("contractId", "Contract")
    owner = session.get(Organization, contract.organization_id)
    if owner is None or not viewer.may_view(owner.type):
        raise not_found("contractId", "Contract")
    if contract.organization_id != organization.id:
        raise ValidationError(
            ErrorCode.CONTRACT_ORGANIZATION_MISMATCH,
            "The contract belongs to another organization than the device.",
            field="contractId",
        )
    return contract


# Products --------------------------------------------------------------------------------


def _require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise forbidden("Only administrators may manage products.")


def create_product(engine: Engine, *, viewer: Viewer, name: str) -> Product:
    _require_admin(viewer)
    clean = clean_name(name, field="name", max_length=NAME_MAX)
    duplicate = ValidationError(
        ErrorCode.DUPLICATE_NAME, f'A product named "{clean}" exists.', field="name"
    )
    try:
        with transaction(engine) as session:
            if session.exec(select(Product).where(Product.name == clean)).first() is not None:
                raise duplicate
            product = Product(name=clean, created_at=clock.now())
            session.add(product)
            session.flush()
            return product
    except sa.exc.IntegrityError as exc:  # the same name created concurrently
        raise duplicate from exc


def set_default_product(
    engine: Engine, *, viewer: Viewer, category: DeviceCategory, product_id: int | None
) -> Product:
    _require_admin(viewer)
    with transaction(engine) as session:
        product = session.get(Product, product_id) if product_id else None
        if product is None:
            raise not_found("productId", "Product")
        default = session.get(CategoryDefaultProduct, category.value)
        if default is None:
            assert product.id is not None
            session.add(CategoryDefaultProduct(category=category, product_id=product.id))
        else:
            default.product_id = product.id  # type: ignore[assignment]
        return product


def product_for_device(
    session: Session, product_id: int | None, category: DeviceCategory
) -> Product:
    """The chosen product, else the category's default, else the system product "None"."""
    if product_id is not None:
        product = session.get(Product, product_id)
        if product is None:
            raise not_found("productId", "Product")
        return product
    default = session.get(CategoryDefaultProduct, category.value)
    if default is not None:
        product = session.get(Product, default.product_id)
        if product is not None:
            return product
    system = session.exec(select(Product).where(Product.is_system)).first()
    if system is None:
        raise RuntimeError("the system product is missing: run migrations and start-up")
    return system


def list_products(engine: Engine) -> list[Product]:
    with reader(engine) as session:
        return list(session.exec(select(Product).order_by(Product.id)))  # type: ignore[arg-type]
