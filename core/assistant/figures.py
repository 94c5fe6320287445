"""The figures the assistant cites, read from a mesh's cached analysis by name.

One table serves both ends of a suggestion: the prediction names the figures it expects to
change, and once the job's new mesh is analysed the same names are read from that analysis,
so the real effect stands beside the prediction figure for figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

SCORE = "printability score"
SUPPORT = "support volume"
WEIGHT = "print weight"
FACES = "faces"
THIN = "thin surface"
OVERHANG = "overhanging surface"
LARGEST = "largest extent"
WATERTIGHT = "watertight"
SHELLS = "shells"
FITS = "fits the build volume"

Stats = Mapping[str, Any]


def _printability(stats: Stats) -> Mapping[str, Any]:
    found = stats.get("printability")
    return found if isinstance(found, Mapping) else {}


def _at(data: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _percent(value: Any) -> float | None:
    return round(100.0 * float(value), 2) if isinstance(value, int | float) else None


def _largest(stats: Stats) -> float | None:
    extents = _printability(stats).get("extents_mm")
    return max(float(e) for e in extents) if isinstance(extents, list) and extents else None


READERS: dict[str, tuple[str | None, Callable[[Stats], Any]]] = {
    SCORE: ("points", lambda s: _printability(s).get("score")),
    SUPPORT: ("mm³", lambda s: _at(_printability(s), "support", "volume_mm3")),
    WEIGHT: ("g", lambda s: _at(_printability(s), "print", "weight_g")),
    FACES: (None, lambda s: s.get("faces")),
    THIN: ("% of the surface", lambda s: _percent(_at(_printability(s), "thin",
                                                       "area_fraction"))),
    OVERHANG: ("% of the surface", lambda s: _percent(_at(_printability(s), "overhang",
                                                           "area_fraction"))),
    LARGEST: ("mm", _largest),
    WATERTIGHT: (None, lambda s: s.get("watertight")),
    SHELLS: (None, lambda s: s.get("shells")),
    FITS: (None, lambda s: _at(_printability(s), "build", "fits_as_is")),
}
"""Figure name → (unit, how to read it from an analysis's stats)."""


def read(name: str, stats: Stats) -> Any:
    """The figure ``name`` of an analysis, rounded for reading; None where it has none."""
    value = READERS[name][1](stats)
    if isinstance(value, float):
        return round(value, 2)
    return value


def unit(name: str) -> str | None:
    return READERS[name][0]


def fact(name: str, value: Any, unit: str | None, source: str) -> dict[str, Any]:
    """One cited figure, as every answer lists them."""
    if isinstance(value, float):
        value = round(value, 2)
    return {"name": name, "value": value, "unit": unit, "source": source}


def analysis_fact(name: str, stats: Stats, source: str) -> dict[str, Any]:
    return fact(name, read(name, stats), unit(name), source)


def change(name: str, before: Any, after: Any) -> dict[str, Any]:
    """A figure before and after an operation (expected or measured)."""
    rounded = [round(v, 2) if isinstance(v, float) else v for v in (before, after)]
    return {"name": name, "unit": unit(name), "before": rounded[0], "after": rounded[1]}
