"""Mutation resolvers, one module per feature: decode IDs, call the use case, answer with a
payload (``api.mutations.payloads``)."""

from __future__ import annotations

import strawberry

from api.imports import import_devices_field
from api.mutations.access import AccessMutation
from api.mutations.alerts import AlertMutation
from api.mutations.devices import DeviceMutation
from api.mutations.inventory import InventoryMutation


@strawberry.type
class Mutation(InventoryMutation, DeviceMutation, AccessMutation, AlertMutation):
    import_devices = import_devices_field
