"""Values the log may hold but PostgreSQL refuses are made storable in one place.

``jsonb`` refuses NaN and infinities (``Token "Infinity" is invalid``) and U+0000; ``text``
refuses NUL. A read model's parameters pass through :func:`storable` on their way to the
database, so no model can stop on such a value (issue 19, reproduction 1).
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from core.events.job import Job
from core.events.project import Project
from core.events.scene import Scene
from core.projections.catalogue import CatalogueReadModel
from core.projections.generation_stats import GenerationStatsReadModel
from core.projections.readmodel import json_safe, object_ids, storable


def _strict(value: Any) -> str:
    """JSON as PostgreSQL's parser takes it: raises on NaN and infinities."""
    return json.dumps(value, allow_nan=False)


def test_non_finite_numbers_become_null_at_any_depth() -> None:
    value = {"merge_tolerance": math.inf, "list": [1.5, -math.inf, math.nan, {"x": math.nan}],
             "tuple": (math.inf,), "fine": 2.5, "n": 3, "flag": True, "none": None}
    assert json_safe(value) == {"merge_tolerance": None, "list": [1.5, None, None, {"x": None}],
                                "tuple": [None], "fine": 2.5, "n": 3, "flag": True,
                                "none": None}
    _strict(json_safe(value))


def test_nul_keys_and_types_json_has_none_for_become_text() -> None:
    job = uuid.uuid4()
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    value = {"a\x00b": "c\x00d", 1: "one", None: 0, False: 1, "id": job, "at": at,
             "raw": b"\x01"}
    assert json_safe(value) == {"a\ufffdb": "c\ufffdd", "1": "one", "null": 0, "false": 1,
                                "id": str(job), "at": at.isoformat(), "raw": "b'\\x01'"}
    assert "\\u0000" not in _strict(json_safe(value))


def test_storable_cleans_text_and_json_parameters_and_leaves_the_rest() -> None:
    job = uuid.uuid4()
    cleaned = storable({"name": "x\x00y", "params": Jsonb({"t": math.inf}),
                        "ids": ["a\x00", "b"], "id": job, "size": 3, "ratio": math.inf})
    assert cleaned["name"] == "x\ufffdy"
    assert cleaned["params"].obj == {"t": None}
    assert cleaned["ids"] == ["a\ufffd", "b"]
    assert (cleaned["id"], cleaned["size"], cleaned["ratio"]) == (job, 3, math.inf)


def test_object_ids_accept_whatever_a_stored_list_holds() -> None:
    assert object_ids(["b", "a", 3]) == ["3", "a", "b"]
    assert object_ids("not a list") == []
    assert object_ids(None) == []
    assert object_ids({"k": 1}) == ["k"]


def test_a_model_handles_the_classes_it_has_statements_for() -> None:
    assert CatalogueReadModel.handles(Project.Renamed)
    assert not CatalogueReadModel.handles(Scene.Updated)
    assert GenerationStatsReadModel.handles(Job.StageCompleted)
    assert not GenerationStatsReadModel.handles(Project.Created)


def _stage(stats: Any) -> Job.StageCompleted:
    """A stage event as the log may hold it, built without the aggregate's checks."""
    event = object.__new__(Job.StageCompleted)
    object.__setattr__(event, "__dict__", {
        "originator_id": uuid.uuid4(), "originator_version": 3,
        "timestamp": datetime.now(UTC), "stage": "final", "blob": "b", "stats": stats})
    return event


def test_generation_stats_take_odd_worker_reports() -> None:
    model = GenerationStatsReadModel()
    for stats, seconds, peak in (
            ({"seconds": math.inf, "peak_memory_bytes": math.nan}, 0.0, None),
            ({"seconds": 10**400, "peak_memory_bytes": 2**70}, 0.0, None),
            ({"seconds": "fast", "peak_memory_bytes": True}, 0.0, None),
            ("not a dict", 0.0, None),
            ({"seconds": 1.5, "peak_memory_bytes": 2048.0}, 1.5, 2048)):
        [(_, params)] = model.statements(_stage(stats), 7)
        assert (params["seconds"], params["peak"]) == (seconds, peak), stats
