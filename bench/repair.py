"""One-click mesh repair against its peers, over the real mesh corpus, in one table.

Run ``python -m bench.repair``. Peers, each given the same loaded mesh:

- **nothing**: the mesh as loaded, to show how broken the corpus is;
- **trimesh**: trimesh's repair functions alone (weld, drop degenerate and duplicate faces,
  fix winding and normals per body, fill holes);
- **pymeshfix**: ``pymeshfix.MeshFix(v, f).repair()`` with its defaults (keeps the largest
  component only);
- **studio**: :func:`workers.mesh.repair.repair`.

Every output is judged by the same checks (:func:`workers.mesh.repair.assess` and
:func:`workers.mesh.repair.count_lost_bodies`); only the repair call itself is timed. A mesh
*succeeds* when the output is closed, edge- and vertex-manifold, consistently oriented with
positive volume, has no self-intersecting faces, and lost no real body. Nothing here asserts a
time (DESIGN: benchmarks are not timed tests).

Volume change is reported on the inputs that were closed as loaded (``closed in``), and again
on those of them whose faces do not cross (``uncrossed in``). A closed input made of shells
that overlap (simple_pole.glb: eleven posts and plates pushed into one another) has a signed
volume that counts each overlap twice; the solid a printer makes is their union, smaller by
the overlap, so only the second figure measures what a repair kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymeshfix
import trimesh

from bench.harness import Table, median, percentile
from core.errors import InvalidInput
from core.meshio import MESH_FORMATS, load_mesh
from workers.mesh.analysis import basic_stats
from workers.mesh.printability import analyse_printability
from workers.mesh.printer import PrinterProfile
from workers.mesh.repair import MeshQuality, assess, count_lost_bodies, repair

CORPUS = Path(
    os.environ.get(
        "ORFEAS_MESH_CORPUS",
        Path(__file__).resolve().parents[1].parent / "shared" / "meshes" / "trimesh",
    )
)

Repairer = Callable[[trimesh.Trimesh], trimesh.Trimesh]


def do_nothing(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The baseline: the mesh as loaded."""
    return mesh


