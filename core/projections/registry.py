"""Every read model the studio keeps, by name."""

from __future__ import annotations

from collections.abc import Callable

from core.projections.analytics_platform import PlatformAnalyticsReadModel
from core.projections.analytics_users import UserAnalyticsReadModel
from core.projections.assistant import AssistantReadModel
from core.projections.catalogue import CatalogueReadModel
from core.projections.generation_stats import GenerationStatsReadModel
from core.projections.history import HistoryReadModel
from core.projections.jobs import JobsReadModel
from core.projections.readmodel import ReadModel
from core.projections.scene_objects import SceneAt, SceneObjectsReadModel
from core.projections.user_tiers import UserTiersReadModel

EVENTS_TABLE = "studio_events"
TRACKING_TABLE = "rm_tracking"

READ_MODEL_NAMES: tuple[str, ...] = (
    "catalogue", "jobs", "history", "scene_objects", "generation_stats", "user_tiers",
    "assistant", "analytics_users", "analytics_platform")


def build_read_models(scene_at: SceneAt) -> dict[str, ReadModel]:
    factories: dict[str, Callable[[], ReadModel]] = {
        "catalogue": CatalogueReadModel,
        "jobs": JobsReadModel,
        "history": HistoryReadModel,
        "scene_objects": lambda: SceneObjectsReadModel(scene_at),
        "generation_stats": GenerationStatsReadModel,
        "user_tiers": UserTiersReadModel,
        "assistant": AssistantReadModel,
        "analytics_users": UserAnalyticsReadModel,
        "analytics_platform": PlatformAnalyticsReadModel,
    }
    assert tuple(factories) == READ_MODEL_NAMES
    return {name: make() for name, make in factories.items()}
