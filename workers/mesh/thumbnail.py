"""A small shaded picture of a mesh, made when it is analysed, so that lists of designs (the
assistant's similar designs) can show shapes, not only names, without loading any geometry.

The picture is drawn with Pillow's polygons in a painter's order (far faces first) under
Lambert shading from the face normals: no GPU, no OpenGL context, and at most
:data:`MAX_FACES` faces drawn (the largest, which carry the silhouette), so a million-face
mesh costs about what a small one does.
"""

from __future__ import annotations

import io

import numpy as np
import trimesh
from numpy.typing import NDArray
from PIL import Image, ImageDraw

SIZE = 128
MAX_FACES = 20_000
MEDIA_TYPE = "image/png"
SUPERSAMPLE = 2
"""Drawn at twice the size and scaled down: Pillow's polygons have no anti-aliasing."""
MARGIN = 0.06
AZIMUTH_DEG = -45.0
ELEVATION_DEG = 30.0
"""A fixed three-quarter view from the front right and above (+Z up, as on the print bed),
so that thumbnails of different meshes compare."""
LIGHT = np.array([-0.35, 0.55, 0.76])
BASE_RGB = np.array([120.0, 154.0, 196.0])
AMBIENT = 0.35


def render_thumbnail(mesh: trimesh.Trimesh, size: int = SIZE,
                     max_faces: int = MAX_FACES) -> bytes:
    """The mesh as a ``size`` x ``size`` PNG with a transparent background."""
    faces = np.asarray(mesh.faces)
    if len(faces) > max_faces:  # the largest faces: small ones hide under a pixel
        faces = faces[np.argpartition(np.asarray(mesh.area_faces), -max_faces)[-max_faces:]]
    triangles = np.asarray(mesh.vertices, dtype=np.float64)[faces]
    canvas = Image.new("RGBA", (size * SUPERSAMPLE, size * SUPERSAMPLE), (0, 0, 0, 0))
    if len(triangles):
        _draw(ImageDraw.Draw(canvas), _view(triangles), size * SUPERSAMPLE)
    picture = canvas.resize((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _view(triangles: NDArray[np.float64]) -> NDArray[np.float64]:
    """The triangles in view space: x right, y up, z towards the viewer."""
    az, el = np.radians(AZIMUTH_DEG), np.radians(ELEVATION_DEG)
    spin = np.array([[np.cos(az), -np.sin(az), 0.0],
                     [np.sin(az), np.cos(az), 0.0],
                     [0.0, 0.0, 1.0]])
    # Looking along -y after the spin, tilted down by the elevation: world z becomes view y.
    tilt = np.array([[1.0, 0.0, 0.0],
                     [0.0, np.sin(el), np.cos(el)],
                     [0.0, -np.cos(el), np.sin(el)]])
    return np.asarray(triangles @ (tilt @ spin).T)


def _draw(draw: ImageDraw.ImageDraw, view: NDArray[np.float64], pixels: int) -> None:
    flat = view.reshape(-1, 3)
    low, high = flat.min(axis=0), flat.max(axis=0)
    extent = float(max(high[0] - low[0], high[1] - low[1])) or 1.0
    scale = pixels * (1 - 2 * MARGIN) / extent
    centre = (low + high) / 2
    xs = (view[:, :, 0] - centre[0]) * scale + pixels / 2
    ys = pixels / 2 - (view[:, :, 1] - centre[1]) * scale
    normals = np.cross(view[:, 1] - view[:, 0], view[:, 2] - view[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    unit = normals / np.where(lengths > 0, lengths, 1.0)[:, None]
    # Windings differ between files: light both sides alike rather than trust them.
    lambert = np.abs(unit @ (LIGHT / np.linalg.norm(LIGHT)))
    shades = np.clip(BASE_RGB[None, :] * (AMBIENT + (1 - AMBIENT) * lambert[:, None]),
                     0, 255).astype(np.uint8)
    # Far (most negative z) first; faces turned away (by their winding) before all facing ones,
    # since one depth per face misorders large faces, as a box's are.
    order = np.lexsort((view[:, :, 2].mean(axis=1), unit[:, 2] > 0))
    points = np.stack([xs, ys], axis=2)
    for i in order:
        colour = (*(int(c) for c in shades[i]), 255)
        draw.polygon([tuple(p) for p in points[i].tolist()], fill=colour, outline=colour)


def thumbnail_of(mesh: trimesh.Trimesh) -> bytes | None:
    """The thumbnail, or None for a mesh with nothing to draw (no faces)."""
    if len(mesh.faces) == 0:
        return None
    return render_thumbnail(mesh)
