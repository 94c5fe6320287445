"""Inflate a silhouette into a closed volume.

The object is assumed to be as thick as it is wide in the middle and to round off towards
its outline, like a pillow or a balloon animal. The height over each pixel comes from the
Euclidean distance to the outline through a circular profile, ``h = sqrt(d * (2 dmax - d))``,
which turns a disc into a sphere exactly and gives thin limbs a rounded cross-section. The
height is mirrored front and back, so the volume is closed and symmetric about ``z = 0``.

Grid layout: the field is indexed ``[x, y, z]``; ``x`` runs along image columns, ``y`` along
image rows (downwards), ``z`` through the image plane. All cells are cubes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.errors import InvalidInput

#: Empty cells kept around the object on every side, beyond what the smoothing reaches.
GRID_MARGIN = 2
#: Largest number of float elements the exact distance transform holds at once.
_EDT_CHUNK = 1 << 23


@dataclass(frozen=True)
class GridFrame:
    """Where the inflation grid sits in the image.

    Grid sample ``i`` along x (or y) is the centre of cell ``i - pad`` of a square crop of
    ``cells`` cells, ``pixels_per_cell`` pixels each, whose top-left corner is the image
    point ``(left, top)`` (continuous coordinates: pixel ``p`` covers ``[p, p + 1)``).
    """

    left: float
    top: float
    pixels_per_cell: float
    cells: int
    pad: int

    @classmethod
    def fit(cls, mask: torch.Tensor, *, resolution: int, smoothing: int) -> GridFrame:
        """Frame a (H, W) bool mask's bounding box, centred, in a `resolution`-wide grid."""
        pad = smoothing + GRID_MARGIN
        cells = resolution - 2 * pad
        if cells < 4:
            raise InvalidInput(f"resolution {resolution} leaves no room inside the padding")
        rows = torch.nonzero(mask.any(dim=1)).flatten()
        columns = torch.nonzero(mask.any(dim=0)).flatten()
        if rows.numel() == 0:
            raise InvalidInput("cannot inflate an empty silhouette")
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        left, right = int(columns[0]), int(columns[-1]) + 1
        side = max(bottom - top, right - left)
        return cls(
            left=(left + right - side) / 2.0,
            top=(top + bottom - side) / 2.0,
            pixels_per_cell=side / cells,
            cells=cells,
            pad=pad,
        )

    def grid_to_pixel(self, points: torch.Tensor) -> torch.Tensor:
        """Map (n, 2) grid coordinates (x, y) to (n, 2) pixel-centre coordinates (x, y)."""
        origin = torch.tensor([self.left, self.top], dtype=points.dtype, device=points.device)
        return origin + (points - self.pad + 0.5) * self.pixels_per_cell - 0.5


def inflate_silhouette(
    mask: torch.Tensor,
    *,
    resolution: int,
    depth_ratio: float = 0.5,
    smoothing: int = 2,
) -> torch.Tensor:
    """Turn a silhouette into a signed field whose zero level set is a closed surface.

    Parameters
    ----------
    mask : (H, W) bool tensor, True on the object
    resolution : grid cells along x and y (the mask's longer side spans
        ``resolution - 2 * (smoothing + GRID_MARGIN)`` of them)
    depth_ratio : thickness relative to width; a disc becomes an ellipsoid this deep
    smoothing : passes of a 3x3x3 binomial blur over the field; each rounds creases by
        about a cell

    Returns
    -------
    field : (resolution, resolution, D) float32 tensor on the mask's device, positive
        inside, negative outside and on every face of the grid; ``D`` is odd and the
        volume is mirror-symmetric about the middle z slice. See :class:`GridFrame` for
        the map back to image pixels.
    """
    if depth_ratio <= 0.0:
        raise InvalidInput(f"depth_ratio must be positive, got {depth_ratio}")
    frame = GridFrame.fit(mask, resolution=resolution, smoothing=smoothing)
    grid_mask = _resample_mask(mask, frame)
    height = depth_ratio * _pillow_height(grid_mask)
    half_depth = math.ceil(float(height.max())) + frame.pad
    z = torch.arange(-half_depth, half_depth + 1, device=mask.device, dtype=torch.float32)
    field = height[:, :, None] - z.abs()[None, None, :]
    field = _binomial_blur(field, passes=smoothing)
    return _seal_faces(field)


