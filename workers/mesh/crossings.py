"""Faces that cross one another: MeshFix's test, and nudging apart faces that only touch.

"Free of self-intersections" is judged with MeshFix's triangle-triangle intersection test
(``PyTMesh.select_intersecting_triangles(justproper=True)``): two faces intersect *properly*
when their interiors cross, as opposed to touching along the edges and corners they share.
The test runs on positions centred and scaled to a unit diagonal (see :func:`meshfix_mesh`).

Which faces it selects is read from its answer with care: pymeshfix 0.18 returns an
``(m, 3)`` array of which only the first ``m`` entries are filled, and they are indices into
MeshFix's own face list, which holds the faces loaded in reverse order. :func:`crossing_faces`
checks both facts on every call and refuses an answer that breaks them.

CAD exports (chamfers a fifth of a millimetre wide, fans of needle triangles) hold faces that
are coplanar or collinear to within rounding. Whether such faces "cross" then depends on the
last bits of their coordinates, so the test flips between yes and no when the part is merely
moved or scaled. :func:`nudged` moves the vertices of those faces by a billionth of the part's
size in random, seeded directions: faces that only touch fall apart, faces that truly cross
keep crossing, and the shape and volume do not change at any scale a printer resolves.

The test is the repair's main cost on CAD parts (close to a second for 14k faces of needle
fans), and a repair asks it about the same arrays more than once (a body, then the same body
handed to :func:`nudged`; a nudged candidate, then its measurement): the latest answers are
kept by a digest of the arrays (:data:`RECENT_ANSWERS`), so a repeated question costs a hash;
the size of the cells of MeshFix's grid is chosen per mesh (:mod:`workers.mesh.crossing_grid`);
and a nudge of a few faces is tested only near them where the caller tests the whole mesh
later anyway (:func:`retested`).

MeshFix's orientation predicates are not exact in this build: a triangle 3e-19 below another's
plane in exact arithmetic (on the synthetic CAD part, in MeshFix's unit frame) is answered as
crossing it; plain floating point gives a sign against the exact one when the corner far from
the other two is taken as the origin, which is what MeshFix's answer matches. So a pair of
faces that nearly touch can be answered either way depending on the order it is tested in
(airplane.ply: 80 crossing faces with cells of 1,000 triangles, 79 with 200). Faces that
close to touching are what :func:`nudged` parts.

Positions must be finite: MeshFix's grid cannot split a box holding NaN (a 1,280-face sphere
with one NaN corner ran for over ten minutes). The repair refuses such meshes on entry.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Final, NamedTuple

import numpy as np
import pymeshfix
import trimesh
from numpy.typing import NDArray

from workers.mesh.crossing_grid import cell_triangles

Faces = NDArray[np.int64]
Points = NDArray[np.float64]

NUDGE_STEPS: Final = (1e-9, 1e-8, 1e-7)
"""Sizes of the random nudges tried, as fractions of the mesh's bounding-box diagonal. The
largest moves a 100 mm part by 10 nm, far below any printer's resolution."""

NUDGE_TRIES: Final = 4
"""Nudges tried at each size before the next size."""

NUDGE_PATIENCE: Final = 2
"""Tries in a row that part nothing after which a size is given up: a nudge parts most faces
that only touch at once (a try that moves many faces tests the whole mesh, a third of a
second on 16k faces), so a body whose faces truly cross stops after three tests instead of
five."""

RECENT_ANSWERS: Final = 8
"""Answers of the crossing test kept, by a digest of the arrays asked about. On the synthetic
CAD parts 4 of a repair's 17 tests, and 3 of 10 on a tube through itself, were repeats."""

RETEST_MAX_FACES: Final = 512
"""Most faces with a moved corner that :func:`retested` takes on (it weighs each against
every face's box); a nudge of the few faces left touching moves a few dozen."""

RETEST_SHARE: Final = 2
""":func:`retested` tests a part of the mesh only when the part holds at most half of its
faces: MeshFix's time grows with the faces loaded, and finding the part costs a fifth to a
half of testing it (a synthetic CAD part: 318 faces moved, 5,582 of 17,716 faces near them,
220 ms to find and 320 ms to test them, against 1.2 s for the whole)."""

