"""Deciding what an uploaded file is before anything is stored.

An upload is accepted only as an image that Pillow can decode or as a mesh that loads with at
least one face; everything else is refused with an error naming the file and the reason, so a
garbage upload changes nothing. Content decides for images (a PNG named ``.stl`` is a PNG);
for meshes the extension picks the reader, since mesh formats mostly lack a reliable
signature, and the load itself proves the content matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import IO, Final, Literal, cast

from PIL import Image, UnidentifiedImageError

from core.errors import InvalidInput, TooLarge, UnsupportedMedia

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


MAX_GENERATION_PIXELS: Final = 40_000_000
"""Largest image (width x height) a generation accepts. Generators work a few hundred pixels
across, so more pixels only cost memory to decode (4 bytes each); the limit also stays below
Pillow's decompression-bomb threshold, so an accepted image never trips it."""

MIN_GENERATION_SIDE: Final = 8
"""Shortest image side a generation accepts: below it there is no outline to find."""

CHECK_SIDE: Final = 1024
"""JPEGs are decoded at about this size for the content check (DCT scaling is nearly free)."""


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
    """Load the file as a mesh of its extension's format to prove it has faces.

    The loader is imported here, not with this module: the API imports this module for its
    image checks and must not load trimesh (and SciPy, manifold3d with it), while a mesh is
    only ever checked in a bounded child whose fork server has the loader imported already
    (:mod:`core.upload_check`)."""
    from core.meshio import check_mesh

    try:
        check_mesh(path, file_type=extension, name=filename)
    except UnsupportedMedia:
        raise
    except InvalidInput as error:
        raise UnsupportedMedia(str(error)) from error
    return MediaInfo(kind="mesh", media_type=MESH_MEDIA_TYPES[extension], format=extension)


def check_generation_image(source: Path | IO[bytes], filename: str, *,
                           max_pixels: int = MAX_GENERATION_PIXELS) -> tuple[int, int]:
    """Refuse an image that no generator can turn into an object; return its (width, height).

    The size is read from the header, so an oversized image (or a decompression bomb: a small
    file that decodes to billions of pixels) is refused before a single pixel is decoded.
    Only then is the image decoded, the way the GPU worker will (first frame, as RGBA), to
    see that it shows something: not every pixel transparent, not one flat colour.

    Parameters
    ----------
    source
        The image file, or an open binary file positioned at its start (left open).
    filename
        Names the file in error messages.
    max_pixels
        Largest width x height accepted.

    Raises
    ------
    UnsupportedMedia
        Not an image in one of :data:`IMAGE_FORMATS`, or damaged.
    TooLarge
        More than `max_pixels` pixels.
    InvalidInput
        A side shorter than :data:`MIN_GENERATION_SIDE`, fully transparent, or blank.
    """
    with _opened(source, filename) as image:
        width, height = image.size
        _check_dimensions(width, height, filename, max_pixels)
        image.draft("RGB", (CHECK_SIDE, CHECK_SIDE))  # JPEG only; a no-op elsewhere
        rgba = image.convert("RGBA")
    _check_content(rgba, filename)
    return width, height


def generation_image_size(source: Path | IO[bytes], filename: str, *,
                          max_pixels: int = MAX_GENERATION_PIXELS) -> tuple[int, int]:
    """The checks of :func:`check_generation_image` that read the header alone; no pixel is
    decoded, so this costs the same for any image. Returns (width, height)."""
    with _opened(source, filename) as image:
        width, height = image.size
        _check_dimensions(width, height, filename, max_pixels)
    return width, height


@contextmanager
def _opened(source: Path | IO[bytes], filename: str) -> Iterator[Image.Image]:
    """The image open for reading, Pillow's errors turned into the studio's."""
    try:
        with Image.open(source, formats=IMAGE_FORMATS) as image:
            yield image
    except UnidentifiedImageError:
        raise UnsupportedMedia(f"{filename}: not an image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # The warning arrives as an exception only where warnings are errors (the tests);
        # elsewhere it is logged and the size check above refuses the image.
        raise TooLarge(f"{filename}: image too large: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UnsupportedMedia(f"{filename}: damaged or unsupported image: {error}") from error


def _check_dimensions(width: int, height: int, filename: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise TooLarge(
            f"{filename}: {width}x{height} is {width * height / 1e6:.1f} megapixels; "
            f"generation takes at most {max_pixels / 1e6:g} megapixels, so scale it down")
    if min(width, height) < MIN_GENERATION_SIDE:
        raise InvalidInput(
            f"{filename}: {width}x{height} is too small to show an object; each side needs "
            f"at least {MIN_GENERATION_SIDE} pixels")


def _check_content(rgba: Image.Image, filename: str) -> None:
    """Refuse an RGBA image with nothing to see: every pixel transparent, or all one colour."""
    # One (low, high) pair per band for a multi-band image.
    extrema = cast(tuple[tuple[int, int], ...], rgba.getextrema())
    if extrema[3][1] == 0:
        raise InvalidInput(
            f"{filename}: the image is fully transparent (alpha 0 everywhere): "
            "there is no object to generate from")
    if all(low == high for low, high in extrema):
        colour = tuple(low for low, _ in extrema)
        raise InvalidInput(
            f"{filename}: the image is blank (every pixel is RGBA {colour}): "
            "there is no object to generate from")
