"""Foreground masks for the weight-free generator.

The silhouette is the only thing the inflation backend knows about an object, so the mask
must be clean: one or a few solid components, no specks, no background halo. An alpha
channel is trusted when it says something (some pixels transparent); otherwise the
background is modelled from the image border, which product shots and renders nearly always
show, and the object is whatever cannot be reached from the border through
background-coloured pixels. That flood fill is why a white logo inside a dark badge stays
part of the badge.

All array work is in torch so that the mask is computed on the caller's device, except the
labelling of connected components on CPU, where scipy's is a thousand times faster.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from core.errors import InvalidInput

#: Alpha at or above this value is opaque.
ALPHA_THRESHOLD = 0.5
#: Colour distances (RGB in [0, 1], Euclidean) below this are always background.
MIN_COLOUR_THRESHOLD = 0.06
#: Otsu's threshold is never taken above this: light object parts must not turn to background.
MAX_COLOUR_THRESHOLD = 0.25
#: A border whose background residuals spread wider than this is not a plain background.
MAX_BACKGROUND_NOISE = 0.2
#: A mask covering more of the frame than this has not separated anything.
MAX_COVERAGE = 0.98


def image_to_tensor(
    image: Image.Image | torch.Tensor, *, device: torch.device | None = None
) -> torch.Tensor:
    """Convert an image to a float RGBA tensor.

    Parameters
    ----------
    image : PIL image of any mode, or (H, W, 3|4) tensor, uint8 or float in [0, 1]
    device : where the tensor goes; the tensor's own device (or CPU for PIL) when None

    Returns
    -------
    rgba : (H, W, 4) float32 tensor in [0, 1]; alpha is 1 where the input had none
    """
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGBA"), dtype=np.uint8)
        tensor = torch.from_numpy(array.copy()).to(device or torch.device("cpu"))
    else:
        tensor = image.to(device) if device is not None else image
    if tensor.ndim != 3 or tensor.shape[-1] not in (3, 4):
        raise InvalidInput(f"image tensor must be (H, W, 3|4), got shape {tuple(tensor.shape)}")
    rgba = tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor.float()
    if rgba.shape[-1] == 3:
        rgba = torch.cat([rgba, torch.ones_like(rgba[..., :1])], dim=-1)
    return rgba.clamp(0.0, 1.0)


def foreground_mask(
    image: Image.Image | torch.Tensor,
    *,
    device: torch.device | None = None,
    keep_fraction: float = 0.1,
    hole_fraction: float = 0.01,
) -> torch.Tensor:
    """Separate the object from its background.

    Parameters
    ----------
    image : PIL image, or (H, W, 3|4) tensor (uint8, or float in [0, 1])
    device : device to compute on; see :func:`image_to_tensor`
    keep_fraction : components smaller than this fraction of the largest one are dropped
    hole_fraction : enclosed holes smaller than this fraction of the object area are filled

    Returns
    -------
    mask : (H, W) bool tensor, True on the object

    Raises
    ------
    InvalidInput
        The image shows no object, only object, or no plain background to separate.
    """
    rgba = image_to_tensor(image, device=device)
    alpha = rgba[..., 3]
    if bool((alpha < ALPHA_THRESHOLD).any()):
        mask = alpha >= ALPHA_THRESHOLD
    else:
        mask = _colour_foreground(rgba[..., :3])
    mask = _clean(mask, keep_fraction=keep_fraction, hole_fraction=hole_fraction)
    _check_coverage(mask)
    return mask


def _colour_foreground(rgb: torch.Tensor) -> torch.Tensor:
    """Mask of pixels not connected to the border through background colour.

    rgb : (H, W, 3) float tensor; returns (H, W) bool tensor.
    """
    background, noise = _fit_background(rgb)
    if noise > MAX_BACKGROUND_NOISE:
        raise InvalidInput(
            f"the image border is not a plain background (colour spread {noise:.2f} > "
            f"{MAX_BACKGROUND_NOISE}); supply an image with transparency or a plain backdrop"
        )
    distance = torch.linalg.vector_norm(rgb - background, dim=-1)
    floor = max(MIN_COLOUR_THRESHOLD, 3.0 * noise)
    threshold = min(max(_otsu_threshold(distance), floor), max(floor, MAX_COLOUR_THRESHOLD))
    candidate = distance <= threshold
    border = _border(candidate.shape, candidate.device)
    reached = _components_touching(candidate, border)
    foreground = ~reached
    if float(foreground[border].float().mean()) > 0.5:
        raise InvalidInput(
            "the object covers most of the image border; no background is left to separate it"
        )
    return foreground


def _fit_background(rgb: torch.Tensor, *, rounds: int = 3) -> tuple[torch.Tensor, float]:
    """Model the background as a bilinear colour ramp fitted to the border.

    A plain median is enough for studio shots, but photos and renders often have a soft
    gradient backdrop; a bilinear ramp covers both. The fit starts from the per-channel
    median and refits on inliers, so object pixels touching the border do not drag it.

    rgb : (H, W, 3) float tensor.
    Returns the (H, W, 3) background estimate and the 95th percentile of the inlier
    residuals (the border's colour noise).
    """
    height, width, _ = rgb.shape
    basis = _bilinear_basis(height, width, rgb.device)
    border = _border((height, width), rgb.device)
    samples, sample_basis = rgb[border], basis[border]
    prediction = samples.median(dim=0).values.expand_as(samples)
    inliers = torch.ones(samples.shape[0], dtype=torch.bool, device=rgb.device)
    for _ in range(rounds):
        residual = torch.linalg.vector_norm(samples - prediction, dim=-1)
        spread = 1.4826 * residual.median()
        inliers = residual <= torch.clamp(3.0 * spread, min=0.02)
        coefficients = torch.linalg.lstsq(sample_basis[inliers], samples[inliers]).solution
        prediction = sample_basis @ coefficients
    residual = torch.linalg.vector_norm(samples - prediction, dim=-1)[inliers]
    noise = float(torch.quantile(residual, 0.95)) if residual.numel() else float("inf")
    if float(inliers.float().mean()) < 0.5:
        noise = max(noise, float(torch.linalg.vector_norm(samples - prediction, dim=-1).median()))
    return (basis @ coefficients).reshape(height, width, 3), noise


def _bilinear_basis(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H, W, 4) float tensor of the basis functions 1, x, y, x*y over [-1, 1]^2."""
    y = torch.linspace(-1.0, 1.0, height, device=device)[:, None].expand(height, width)
    x = torch.linspace(-1.0, 1.0, width, device=device)[None, :].expand(height, width)
    return torch.stack([torch.ones_like(x), x, y, x * y], dim=-1)


def _otsu_threshold(values: torch.Tensor, *, bins: int = 256) -> float:
    """Otsu's threshold of a non-negative tensor: maximises the between-class variance."""
    top = float(values.max())
    if top <= 0.0:
        return 0.0
    histogram = torch.histc(values.flatten(), bins=bins, min=0.0, max=top).double()
    centres = (torch.arange(bins, device=values.device, dtype=torch.float64) + 0.5) * top / bins
    weight_low = histogram.cumsum(0)
    weight_high = histogram.sum() - weight_low
    mass_low = (histogram * centres).cumsum(0)
    mean_low = mass_low / weight_low.clamp(min=1.0)
    mean_high = (mass_low[-1] - mass_low) / weight_high.clamp(min=1.0)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(between.argmax())] + 0.5 * top / bins)


