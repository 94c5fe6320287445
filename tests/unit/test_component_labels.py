"""The two ways :mod:`workers.gpu.silhouette` labels connected components agree: scipy's on CPU
and the torch-only propagation that GPUs use (run here on CPU tensors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.renders import view
from workers.gpu.silhouette import image_to_tensor, label_components, propagate_labels


@pytest.mark.parametrize("density", [0.2, 0.45, 0.6, 0.9])
def test_random_masks_get_the_same_labels(density: float) -> None:
    mask = torch.from_numpy(np.random.default_rng(7).random((70, 90)) < density)
    labels = label_components(mask)
    assert torch.equal(labels, propagate_labels(mask))
    assert bool((labels[mask] > 0).all()) and not bool(labels[~mask].any())


def test_a_rendered_silhouette_and_its_background_get_the_same_labels() -> None:
    mask = image_to_tensor(view("bunny", 160).image)[..., 3] >= 0.5
    for part in (mask, ~mask):
        assert torch.equal(label_components(part), propagate_labels(part))


def test_an_empty_mask_has_no_labels() -> None:
    empty = torch.zeros((5, 7), dtype=torch.bool)
    assert not bool(label_components(empty).any())
    assert label_components(empty).dtype == torch.int64
