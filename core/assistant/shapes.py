"""Nearest designs by shape, from the descriptors the mesh worker keeps with each analysis
(:func:`workers.mesh.analysis.shape_descriptor`): no geometry is loaded to compare them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

SHAPE_VERSION = 1
PROPORTION_WEIGHT = 0.5
SIZE_WEIGHT = 0.25


def usable(descriptor: Any) -> bool:
    """A descriptor of the recipe this module compares (a later recipe's are skipped)."""
    return (isinstance(descriptor, Mapping) and descriptor.get("version") == SHAPE_VERSION
            and isinstance(descriptor.get("d2"), list)
            and isinstance(descriptor.get("proportions"), list)
            and isinstance(descriptor.get("size"), int | float) and descriptor["size"] > 0)


def distance(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """How unlike two shapes are: the L1 distance of their D2 histograms (0 to 2: form),
    plus half that of their proportions (elongated against compact) and a quarter of how
    many times ten one's size is the other's. Form dominates, so a small cup is nearer to a
    large cup than to a small plate."""
    form = sum(abs(float(x) - float(y)) for x, y in zip(a["d2"], b["d2"], strict=False))
    shape = sum(abs(float(x) - float(y))
                for x, y in zip(a["proportions"], b["proportions"], strict=False))
    size = abs(math.log10(float(a["size"]) / float(b["size"])))
    return form + PROPORTION_WEIGHT * shape + SIZE_WEIGHT * size


def nearest(own: Mapping[str, Any], candidates: Iterable[Mapping[str, Any]],
            k: int) -> list[dict[str, Any]]:
    """The ``k`` candidates (rows with a ``shape``) nearest ``own``, each with its distance,
    without its descriptor."""
    ranked = [{key: value for key, value in c.items() if key != "shape"}
              | {"distance": round(distance(own, c["shape"]), 4)}
              for c in candidates if usable(c.get("shape"))]
    ranked.sort(key=lambda row: (row["distance"], str(row.get("asset_id"))))
    return ranked[:k]