def _resample_mask(mask: torch.Tensor, frame: GridFrame) -> torch.Tensor:
    """Area-resample the framed mask to the grid; returns (R, R) bool indexed [x, y]."""
    side = round(frame.pixels_per_cell * frame.cells)
    top, left = round(frame.top), round(frame.left)
    height, width = mask.shape
    canvas = torch.zeros(side, side, dtype=torch.float32, device=mask.device)
    rows = slice(max(top, 0), min(top + side, height))
    cols = slice(max(left, 0), min(left + side, width))
    canvas[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left] = mask[
        rows, cols
    ].float()
    cells = F.adaptive_avg_pool2d(canvas[None, None], frame.cells)[0, 0]
    grid = F.pad(cells, (frame.pad,) * 4)
    return grid.T >= 0.5


def _pillow_height(mask: torch.Tensor) -> torch.Tensor:
    """Height over a (X, Y) bool mask: circular profile inside, mirrored (negative) outside.

    The signed distance ``s`` puts the outline half-way between an inside and an outside
    cell. Extending the profile as an odd function, ``-h(-s)`` outside, keeps the zero
    crossing on the outline after linear interpolation; saturating it at ``-dmax`` keeps
    the field bounded far from the object.
    """
    inside = euclidean_distance(mask) - 0.5
    outside = euclidean_distance(~mask) - 0.5
    signed = torch.where(mask, inside, -outside)
    peak = float(inside.max())
    distance = signed.abs().clamp(max=peak)
    profile = torch.sqrt(distance * (2.0 * peak - distance))
    return torch.where(mask, profile, -profile)


def euclidean_distance(mask: torch.Tensor) -> torch.Tensor:
    """Exact Euclidean distance transform, in torch so that it runs on the mask's device.

    Two separable passes: the distance along each row to the nearest False cell, found
    with running maxima of indices, then the exact lower envelope along columns by brute
    force, ``D[y, x]^2 = min_y' g[y', x]^2 + (y - y')^2``. The second pass costs
    O(H^2 W), which is fine at grid resolutions (a few hundred cells).

    Parameters
    ----------
    mask : (H, W) bool tensor

    Returns
    -------
    distance : (H, W) float32 tensor; for True cells the distance to the nearest False
        cell centre, 0 on False cells, ``H + W`` or more where there is no False cell
    """
    height, width = mask.shape
    row_distance = _row_distance(mask)
    squared = row_distance.T.square()
    offsets = torch.arange(height, device=mask.device, dtype=torch.float32)
    dy2 = (offsets[:, None] - offsets[None, :]).square()
    chunk = max(1, _EDT_CHUNK // (height * height))
    columns = [
        (squared[start : start + chunk, None, :] + dy2[None]).amin(dim=2)
        for start in range(0, width, chunk)
    ]
    return torch.cat(columns, dim=0).T.sqrt()


def _row_distance(mask: torch.Tensor) -> torch.Tensor:
    """(H, W) float32: distance along each row to the nearest False cell (H + W if none)."""
    height, width = mask.shape
    far = float(height + width)
    index = torch.arange(width, device=mask.device, dtype=torch.float32).expand(height, width)
    before = torch.where(mask, -far, index).cummax(dim=1).values
    after = -torch.where(mask, -far, -index).flip(1).cummax(dim=1).values.flip(1)
    return torch.minimum(index - before, after - index).clamp(max=far)


def _binomial_blur(field: torch.Tensor, *, passes: int) -> torch.Tensor:
    """Blur a (X, Y, Z) field with `passes` separable [1, 2, 1] / 4 filters per axis.

    Written as shifted sums rather than ``conv3d``: a single-channel 3-tap convolution is
    memory-bound, and on CPU the slicing form is tens of times faster than the conv kernel.
    Edges are replicated, so the blur does not drag the outer cells towards zero.
    """
    for _ in range(passes):
        for axis in range(3):
            padded = torch.cat(
                [field.narrow(axis, 0, 1), field, field.narrow(axis, -1, 1)], dim=axis
            )
            size = field.shape[axis]
            field = (
                0.25 * padded.narrow(axis, 0, size)
                + 0.5 * field
                + 0.25 * padded.narrow(axis, 2, size)
            )
    return field


def _seal_faces(field: torch.Tensor) -> torch.Tensor:
    """Force the six faces of the grid negative, so no surface can leave the volume."""
    sealed = field.clone()
    for axis in range(3):
        for end in (0, -1):
            face = sealed.select(axis, end)
            face.clamp_(max=-1.0)
    return sealed
