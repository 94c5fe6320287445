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
the overlap, so on those inputs the signed volume is the wrong yardstick.

On the closed inputs whose faces cross (``crossed in``) the output's volume is compared with
the volume of the union of the input's shells instead (``dV vs union``), estimated by
:func:`union_volume`: vertical rays through the input, at points of its bounding box's
footprint drawn by stratified sampling (a fixed seed, two uniform points in each cell of a
square grid), each ray's length inside the union measured exactly, and their mean times the
footprint's area. Inside the union means a positive winding number: each face a ray crosses
adds its orientation (+1 leaving an outward shell, -1 entering it), so a point inside two
overlapping shells counts once, a cavity (a shell wound inwards inside another) stays empty,
and a shell whose own faces cross still has a well-defined inside. The two samples per cell
give the estimate's standard error (``UNION_RAYS`` rays in all; the notes under the table
give the count, the largest relative standard error and the time taken). The figure is cheap
(about a second over the corpus) and independent of the booleans the repair uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pymeshfix
import trimesh
from numpy.typing import NDArray

from bench.harness import Table, median, percentile
from core.meshio import load_mesh
from tests.corpus import CORPUS, corpus_meshes, corpus_name
from workers.mesh.analysis import basic_stats
from workers.mesh.printability import analyse_printability
from workers.mesh.printer import PrinterProfile
from workers.mesh.repair import MeshQuality, assess, count_lost_bodies, repair

Repairer = Callable[[trimesh.Trimesh], trimesh.Trimesh]

UNION_RAYS = 2 * 141**2
"""Rays cast per input for the union volume: two in each cell of a 141 by 141 grid."""
"""Rays cast through each crossed closed input to estimate the volume of its shells' union."""

UNION_SEED = 6
"""Seed of the ray positions, so every run measures the same rays."""

_PAIRS_PER_CHUNK = 500_000
"""Triangle-cell pairs tested at once by :func:`union_volume`, to bound its memory."""


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
    # closed inputs whose faces cross: output volume against the union of the input's shells
    union_volume_changes: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    broken_seconds: list[float] = field(default_factory=list)  # inputs not printable as loaded

    def add(
        self, mesh: trimesh.Trimesh, before: MeshQuality, run: Repairer, union: float | None
    ) -> None:
        """Run one peer on one mesh and record how its output fares; ``union`` is the volume
        of the union of the input's shells, where the input is closed and its faces cross."""
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
            self._judge(mesh, before, output, union)

    def _judge(
        self,
        mesh: trimesh.Trimesh,
        before: MeshQuality,
        output: trimesh.Trimesh,
        union: float | None,
    ) -> None:
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
            elif union is not None and union > 0:
                self.union_volume_changes.append(abs(after.volume / union - 1.0))


def loaded_corpus() -> Iterator[tuple[str, trimesh.Trimesh]]:
    """The corpus meshes by name, less those the loader refuses (the tests pin which)."""
    for path in corpus_meshes(loadable_only=True):
        yield corpus_name(path), load_mesh(path, file_type=path.suffix)


@dataclass(frozen=True)
class UnionVolume:
    """The estimated volume of the union of a mesh's closed shells."""

    volume: float
    standard_error: float
    unbalanced_rays: int  # rays whose crossings do not sum to zero: 0 on a closed mesh


def union_volume(
    mesh: trimesh.Trimesh, rays: int = UNION_RAYS, seed: int = UNION_SEED
) -> UnionVolume:
    """Estimate the volume of the union of ``mesh``'s closed shells (see the module docstring).

    Vertical rays are cast at two uniform points in each cell of a square grid over the
    bounding box's footprint; the length of each ray where the winding number is positive
    is exact, and the spread between the two rays of each cell gives the standard error of
    the stratified mean.
    """
    triangles = np.asarray(mesh.triangles, dtype=np.float64)
    if len(triangles) == 0:
        return UnionVolume(0.0, 0.0, 0)
    corners = triangles.reshape(-1, 3)
    lo, hi = corners.min(axis=0)[:2], corners.max(axis=0)[:2]
    span = np.maximum(hi - lo, np.finfo(np.float64).tiny)
    side = max(1, round(np.sqrt(rays / 2)))
    strata = side * side
    cells = np.stack(np.divmod(np.arange(strata), side), axis=1)
    jitter = np.random.default_rng(seed).random((2 * strata, 2))
    points = lo + (np.repeat(cells, 2, axis=0) + jitter) / side * span
    lengths, unbalanced = _lengths_inside(triangles, points, lo, span)
    pairs = lengths.reshape(strata, 2)
    variance = float(((pairs[:, 0] - pairs[:, 1]) ** 2).sum()) / 4 / strata**2
    area = float(span[0] * span[1])
    return UnionVolume(area * float(lengths.mean()), area * variance**0.5, unbalanced)


