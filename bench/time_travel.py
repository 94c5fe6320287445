"""Section 2: ``Studio.state_at`` latency deep into one project's scene log.

"With snapshots" is the studio as it ships: the scene resumes from its latest compaction (once
the tail holds 200 updates and a quarter of the last compaction's bytes: see
``core.events.scene.compaction_due``) and the project from the library's snapshot (every 50
versions), so a trip back in time reads one compacted document and a bounded tail. The title
says how the scene's log divides between the edits and the compactions' copies of the document.
"Without" reads the very same log through a ``Studio`` that neither resumes scenes from
compactions nor has a snapshot table, so every load replays the aggregate from version 1: it
reads and decodes every event, every earlier compaction included. That costs seconds per sample
deep into the log, so a cell whose first sample outruns its time budget keeps that one sample.

"merge p50" is the part of "with" that merges the compacted document and the tail into one
update (``Scene.state``): it grows with the document, which keeps a tombstone for every value
ever overwritten, not with the position, and it is the floor of this read while the result is
one Yjs update. "snapshot() p50" is what the HTTP route adds to render that update as JSON.

"read model" is the path the HTTP route takes once the projections have reached the position:
the project from the event store (``Studio.project_at``) and the scene, already as JSON, from
the scene history read model (``SCENE_AT``: one index probe per object id) — no Yjs document
is merged or loaded. The read model is caught up from the whole log before it is sampled (its
catch-up rate is in the title), and its answer is checked against ``state_at`` once per
checkpoint.
"""

from __future__ import annotations

import random
import time
from typing import Any
from uuid import UUID

import psycopg

from bench.harness import Table, fresh_database, median, percentile, timed
from bench.scene_edits import SceneEditor, edit_update_sizes
from bench.sizes import Sizes
from core.events.scene import Scene
from core.events.studio import Studio, eventstore_env
from core.projections.runner import ProjectionRunner
from core.projections.scene_objects import SCENE_AT, scene_from_rows
from core.scene import document

WINDOW = 200  # positions sampled below each checkpoint: one compaction cycle of tail lengths
GOAL_P50_MS = 20.0
MIN_SAMPLES = 3


class StudioWithoutSnapshots(Studio):
    """The studio reading its log with no snapshots of any kind: every load replays it."""

    name = "Studio"  # the same tables as the real one
    snapshotting_intervals = {}  # type: ignore[var-annotated]
    resume_scenes = False


def fill_scene(studio: Studio, project: UUID, sizes: Sizes) -> tuple[int, float]:
    """Append realistic scene updates in batches; returns how many and the seconds it took.

    Filling stops early when ``travel_fill_seconds`` run out, so a slow append path shows up
    as checkpoints not reached instead of a benchmark that never ends.
    """
    editor = SceneEditor(seed=1)
    start = time.perf_counter()
    done = 0
    while done < sizes.travel_updates and time.perf_counter() - start < sizes.travel_fill_seconds:
        count = min(sizes.batch, sizes.travel_updates - done)
        studio.append_scene_updates(
            project, [(editor.next_update(), f"user-{i % 4}", "bench") for i in range(count)])
        done += count
    return done, time.perf_counter() - start


def sample_latencies(studio: Studio, project: UUID, checkpoint: int, sizes: Sizes,
                     seed: int) -> list[float]:
    """``state_at`` seconds at positions in the compaction cycle just below ``checkpoint``.

    At least ``MIN_SAMPLES`` unless the first sample alone took over the cell's budget."""
    return _sample(lambda p: studio.state_at(project, p), checkpoint, sizes, seed)


def read_model_state(studio: Studio, conn: psycopg.Connection[Any], project: UUID,
                     position: int) -> dict[str, Any]:
    """The route's read-model path: the project at ``position`` and the scene as JSON."""
    state = studio.project_at(project, position)
    rows = conn.execute(SCENE_AT, {"project": project, "at": position}, prepare=True).fetchall()
    scene = scene_from_rows(rows, position)
    if scene is None:
        raise RuntimeError(f"the scene history has not reached position {position}")
    return {"name": state.name, "members": state.members, "scene": scene}


