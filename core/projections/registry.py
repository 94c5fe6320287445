"""Every read model the studio keeps, by name, and how far each has followed the log."""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.projection import Projection

from core.projections.catalogue import CatalogueProjection, CatalogueView
from core.projections.jobs import JobsProjection, JobsView
from core.projections.view import ReadModelView


@dataclass(frozen=True)
class ReadModel:
    name: str
    projection: type[Projection[ReadModelView]]
    view: type[ReadModelView]

    @property
    def tracking_table(self) -> str:
        return f"{self.name}_tracking"


READ_MODELS: tuple[ReadModel, ...] = (
    ReadModel("catalogue", CatalogueProjection, CatalogueView),  # type: ignore[arg-type]
    ReadModel("jobs", JobsProjection, JobsView),  # type: ignore[arg-type]
)

EVENTS_TABLE = "studio_events"
APPLICATION_NAME = "Studio"
