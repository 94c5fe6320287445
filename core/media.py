"""Deciding what an uploaded file is before anything is stored.

An upload is accepted only as an image that Pillow can decode or as a mesh that loads with at
least one face; everything else is refused with an error naming the file and the reason, so a
garbage upload changes nothing. Content decides for images (a PNG named ``.stl`` is a PNG);
for meshes the extension picks the reader, since mesh formats mostly lack a reliable
signature, and the load itself proves the content matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Final, Literal

from PIL import Image, UnidentifiedImageError

from core.errors import InvalidInput, UnsupportedMedia
from core.meshio import load_mesh

IMAGE_FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
"""Pillow formats accepted as images. A whitelist of formats with a signature, so that the
looser detectors among Pillow's plugins cannot claim a mesh file as an image."""

MESH_MEDIA_TYPES: Final = {
    "stl": "model/stl",
    "obj": "model/obj",
    "ply": "model/ply",
    "off": "model/off",
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
    "3mf": "application/vnd.ms-package.3dmanufacturing-3dmodel+xml",
}
"""Media type of each mesh format, keyed by extension (the formats of
:data:`core.meshio.MESH_FORMATS`)."""


@dataclass(frozen=True)
class MediaInfo:
    """What an upload turned out to be.

    ``format`` is the short name of the file format (``png``, ``jpeg``, ``stl``, ``glb``...),
    ``media_type`` its media type as stored with the asset.
    """

    kind: Literal["image", "mesh"]
    media_type: str
    format: str


def sniff_media(path: Path, filename: str) -> MediaInfo:
    """Identify the upload stored at ``path``, or refuse it.

    Parameters
    ----------
    path
        Where the upload's bytes lie (a temporary file).
    filename
        The name the client gave the file; its extension selects the mesh reader and it names
        the file in error messages.

    Raises
    ------
    InvalidInput
        The file is empty.
    UnsupportedMedia
        It is neither an image nor a mesh format, or its content does not match its
        extension (an unreadable mesh, a mesh without faces, a damaged image).
    """
    if path.stat().st_size == 0:
        raise InvalidInput(f"{filename}: empty file")
    image = _sniff_image(path, filename)
    if image is not None:
        return image
    extension = PurePath(filename).suffix.lower().lstrip(".")
    if extension not in MESH_MEDIA_TYPES:
        shown = f".{extension}" if extension else "no extension"
        raise UnsupportedMedia(f"{filename}: not an image and not a mesh format: {shown}")
    return _sniff_mesh(path, filename, extension)


def _sniff_image(path: Path, filename: str) -> MediaInfo | None:
    """Return the image's description, or ``None`` when Pillow does not recognise the file.

    A file whose header is an image's but whose data fail :meth:`PIL.Image.Image.verify` is
    refused here rather than passed on to the mesh readers: it claims to be an image.
    """
    try:
        with Image.open(path, formats=IMAGE_FORMATS) as image:
            fmt = image.format or ""
            image.verify()
    except UnidentifiedImageError:
        return None
    except Image.DecompressionBombError as error:
        raise UnsupportedMedia(f"{filename}: image too large: {error}") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UnsupportedMedia(f"{filename}: damaged image: {error}") from error
    return MediaInfo(kind="image", media_type=Image.MIME[fmt], format=fmt.lower())


def _sniff_mesh(path: Path, filename: str, extension: str) -> MediaInfo:
    """Load the file as a mesh of its extension's format to prove it has faces."""
    try:
        load_mesh(path, file_type=extension, name=filename)
    except UnsupportedMedia:
        raise
    except InvalidInput as error:
        raise UnsupportedMedia(str(error)) from error
    return MediaInfo(kind="mesh", media_type=MESH_MEDIA_TYPES[extension], format=extension)