def _sample(read: Any, checkpoint: int, sizes: Sizes, seed: int) -> list[float]:
    rng = random.Random(seed)
    low = max(1, checkpoint - WINDOW + 1)
    start = time.perf_counter()
    read(checkpoint)  # warm the connection pool and statement cache
    warmed = time.perf_counter()
    latencies: list[float] = []
    deadline = warmed + max(0.0, sizes.travel_cell_seconds - (warmed - start))
    minimum = MIN_SAMPLES if warmed - start < sizes.travel_cell_seconds / MIN_SAMPLES else 1
    while len(latencies) < sizes.travel_samples and (
            len(latencies) < minimum or time.perf_counter() < deadline):
        position = rng.randint(low, checkpoint)
        latencies.append(timed(lambda p=position: read(p)))  # type: ignore[misc]
    return latencies


def catch_up_scene_history(url: str) -> tuple[int, float]:
    """Bring the scene history read model to the log's head; events and seconds."""
    runner = ProjectionRunner(url, names=["scene_objects"])
    try:
        start = time.perf_counter()
        events = runner.catch_up()
        return events, time.perf_counter() - start
    finally:
        runner.close()


def check_read_model(studio: Studio, conn: psycopg.Connection[Any], project: UUID,
                     position: int) -> None:
    expected = document.snapshot(studio.state_at(project, position).scene)
    if read_model_state(studio, conn, project, position)["scene"] != expected:
        raise AssertionError(f"the scene history differs from state_at at {position}")


def merge_cost(studio: Studio, project: UUID, checkpoint: int, seed: int) -> float:
    """Median seconds of ``Scene.state`` (compaction and tail merged) below ``checkpoint``."""
    rng = random.Random(seed)
    low = max(1, checkpoint - WINDOW + 1)
    scene_id = Scene.create_id(str(project))
    costs = []
    for _ in range(9):
        _, versions = studio._versions_at([scene_id], rng.randint(low, checkpoint))
        version = versions[scene_id]
        if version is not None:
            scene: Scene = studio.repository.get(scene_id, version=version)
            costs.append(timed(lambda s=scene: s.state))  # type: ignore[misc]
    return median(costs)


def scene_log_bytes(conn: psycopg.Connection[Any], project: UUID) -> dict[str, tuple[int, int]]:
    """The scene's stored events by kind: how many, and their bytes as stored."""
    rows = conn.execute(
        "SELECT topic, count(*), sum(octet_length(state)) FROM studio_events"
        " WHERE originator_id = %s GROUP BY topic", [Scene.create_id(str(project))]).fetchall()
    return {topic.rsplit(".", 1)[-1]: (count, int(total)) for topic, count, total in rows}


def snapshot_cost(studio: Studio, project: UUID, checkpoint: int) -> tuple[float, int]:
    """Median seconds of ``document.snapshot`` on the scene at ``checkpoint``, and its bytes."""
    scene = studio.state_at(project, checkpoint).scene
    return median([timed(lambda: document.snapshot(scene)) for _ in range(5)]), len(scene)


