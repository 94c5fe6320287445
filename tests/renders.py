"""Images of real objects for the generation tests: the MIT-licensed meshes of the corpus
(:data:`tests.corpus.CORPUS`), rendered here with a small orthographic ray caster.

Nothing is drawn by hand: the silhouettes are the meshes' own (a bunny's ears, a teapot's
handle and spout, a duck's bill, a monkey's ears), shaded with a headlight so that the images
have the soft gradients a photo has, and coloured from the mesh's texture where it has one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image

from tests.corpus import corpus_path

LIGHT = np.array([-0.3, 0.4, 1.0]) / np.linalg.norm([-0.3, 0.4, 1.0])


@dataclass(frozen=True)
class Subject:
    """One corpus mesh posed for the camera.

    Attributes
    ----------
    filename : the file under :data:`tests.corpus.CORPUS`
    turn : rotation about x, then y, in degrees, applied before looking down -z
    colour : RGB of a mesh without colours of its own; None to use the mesh's texture
    backdrop : RGB of an opaque background, or None for a transparent one
    """

    filename: str
    turn: tuple[float, float] = (0.0, 0.0)
    colour: tuple[int, int, int] | None = None
    backdrop: tuple[int, int, int] | None = None


SUBJECTS: dict[str, Subject] = {
    "bunny": Subject("bunny.ply", colour=(176, 132, 96)),
    "teapot": Subject("teapot.stl", turn=(-90.0, 0.0), colour=(40, 90, 180),
                      backdrop=(255, 255, 255)),
    "duck": Subject("Duck.glb"),
    "suzanne": Subject("suzanne.ply", colour=(150, 60, 160)),
}


def load_subject(subject: Subject) -> trimesh.Trimesh:
    """The subject's mesh, turned, with (n, 4) uint8 vertex colours."""
    loaded = trimesh.load(corpus_path(subject.filename))
    parts = loaded.dump() if isinstance(loaded, trimesh.Scene) else [loaded]
    meshes = [part for part in parts if isinstance(part, trimesh.Trimesh)]
    for part in meshes:
        if isinstance(part.visual, trimesh.visual.TextureVisuals):
            part.visual = part.visual.to_color()  # texels become vertex colours
    mesh = meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)
    assert isinstance(mesh, trimesh.Trimesh), f"{subject.filename} holds no mesh"
    if subject.colour is not None:
        mesh.visual = trimesh.visual.ColorVisuals(
            mesh, vertex_colors=np.tile([*subject.colour, 255], (len(mesh.vertices), 1)))
    turn_x, turn_y = np.radians(subject.turn)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(turn_y, [0, 1, 0])
                         @ trimesh.transformations.rotation_matrix(turn_x, [1, 0, 0]))
    return mesh


def render(mesh: trimesh.Trimesh, size: int = 256, *, margin: float = 0.12) -> Image.Image:
    """Orthographic view down -z, the object fitted into the frame with `margin` around it.

    Returns an RGBA image, transparent where the object is not.
    """
    low, high = mesh.bounds
    scale = size * (1.0 - 2.0 * margin) / float(max(high[:2] - low[:2]))
    centre = (low + high) / 2.0
    pixels = (np.arange(size) + 0.5 - size / 2.0) / scale
    xs, ys = np.meshgrid(centre[0] + pixels, centre[1] - pixels)  # image rows run down
    origins = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, high[2] + 1.0)], axis=1)
    directions = np.tile([0.0, 0.0, -1.0], (len(origins), 1))
    hit = mesh.ray.intersects_first(origins, directions)
    seen = hit >= 0
    faces = hit[seen]
    visual = mesh.visual
    assert isinstance(visual, trimesh.visual.ColorVisuals), "load_subject gives vertex colours"
    colours = visual.vertex_colors[mesh.faces[faces]][:, :, :3].mean(axis=1)
    shade = 0.35 + 0.65 * np.abs(mesh.face_normals[faces] @ LIGHT)
    rgba = np.zeros((size * size, 4), dtype=np.uint8)
    rgba[seen, :3] = np.clip(colours * shade[:, None], 0, 255).round()
    rgba[seen, 3] = 255
    return Image.fromarray(rgba.reshape(size, size, 4), "RGBA")


@dataclass(frozen=True)
class View:
    """A subject's image as a user would upload it, and where the object truly is.

    Attributes
    ----------
    image : RGBA (transparent background) or RGB (on the subject's backdrop)
    truth : (H, W) bool array, True on pixels the object covers
    """

    image: Image.Image
    truth: np.ndarray

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, format="PNG")
        return out.getvalue()


def view(name: str, size: int = 256) -> View:
    subject = SUBJECTS[name]
    image = render(load_subject(subject), size)
    truth = np.asarray(image)[..., 3] > 0
    if subject.backdrop is None:
        return View(image, truth)
    flat = Image.new("RGBA", image.size, (*subject.backdrop, 255))
    flat.alpha_composite(image)
    return View(flat.convert("RGB"), truth)