def trimesh_alone(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """trimesh's own repair functions, in the order their docs suggest."""
    fixed = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    fixed.merge_vertices(merge_tex=True, merge_norm=True)
    fixed.update_faces(fixed.nondegenerate_faces())
    fixed.update_faces(fixed.unique_faces())
    fixed.remove_unreferenced_vertices()
    trimesh.repair.fix_winding(fixed)
    trimesh.repair.fix_normals(fixed, multibody=True)
    trimesh.repair.fill_holes(fixed)
    return fixed


def pymeshfix_alone(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """MeshFix's default repair, given positions welded as a printer would see them."""
    welded = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    welded.merge_vertices(merge_tex=True, merge_norm=True)
    fix = pymeshfix.MeshFix(np.asarray(welded.vertices), np.asarray(welded.faces, np.int32))
    fix.repair()
    return trimesh.Trimesh(fix.points, fix.faces, process=False)


def studio(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """The studio's one-click repair."""
    repaired, _ = repair(mesh)
    return repaired


PEERS: dict[str, Repairer] = {
    "nothing": do_nothing,
    "trimesh": trimesh_alone,
    "pymeshfix": pymeshfix_alone,
    "studio": studio,
}


@dataclass
class Tally:
    """One peer's results over the corpus."""

    meshes: int = 0
    successes: int = 0
    bodies_lost: int = 0
    empty: int = 0
    crashed: int = 0
    volume_changes: list[float] = field(default_factory=list)
    # closed inputs whose faces do not cross: their volume is the solid's, with no overlap
    # between shells counted twice, so it is the one a repair must keep
    uncrossed_volume_changes: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    broken_seconds: list[float] = field(default_factory=list)  # inputs not printable as loaded

    def add(self, mesh: trimesh.Trimesh, before: MeshQuality, run: Repairer) -> None:
        """Run one peer on one mesh and record how its output fares."""
        self.meshes += 1
        start = time.perf_counter()
        try:
            output: trimesh.Trimesh | None = run(mesh)
        except Exception:  # a peer that crashes on a mesh has failed it, nothing more
            output = None
        elapsed = time.perf_counter() - start
        self.seconds.append(elapsed)
        if not before.printable:
            self.broken_seconds.append(elapsed)
        if output is None:
            self.crashed += 1
        else:
            self._judge(mesh, before, output)

    def _judge(self, mesh: trimesh.Trimesh, before: MeshQuality, output: trimesh.Trimesh) -> None:
        if len(output.faces) == 0:
            self.empty += 1
        after = assess(output)
        lost = count_lost_bodies(mesh, output)
        self.bodies_lost += lost
        self.successes += after.printable and lost == 0
        if before.volume is not None and before.volume > 0 and after.volume is not None:
            change = abs(after.volume / before.volume - 1.0)
            self.volume_changes.append(change)
            if before.self_intersecting_faces == 0:
                self.uncrossed_volume_changes.append(change)


def corpus_meshes() -> Iterator[tuple[str, trimesh.Trimesh]]:
    """The corpus files the loader accepts, by name; refused files are skipped."""
    files = sorted(p for p in CORPUS.rglob("*") if p.suffix.lower().lstrip(".") in MESH_FORMATS)
    for path in files:
        try:
            yield path.relative_to(CORPUS).as_posix(), load_mesh(path, file_type=path.suffix)
        except InvalidInput:
            continue


def analysis_seconds_per_100k_faces(meshes: list[trimesh.Trimesh]) -> dict[str, float]:
    """Seconds per 100 000 faces of each part of the analysis a user asks for: the basic
    figures, the defect checks (self-intersections included) and the printability report
    (wall thickness by ray casting, overhangs, support, orientation search)."""
    profile = PrinterProfile()
    parts = {
        "basic figures": lambda mesh: basic_stats(mesh),
        "defect checks": lambda mesh: assess(mesh),
        "printability": lambda mesh: analyse_printability(mesh, profile),
    }
    faces = max(sum(len(mesh.faces) for mesh in meshes), 1)
    seconds = {}
    for name, run in parts.items():
        start = time.perf_counter()
        for mesh in meshes:
            run(mesh)
        seconds[name] = (time.perf_counter() - start) / faces * 100_000
    return seconds


def main() -> None:
    meshes = list(corpus_meshes())
    if not meshes:
        raise SystemExit(f"no loadable meshes under {CORPUS}")
    tallies = {name: Tally() for name in PEERS}
    assess_seconds: list[float] = []
    for _, mesh in meshes:
        start = time.perf_counter()
        before = assess(mesh)
        if not before.printable:
            assess_seconds.append(time.perf_counter() - start)
        for name, run in PEERS.items():
            tallies[name].add(mesh, before, run)
    _table(tallies, len(meshes)).print()
    studio, meshfix = tallies["studio"], tallies["pymeshfix"]
    ratio = median(studio.seconds) / median(meshfix.seconds)
    broken = median(studio.broken_seconds) / median(meshfix.broken_seconds)
    print(
        f"studio median time / pymeshfix median time: {ratio:.1f}x (goal <= 3x); "
        f"on the {len(studio.broken_seconds)} inputs not printable as loaded: {broken:.1f}x"
    )
    print(
        "of which the studio's quality report (assess before and after) takes about "
        f"{2000 * median(assess_seconds):.1f} ms of its "
        f"{1000 * median(studio.broken_seconds):.1f} ms median on those inputs"
    )
    per_100k = analysis_seconds_per_100k_faces([mesh for _, mesh in meshes])
    print("analysis, seconds per 100k faces: " + ", ".join(
        f"{name} {value:.3f}" for name, value in per_100k.items())
        + f"; all {sum(per_100k.values()):.3f}")


def _table(tallies: dict[str, Tally], count: int) -> Table:
    table = Table(
        f"mesh repair over {count} corpus meshes ({CORPUS})",
        [
            "peer",
            "success",
            "rate %",
            "bodies lost",
            "empty",
            "crashed",
            "closed in: n",
            "dV median %",
            "dV max %",
            "uncrossed in: n",
            "their dV max %",
            "median ms",
            "p90 ms",
            "median ms broken in",
        ],
    )
    for name, tally in tallies.items():
        changes = [100 * c for c in tally.volume_changes]
        uncrossed = [100 * c for c in tally.uncrossed_volume_changes]
        table.add(
            name,
            f"{tally.successes}/{tally.meshes}",
            100.0 * tally.successes / tally.meshes,
            tally.bodies_lost,
            tally.empty,
            tally.crashed,
            len(changes),
            median(changes),
            max(changes, default=float("nan")),
            len(uncrossed),
            max(uncrossed, default=float("nan")),
            1000 * median(tally.seconds),
            1000 * percentile(tally.seconds, 90),
            1000 * median(tally.broken_seconds),
        )
    return table


if __name__ == "__main__":
    main()