def _border(shape: tuple[int, ...] | torch.Size, device: torch.device) -> torch.Tensor:
    """(H, W) bool tensor, True on the one-pixel frame of the image."""
    border = torch.ones(tuple(shape), dtype=torch.bool, device=device)
    border[1:-1, 1:-1] = False
    return border


def label_components(mask: torch.Tensor) -> torch.Tensor:
    """Label the 8-connected components of a mask.

    On CPU, scipy's two-pass labelling; on other devices, :func:`propagate_labels`, which
    stays on the device. Both give the same labels.

    Parameters
    ----------
    mask : (H, W) bool tensor

    Returns
    -------
    labels : (H, W) int64 tensor; 0 off the mask, else 1 + the largest flat index in the component
    """
    if mask.device.type != "cpu":
        return propagate_labels(mask)
    array = mask.numpy()
    components, count = ndimage.label(array, structure=np.ones((3, 3), dtype=bool))
    flat_index = np.arange(1, array.size + 1, dtype=np.int64).reshape(array.shape)
    largest = ndimage.maximum(flat_index, components, index=np.arange(1, count + 1))
    lookup = np.concatenate([np.zeros(1, dtype=np.int64), np.asarray(largest, dtype=np.int64)])
    return torch.from_numpy(lookup[components])


def propagate_labels(mask: torch.Tensor) -> torch.Tensor:
    """:func:`label_components` in torch ops only, for masks on a GPU.

    Each True pixel starts with its own flat index as label; labels spread as the maximum
    over 3x3 neighbourhoods, and pointer jumping (a pixel adopts the label of the pixel its
    label names) shortcuts some paths. A label still crosses a winding component about one
    pixel per round, so a 512-pixel silhouette takes about a hundred rounds: cheap on a GPU,
    about a second on a CPU.
    """
    height, width = mask.shape
    index = torch.arange(1, height * width + 1, device=mask.device, dtype=torch.float64)
    labels = torch.where(mask.flatten(), index, 0.0)
    while True:
        spread = F.max_pool2d(labels.view(1, 1, height, width), 3, stride=1, padding=1).flatten()
        spread = torch.where(mask.flatten(), spread, 0.0)
        jumped = spread[(spread.long() - 1).clamp(min=0)]
        updated = torch.where(mask.flatten(), torch.maximum(spread, jumped), 0.0)
        if torch.equal(updated, labels):
            return labels.long().view(height, width)
        labels = updated


