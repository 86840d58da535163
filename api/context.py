"""The per-request context handed to every resolver."""

from __future__ import annotations

from dataclasses import dataclass, field

from strawberry.types import Info as StrawberryInfo

from api.loaders import Loaders
from tracking.manage.access import Viewer
from tracking.refresh.services import Services


@dataclass
class Context:
    services: Services
    viewer: Viewer
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services.engine)


Info = StrawberryInfo[Context, None]