RETEST_SLACK: Final = 1e-12
"""Allowance (in diagonals) by which boxes that seem apart are taken to meet: MeshFix's
float predicates answer faces within rounding of touching either way."""

NUDGE_MAX_FACES: Final = 10_000
"""Most crossing faces :func:`nudged` takes on. Rounding leaves a few per contact (a union of
a hundred slabs left 160), and a rotated CAD part whose faces are fans of coplanar needles
thousands (4,926 of 13,982 on a synthetic one, all parted by one nudge); a nudge that parts
nothing ends the tries after the first size, so real overlap costs five tests."""


class MeshFixAnswerError(RuntimeError):
    """MeshFix's selection of crossing faces did not match the faces it was given."""


class _Answer(NamedTuple):
    """MeshFix's selection for one mesh: how many faces it selected, and which (indices into
    the faces given, sorted), or why they could not be mapped back."""

    selected: int
    faces: Faces | None
    refusal: str


class _RecentAnswers:
    """The latest few answers of the crossing test, by a digest of the arrays asked about.

    MeshFix's test is deterministic, so an answer kept is the answer it would give again.
    A lock keeps the table whole when threads share it (each geometry process has its own).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._answers: OrderedDict[bytes, _Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> _Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()

    def put(self, key: bytes, answer: _Answer) -> None:
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)


_RECENT = _RecentAnswers(RECENT_ANSWERS)


def forget_answers() -> None:
    """Drop the kept answers, so that the next repair pays for every test it asks: a bench
    timing peers on one mesh would otherwise hand one peer the answers another's (or its own
    judging's) tests left."""
    _RECENT.clear()


Frame = tuple[NDArray[np.float64], float]
"""``(centre (3,), scale)``: MeshFix is given ``(position - centre) / scale``."""


def unit_frame(vertices: Points, faces: Faces) -> Frame:
    """The frame that centres the used vertices' box and scales its diagonal to 1."""
    points = np.asarray(vertices, dtype=np.float64)
    if len(faces):
        used = np.zeros(len(points), dtype=bool)
        used[np.asarray(faces).ravel()] = True
        box = points[used]
    else:
        box = points
    centre = 0.5 * (box.min(axis=0) + box.max(axis=0)) if len(box) else np.zeros(3)
    scale = float(np.linalg.norm(np.ptp(box, axis=0))) if len(box) else 1.0
    return centre, scale if scale > 0 else 1.0


def meshfix_mesh(
    vertices: Points, faces: Faces, frame: Frame | None = None
) -> tuple[pymeshfix.PyTMesh, Frame]:
    """Load arrays into a quiet MeshFix mesh, centred and scaled to a unit diagonal.

    MeshFix compares lengths with fixed epsilons, so a part modelled in metres (a diagonal of
    a few hundredths) loses its small features to them; it is given unit-sized geometry.
    ``frame`` overrides the frame (:func:`unit_frame`): a part of a mesh is loaded in the
    whole mesh's, so that each face reaches MeshFix as the same numbers.

    Returns
    -------
    tmesh
        The loaded mesh.
    frame
        ``(centre (3,), scale)``: original positions are ``centre + scale * loaded``.
    """
    points = np.asarray(vertices, dtype=np.float64)
    centre, scale = unit_frame(points, faces) if frame is None else frame
    tmesh = pymeshfix.PyTMesh()
    tmesh.set_quiet(1)
    tmesh.load_array(
        np.ascontiguousarray((points - centre) / scale),
        np.ascontiguousarray(faces, dtype=np.int32),
    )
    return tmesh, (centre, scale)


def count_self_intersecting_faces(vertices: Points, faces: Faces) -> int:
    """Count the faces whose interior crosses another face, with MeshFix's exact-ish test.

    Parameters
    ----------
    vertices
        ``(n, 3) float`` positions.
    faces
        ``(m, 3) int`` indices into ``vertices``.
    """
    if len(faces) == 0:
        return 0
    return _answer(vertices, faces).selected


