"""The ``tracking`` resource: the domain's ``Services`` (database, probes, RAW store).

Ops and sensors take it as ``tracking: TrackingResource`` and call ``tracking.services()``. In
a deployment the services are built from the ``DSTRACK_*`` environment
(``Settings.from_env()``), like the API's; tests hand in prebuilt ones with
``TrackingResource.for_services(services)``, or set ``environment``.
"""

# No `from __future__ import annotations`: Dagster reads these annotations at definition time.
import threading
from collections.abc import Mapping

import dagster as dg
from pydantic import Field
from sqlalchemy.engine import Engine

from models.db import create_engine
from tracking.core.settings import Settings
from tracking.refresh.services import Services
from tracking.wiring import build_services

RESOURCE_KEY = "tracking"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def shared_engine(url: str) -> Engine:
    """One engine (and connection pool) per database URL and process.

    Sensors get their resources afresh on every tick; the engine is what is worth keeping.
    """
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_engine(url)
        return engine


def services_from_env(environ: Mapping[str, str] | None = None) -> Services:
    settings = Settings.from_env(environ)
    return build_services(settings, shared_engine(settings.database_url))


class TrackingResource(dg.ConfigurableResource["TrackingResource"]):
    """dstrack's services, configured like the API by the ``DSTRACK_*`` environment variables
    (database URL, data directory, DNS servers, probe timeout, CA bundle)."""

    environment: dict[str, str] | None = Field(
        default=None,
        description=(
            "DSTRACK_* variables to use instead of the process environment (tests, tools); "
            "unset: the process environment."
        ),
    )

    def services(self) -> Services:
        return services_from_env(self.environment)

    def engine(self) -> Engine:
        """The database alone (a sensor's tick needs nothing more): shared per process."""
        return shared_engine(Settings.from_env(self.environment).database_url)

    @classmethod
    def for_services(cls, services: Services) -> "TrackingResource":
        """A resource handing out ``services`` as they are (tests, embedding)."""
        return _prebuilt_resource_class(services)()


def _prebuilt_resource_class(prebuilt: Services) -> type[TrackingResource]:
    # Dagster re-creates resources from their class and config, so the prebuilt services
    # live in the class rather than in (private) instance state.
    class PrebuiltTrackingResource(TrackingResource):
        """dstrack's services, prebuilt by the caller."""

        def services(self) -> Services:
            return prebuilt

        def engine(self) -> Engine:
            return prebuilt.engine

    return PrebuiltTrackingResource