def _components_touching(mask: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: pixels of `mask` in a component that contains a True pixel of `seeds`."""
    labels = label_components(mask)
    seeded = torch.unique(labels[seeds & mask])
    return torch.isin(labels, seeded) & mask


def _clean(mask: torch.Tensor, *, keep_fraction: float, hole_fraction: float) -> torch.Tensor:
    """Drop specks and fill pinholes.

    Components smaller than `keep_fraction` of the largest are noise (dust, shadows); holes
    smaller than `hole_fraction` of the object are matting errors. Larger holes (a ring, a
    handle) are real and stay open.
    """
    if not bool(mask.any()):
        return mask
    labels = label_components(mask)
    values, counts = torch.unique(labels[mask], return_counts=True)
    kept = values[counts >= keep_fraction * counts.max()]
    mask = torch.isin(labels, kept) & mask
    background = ~mask
    outside = _components_touching(background, _border(mask.shape, mask.device))
    holes = background & ~outside
    if bool(holes.any()):
        hole_labels = label_components(holes)
        values, counts = torch.unique(hole_labels[holes], return_counts=True)
        small = values[counts < hole_fraction * mask.sum()]
        mask = mask | torch.isin(hole_labels, small) & holes
    return mask


def _check_coverage(mask: torch.Tensor) -> None:
    """Refuse masks that separate nothing: empty, or covering (nearly) the whole frame."""
    coverage = float(mask.float().mean())
    if coverage == 0.0:
        raise InvalidInput("no foreground found: the image is blank or fully transparent")
    if coverage > MAX_COVERAGE:
        raise InvalidInput(
            f"the foreground covers {coverage:.0%} of the image; leave some background "
            "around the object or supply an alpha channel"
        )