def _lengths_inside(
    triangles: NDArray[np.float64], points: NDArray[np.float64], lo: NDArray[np.float64],
    span: NDArray[np.float64],
) -> tuple[NDArray[np.float64], int]:
    """Length of each vertical ray through ``points`` (x, y) where the winding number of
    ``triangles`` is positive, and how many rays' crossings do not sum to zero.

    Rays are bucketed in a grid (about four a cell); each triangle is tested against the
    rays in the cells its footprint's box covers."""
    side = max(1, int(np.sqrt(len(points) / 4)))
    key = _cell_key(points, lo, span, side)
    order = np.argsort(key, kind="stable")
    start = np.searchsorted(key[order], np.arange(side * side + 1))
    flat = triangles[:, :, :2]
    first = _cell_index(flat.min(axis=1), lo, span, side)
    extent = _cell_index(flat.max(axis=1), lo, span, side) - first + 1
    cells = extent[:, 0] * extent[:, 1]
    total = np.cumsum(cells)
    cuts = np.searchsorted(total, np.arange(_PAIRS_PER_CHUNK, total[-1], _PAIRS_PER_CHUNK))
    bounds = np.unique(np.concatenate([[0], cuts, [len(triangles)]]))
    rays, heights, signs = [], [], []
    for begin, end in pairwise(bounds):
        tri = np.arange(begin, end)
        tri_cell = np.repeat(tri, cells[tri])
        k = _ranks(cells[tri])
        rows = extent[tri_cell, 1]
        cell = (first[tri_cell, 0] + k // rows) * side + first[tri_cell, 1] + k % rows
        count = start[cell + 1] - start[cell]
        candidate = np.repeat(tri_cell, count)
        ray = order[np.repeat(start[cell], count) + _ranks(count)]
        hit, height, sign = _vertical_crossings(triangles[candidate], points[ray])
        rays.append(ray[hit])
        heights.append(height)
        signs.append(sign)
    ray, height, sign = np.concatenate(rays), np.concatenate(heights), np.concatenate(signs)
    lengths = np.zeros(len(points))
    if len(ray) == 0:
        return lengths, 0
    down = np.lexsort((-height, ray))  # by ray, then from the top down
    ray, height, sign = ray[down], height[down], sign[down]
    starts = np.flatnonzero(np.r_[True, ray[1:] != ray[:-1]])
    sizes = np.diff(np.r_[starts, len(ray)])
    winding = np.cumsum(sign)  # below each crossing, within its ray
    winding -= np.repeat(winding[starts] - sign[starts], sizes)
    inside = (ray[:-1] == ray[1:]) & (winding[:-1] > 0)
    gaps = (height[:-1] - height[1:])[inside]
    lengths += np.bincount(ray[:-1][inside], weights=gaps, minlength=len(points))
    return lengths, int(np.count_nonzero(winding[starts + sizes - 1] != 0))


def _cell_index(
    xy: NDArray[np.float64], lo: NDArray[np.float64], span: NDArray[np.float64], side: int
) -> NDArray[np.int64]:
    return np.clip(((xy - lo) / span * side).astype(np.int64), 0, side - 1)


def _cell_key(
    xy: NDArray[np.float64], lo: NDArray[np.float64], span: NDArray[np.float64], side: int
) -> NDArray[np.int64]:
    index = _cell_index(xy, lo, span, side)
    return np.asarray(index[:, 0] * side + index[:, 1], dtype=np.int64)


def _ranks(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """0, 1, ... within each of consecutive runs of the given lengths."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def _cross(u: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0], dtype=np.float64)


def _vertical_crossings(
    triangles: NDArray[np.float64], points: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
    """Which (triangle, point) pairs cross, the height of each crossing, and its sign: +1
    where the triangle faces up (a ray going up leaves through it), -1 where it faces down."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    area = _cross(b[:, :2] - a[:, :2], c[:, :2] - a[:, :2])
    weight_c = _cross(b[:, :2] - a[:, :2], points - a[:, :2])
    weight_a = _cross(c[:, :2] - b[:, :2], points - b[:, :2])
    weight_b = _cross(a[:, :2] - c[:, :2], points - c[:, :2])
    facing = np.sign(area)
    hit = np.flatnonzero(
        (facing != 0)
        & (np.sign(weight_a) == facing)
        & (np.sign(weight_b) == facing)
        & (np.sign(weight_c) == facing)
    )
    height = (
        weight_a[hit] * a[hit, 2] + weight_b[hit] * b[hit, 2] + weight_c[hit] * c[hit, 2]
    ) / area[hit]
    return hit, height, facing[hit].astype(np.int64)


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
    meshes = list(loaded_corpus())
    tallies = {name: Tally() for name in PEERS}
    assess_seconds: list[float] = []
    unions: dict[str, UnionVolume] = {}
    union_seconds = 0.0
    for file, mesh in meshes:
        start = time.perf_counter()
        before = assess(mesh)
        if not before.printable:
            assess_seconds.append(time.perf_counter() - start)
        union: float | None = None
        closed = before.volume is not None and before.volume > 0
        if closed and before.self_intersecting_faces > 0:
            start = time.perf_counter()
            unions[file] = union_volume(mesh)
            union_seconds += time.perf_counter() - start
            union = unions[file].volume
        for name, run in PEERS.items():
            tallies[name].add(mesh, before, run, union)
    _table(tallies, len(meshes)).print()
    if unions:
        worst = max(unions, key=lambda f: unions[f].standard_error / max(unions[f].volume, 1e-300))
        print(
            f"dV vs union: the union of the input's shells is estimated from {UNION_RAYS:,} "
            f"vertical rays (stratified, seed {UNION_SEED}) on each of the {len(unions)} "
            f"crossed closed inputs, {union_seconds:.1f} s in all; relative standard error at "
            f"most {100 * unions[worst].standard_error / unions[worst].volume:.2f} % "
            f"({worst}); rays whose crossings do not balance: "
            f"{sum(u.unbalanced_rays for u in unions.values())}"
        )
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
            "crossed in: n",
            "dV vs union max %",
            "median ms",
            "p90 ms",
            "median ms broken in",
        ],
    )
    for name, tally in tallies.items():
        changes = [100 * c for c in tally.volume_changes]
        uncrossed = [100 * c for c in tally.uncrossed_volume_changes]
        union = [100 * c for c in tally.union_volume_changes]
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
            len(union),
            max(union, default=float("nan")),
            1000 * median(tally.seconds),
            1000 * percentile(tally.seconds, 90),
            1000 * median(tally.broken_seconds),
        )
    return table


if __name__ == "__main__":
    main()