def run_section(server_url: str, sizes: Sizes) -> list[Table]:
    with fresh_database(server_url) as url:
        studio = Studio.connect(url)
        bare = StudioWithoutSnapshots(env=eventstore_env(url, IS_SNAPSHOTTING_ENABLED="n"))
        try:
            project = studio.create_project("time travel", "bench")
            filled, fill_seconds = fill_scene(studio, project, sizes)
            head = studio.max_position()
            caught_up = catch_up_scene_history(url)
            with psycopg.connect(url, autocommit=True) as conn:
                table = _travel_table(sizes, head, filled, fill_seconds, caught_up,
                                      scene_log_bytes(conn, project))
                for checkpoint in sizes.travel_checkpoints:
                    if checkpoint > head:
                        table.add(checkpoint, "not reached: fill budget ran out",
                                  *[""] * (len(table.headers) - 2))
                        continue
                    with_snapshots = sample_latencies(studio, project, checkpoint, sizes, seed=1)
                    without = sample_latencies(bare, project, checkpoint, sizes, seed=1)
                    check_read_model(studio, conn, project, checkpoint)
                    read_model = _sample(
                        lambda p: read_model_state(studio, conn, project, p),
                        checkpoint, sizes, seed=1)
                    merge_s = merge_cost(studio, project, checkpoint, seed=1)
                    snap_s, scene_bytes = snapshot_cost(studio, project, checkpoint)
                    _add_row(table, checkpoint, scene_bytes, with_snapshots, without,
                             read_model, (merge_s, snap_s))
        finally:
            bare.close()
            studio.close()
    return [table, _edit_size_table(sizes)]


def _travel_table(sizes: Sizes, head: int, filled: int, fill_seconds: float,
                  caught_up: tuple[int, float], log: dict[str, tuple[int, int]]) -> Table:
    events, seconds = caught_up
    updates, compactions = log.get("Updated", (0, 0)), log.get("Compacted", (0, 0))
    return Table(
        f"2. Time travel: Studio.state_at(project, position) in ms, positions drawn from the"
        f" {WINDOW} below each checkpoint\n   (one project, {filled:,} of"
        f" {sizes.travel_updates:,} scene updates in batches of {sizes.batch}, log head"
        f" {head:,}; setup appended {filled / fill_seconds:,.0f} updates/s,"
        f" {fill_seconds:.0f} s of a {sizes.travel_fill_seconds:g} s budget;"
        f"\n   the scene history read model caught up {events:,} events in {seconds:.1f} s;"
        f"\n   the scene's log: {updates[0]:,} updates of {updates[1] / 2**20:,.1f} MiB,"
        f" {compactions[0]:,} compactions of {compactions[1] / 2**20:,.1f} MiB,"
        f" {compactions[1] / max(updates[1], 1):.1f}x the updates' bytes)",
        ["position", "scene KiB", "with p50", "with p99", "n", "without p50", "without p99",
         "n", "without÷with", "merge p50", "snapshot() p50", "read model p50",
         "read model p99", "n", "goal p50 < 20 ms (with / read model)"])


def _add_row(table: Table, checkpoint: int, scene_bytes: int, with_snapshots: list[float],
             without: list[float], read_model: list[float],
             yjs_s: tuple[float, float]) -> None:
    p50 = median(with_snapshots) * 1e3
    model_p50 = median(read_model) * 1e3
    table.add(checkpoint, scene_bytes / 1024, p50, percentile(with_snapshots, 99) * 1e3,
              len(with_snapshots), median(without) * 1e3, percentile(without, 99) * 1e3,
              len(without), f"{median(without) / median(with_snapshots):.1f}x",
              yjs_s[0] * 1e3, yjs_s[1] * 1e3, model_p50, percentile(read_model, 99) * 1e3,
              len(read_model), f"{_goal(checkpoint, p50)} / {_goal(checkpoint, model_p50)}")


def _goal(checkpoint: int, p50_ms: float) -> str:
    if checkpoint >= 100_000:
        return "met" if p50_ms < GOAL_P50_MS else "MISSED"
    return f"({'under' if p50_ms < GOAL_P50_MS else 'over'})"


def _edit_size_table(sizes: Sizes) -> Table:
    table = Table(
        "2b. Bytes of one server-made update (one object set) after n edits:"
        " core.scene.document.edit vs a live peer doc",
        ["edits so far", "document.edit bytes", "live peer bytes", "edit ÷ peer"])
    for n, (edit_bytes, live_bytes) in edit_update_sizes(list(sizes.edit_sizes)).items():
        table.add(n, edit_bytes, live_bytes, f"{edit_bytes / live_bytes:.1f}x")
    return table