def crossing_faces(vertices: Points, faces: Faces) -> Faces:
    """Indices of the faces whose interior crosses another face, ``(k,) int64``, sorted.

    Raises
    ------
    MeshFixAnswerError
        MeshFix changed the faces on loading (it cuts non-manifold vertices), so its answer
        cannot be mapped back; callers give it closed manifold meshes, where it does not.
    """
    if len(faces) == 0:
        return np.zeros(0, dtype=np.int64)
    answer = _answer(vertices, faces)
    if answer.faces is None:
        raise MeshFixAnswerError(answer.refusal)
    return answer.faces.copy()


def _answer(vertices: Points, faces: Faces) -> _Answer:
    """MeshFix's selection of crossing faces for these arrays, asked once per digest."""
    points = np.ascontiguousarray(vertices, dtype=np.float64)
    indices = np.ascontiguousarray(faces, dtype=np.int64)
    digest = hashlib.blake2b(digest_size=20)
    for array in (points, indices):
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    key = digest.digest()
    answer = _RECENT.get(key)
    if answer is None:
        answer = _selection(points, indices)
        _RECENT.put(key, answer)
    return answer


def _selection(vertices: Points, faces: Faces, frame: Frame | None = None) -> _Answer:
    """Run MeshFix's test and map its selection back to ``faces`` where that is sound.

    pymeshfix 0.18 returns an ``(m, 3)`` array of which only the first ``m`` entries are
    filled, indices into MeshFix's own face list, which holds the faces in reverse order.
    """
    tmesh, _ = meshfix_mesh(vertices, faces, frame)
    cells = cell_triangles(vertices, faces)
    selected = tmesh.select_intersecting_triangles(tris_per_cell=cells, justproper=True)
    count = len(selected)
    if count == 0:
        return _Answer(0, np.zeros(0, dtype=np.int64), "")
    _, loaded = tmesh.return_arrays()
    picks = np.asarray(selected).ravel()[:count].astype(np.int64)
    if len(loaded) != len(faces) or picks.min() < 0 or picks.max() >= len(faces):
        return _Answer(count, None, f"{count} crossing faces could not be mapped back")
    index = len(faces) - 1 - picks
    if not np.array_equal(np.sort(loaded[picks], axis=1), np.sort(faces[index], axis=1)):
        return _Answer(count, None, "MeshFix's face order is not the reverse of the input's")
    return _Answer(count, np.unique(index), "")


def nudged(
    mesh: trimesh.Trimesh, *, seed: int = 0, near_only: bool = False
) -> trimesh.Trimesh | None:
    """``mesh`` with the vertices of its crossing faces nudged until none cross, or ``None``.

    Only the positions of vertices on crossing faces change, each by at most the largest of
    :data:`NUDGE_STEPS` times the diagonal; the faces stay as they are, so a closed manifold
    stays one. A nudge is kept when it does not add crossings; ``None`` when crossings
    remain after every try or there are too many to be rounding (:data:`NUDGE_MAX_FACES`).
    Seeded, so the same input gives the same output.

    Parameters
    ----------
    mesh
        A closed manifold mesh, ``vertices : (n, 3)``, ``faces : (m, 3)``; not modified.
    near_only
        Test each nudge of a few faces only near them (:func:`retested`), trusting the test
        of the whole mesh a caller makes later. Left off where a caller measures the result
        at once: the last test of the whole mesh is then the measurement (its answer is
        kept), and the usual single nudge would cost a test more.
    """
    faces = np.asarray(mesh.faces, dtype=np.int64)
    vertices = np.array(mesh.vertices, dtype=np.float64)
    crossing = _crossing_or_none(vertices, faces)
    if crossing is None or len(crossing) > NUDGE_MAX_FACES:
        return None
    rng = np.random.default_rng(seed)
    diagonal = float(np.linalg.norm(np.ptp(vertices[faces.ravel()], axis=0)))
    for step in NUDGE_STEPS:
        before, stale = len(crossing), 0
        for _ in range(NUDGE_TRIES):
            if len(crossing) == 0:
                return trimesh.Trimesh(vertices, faces, process=False)
            moved = np.unique(faces[crossing])
            trial = vertices.copy()
            trial[moved] += rng.uniform(-1.0, 1.0, (len(moved), 3)) * step * diagonal
            after = retested(trial, faces, moved) if near_only else None
            if after is None:
                after = _crossing_or_none(trial, faces)
            parted = after is not None and len(after) < len(crossing)
            if after is not None and len(after) <= len(crossing):
                vertices, crossing = trial, after
            stale = 0 if parted else stale + 1
            if stale == NUDGE_PATIENCE:
                break
        if len(crossing) == before:
            break  # faces that truly cross: larger nudges would not part them either
    return trimesh.Trimesh(vertices, faces, process=False) if len(crossing) == 0 else None


