"""Vertex colours projected from the input image.

The inflated object is mirror-symmetric, so the back is painted with the front's picture:
every vertex takes the image colour under its orthographic projection along z, whichever
way it faces. Vertices on the rounded rim project onto the outline, where pixels are a mix
of object and background; the colours are therefore first pushed outwards from the
object's interior ("push-pull" fill), so the rim carries object colour and no halo.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def project_vertex_colours(
    rgba: torch.Tensor, mask: torch.Tensor, pixels: torch.Tensor
) -> torch.Tensor:
    """Sample the object's colours at projected vertex positions.

    Parameters
    ----------
    rgba : (H, W, 4) float tensor in [0, 1], the input image
    mask : (H, W) bool tensor, the object's silhouette in that image
    pixels : (n, 2) float tensor of pixel-centre coordinates (x, y) of the vertices

    Returns
    -------
    colours : (n, 4) uint8 tensor, RGBA with alpha 255
    """
    colour = bleed_colours(rgba[..., :3].permute(2, 0, 1), _erode(mask))
    height, width = mask.shape
    scale = torch.tensor([2.0 / width, 2.0 / height], device=pixels.device)
    grid = ((pixels + 0.5) * scale - 1.0).view(1, 1, -1, 2).to(colour.dtype)
    sampled = F.grid_sample(
        colour[None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )[0, :, 0].T
    rgb = (sampled.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    alpha = torch.full_like(rgb[:, :1], 255)
    return torch.cat([rgb, alpha], dim=1)


def bleed_colours(colour: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Extend colours from the mask over the whole image by push-pull.

    Masked averages are pulled down an image pyramid; on the way back up, every pixel
    outside the mask takes the colour of the coarser level, which is the average of the
    nearest known pixels. Linear in the number of pixels, and only torch ops.

    Parameters
    ----------
    colour : (C, H, W) float tensor
    mask : (H, W) bool tensor of pixels whose colour is known

    Returns
    -------
    filled : (C, H, W) float tensor equal to `colour` on the mask
    """
    weight = mask.to(colour.dtype)[None]
    if not bool(mask.any()):
        return colour
    return _push_pull(colour * weight, weight)


def _push_pull(weighted: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Fill (C, H, W) `weighted / weight` where `weight` (1, H, W) is zero."""
    known = weight > 0
    mean = weighted / weight.clamp(min=1e-12)
    if bool(known.all()):
        return mean
    kernel = tuple(2 if size > 1 else 1 for size in weight.shape[-2:])
    coarse = _push_pull(
        F.avg_pool2d(weighted[None], kernel, ceil_mode=True)[0],
        F.avg_pool2d(weight[None], kernel, ceil_mode=True)[0],
    )
    upsampled = F.interpolate(coarse[None], size=weight.shape[-2:], mode="nearest")[0]
    return torch.where(known, mean, upsampled)


def _erode(mask: torch.Tensor) -> torch.Tensor:
    """Shrink a (H, W) bool mask by one pixel; keep it whole if that would empty it."""
    eroded = -F.max_pool2d(-mask.float()[None, None], 3, stride=1, padding=1)[0, 0] > 0.5
    return eroded if bool(eroded.any()) else mask