def retested(vertices: Points, faces: Faces, moved: Faces) -> Faces | None:
    """The crossing faces once the ``moved`` vertices (indices) were moved, found by testing
    only the faces near them again; ``None`` where that would not pay or its answer cannot be
    mapped back, for the caller to test the whole mesh.

    ``moved`` must hold every corner of every face that crossed before the move (as a nudge
    moves them). Then a face that crossed before has a moved corner, so every face that
    crossed anything before is tested again; a face none of whose corners moved and whose
    box meets no moved face's box crossed nothing before and meets nothing that moved, so it
    crosses nothing now. The faces whose boxes meet a moved face's are loaded on their own,
    in the frame the whole mesh would have (:func:`meshfix_mesh`): each pair reaches
    MeshFix as the same numbers as in a test of the whole mesh. Only the grid's cells, and
    so the order pairs are tested in, differ, which moves the answer no more than the size
    of the cells does (see the module docstring); the repair's final measurement tests the
    whole mesh. On the synthetic CAD parts (12k-18k faces) a nudge of a few faces is tested
    so in 25-390 ms instead of 0.5-1.3 s, with the same answer on every try measured.
    """
    mask = np.zeros(len(vertices), dtype=bool)
    mask[moved] = True
    touched = np.flatnonzero(mask[faces].any(axis=1))
    if len(touched) > RETEST_MAX_FACES or len(touched) * RETEST_SHARE > len(faces):
        return None
    frame = unit_frame(vertices, faces)
    part = _boxes_meeting(vertices, faces, touched, RETEST_SLACK * frame[1],
                          len(faces) // RETEST_SHARE)
    if part is None:
        return None
    used, local = np.unique(faces[part], return_inverse=True)
    answer = _selection(vertices[used], local.reshape(-1, 3), frame)
    return None if answer.faces is None else part[answer.faces]


def _boxes_meeting(
    vertices: Points, faces: Faces, touched: Faces, slack: float, most: int
) -> Faces | None:
    """The faces whose bounding boxes meet (within ``slack``) the box of one of the
    ``touched`` faces, sorted; ``None`` as soon as they are more than ``most``. Pairs are
    weighed on x first and on y and z only where x meets: a CAD part's needles make long
    boxes, and weighing every pair on all three axes at once took most of the time saved."""
    corners = vertices[faces]
    low, high = corners.min(axis=1), corners.max(axis=1)
    near = np.zeros(len(faces), dtype=bool)
    for chunk in np.array_split(touched, -(-len(touched) // 64)):
        rows, cols = np.nonzero((low[None, :, 0] <= high[chunk, None, 0] + slack)
                                & (high[None, :, 0] >= low[chunk, None, 0] - slack))
        rows = chunk[rows]
        meets = np.all((low[cols, 1:] <= high[rows, 1:] + slack)
                       & (high[cols, 1:] >= low[rows, 1:] - slack), axis=1)
        near[cols[meets]] = True
        if np.count_nonzero(near) > most:
            return None
    return np.flatnonzero(near)


def _crossing_or_none(vertices: Points, faces: Faces) -> Faces | None:
    """:func:`crossing_faces`, or ``None`` when MeshFix's answer cannot be mapped back."""
    try:
        return crossing_faces(vertices, faces)
    except MeshFixAnswerError:
        return None
