"""The printer a mesh is judged against: build volume, process, material and speeds.

A :class:`PrinterProfile` is plain, frozen data. It reaches the mesh worker as the JSON of a job's
parameters, so :meth:`PrinterProfile.from_json` is the one place where that JSON is checked:
every field's type and range, unknown keys, and the pairing of material and technology. Bad
input raises :class:`core.errors.InvalidInput` naming the field, and nothing downstream has to
re-check it.

Mesh coordinates carry no unit; the caller says which (:data:`UNITS`) and everything printing
related is computed in millimetres.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from types import MappingProxyType
from typing import Any, Final, Literal

from core.errors import InvalidInput

Technology = Literal["fdm", "resin"]


@dataclass(frozen=True)
class Material:
    """A printing material: its density and the technology that prints it."""

    density_g_cm3: float
    technology: Technology


MATERIALS: Final[Mapping[str, Material]] = MappingProxyType(
    {
        "PLA": Material(1.24, "fdm"),
        "PETG": Material(1.27, "fdm"),
        # ABS blends range from 1.04 to 1.10 g/cm³; 1.05 is the common datasheet figure.
        "ABS": Material(1.05, "fdm"),
        "resin": Material(1.15, "resin"),
    }
)
"""Materials by name, with densities in g/cm³ (datasheet values of common brands)."""

UNITS: Final[Mapping[str, float]] = MappingProxyType(
    {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4}
)
"""Length units a mesh may be modelled in, as the factor that turns one unit into millimetres."""

_RESIN_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {"material": "resin", "layer_height_mm": 0.05, "min_wall_mm": 0.6, "support_density": 0.1}
)
"""What changes when a JSON profile names resin and leaves these out: MSLA layers are thinner,
unsupported resin walls hold from about 0.6 mm, and resin supports are sparse sticks."""


def mm_per_unit(units: str) -> float:
    """Return how many millimetres one mesh unit is, refusing units the studio does not know."""
    if not isinstance(units, str) or units not in UNITS:
        raise InvalidInput(f"units must be one of {sorted(UNITS)}, got {units!r}")
    return UNITS[units]


@dataclass(frozen=True)
class PrinterProfile:
    """One printer with one material, as the print analysis and optimiser need it.

    The constructor's defaults describe a common FDM printer (a 0.4 mm nozzle, 0.2 mm layers,
    PLA). :meth:`from_json` is the checked way in: it derives ``min_wall_mm`` (twice the
    nozzle) and ``volumetric_flow_mm3_s`` (nozzle · layer height · speed) when they are left
    out, takes the technology from the material when only the material is named, and gives
    resin profiles resin defaults; the constructor checks ranges but derives nothing.

    Attributes
    ----------
    build_volume_mm
        ``(x, y, z)`` printable extent.
    technology
        ``"fdm"`` (extruded filament) or ``"resin"`` (vat photopolymerisation).
    material
        A key of :data:`MATERIALS` printable by ``technology``.
    nozzle_mm
        Nozzle diameter, taken as the extrusion width (FDM only).
    layer_height_mm
        Layer thickness.
    min_wall_mm
        Walls thinner than this are flagged thin.
    infill
        Fraction of the interior that is extruded (FDM; resin parts print solid).
    perimeters
        Outline loops per layer (FDM).
    print_speed_mm_s
        Extrusion speed; only used to derive the flow.
    volumetric_flow_mm3_s
        Sustained extrusion rate, what limits FDM print time.
    overhang_angle_deg
        The largest angle from the vertical at which a downward-facing surface prints without
        support.
    support_density
        Fraction of the space under overhangs that the supports fill.
    layer_overhead_s
        FDM: time per layer that extrudes nothing (travel, z move, minimum layer time).
    resin_layer_s
        Resin: the whole cycle of one layer (exposure, peel, lift), independent of its area.
    """

    build_volume_mm: tuple[float, float, float] = (220.0, 220.0, 250.0)
    technology: Technology = "fdm"
    material: str = "PLA"
    nozzle_mm: float = 0.4
    layer_height_mm: float = 0.2
    min_wall_mm: float = 0.8
    infill: float = 0.2
    perimeters: int = 2
    print_speed_mm_s: float = 60.0
    volumetric_flow_mm3_s: float = 4.8
    overhang_angle_deg: float = 45.0
    support_density: float = 0.15
    layer_overhead_s: float = 1.0
    resin_layer_s: float = 8.0

    def __post_init__(self) -> None:
        _check_profile(self)

    @property
    def density_g_cm3(self) -> float:
        """Density of the profile's material."""
        return MATERIALS[self.material].density_g_cm3

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PrinterProfile:
        """Build a profile from a job's JSON parameters; ``None`` or ``{}`` gives the defaults.

        Raises
        ------
        InvalidInput
            ``data`` is not an object, has a key that is not a field, a value of the wrong
            type or out of range, or a material the technology cannot print.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidInput(
                f"the printer profile must be a JSON object, got {type(data).__name__}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise InvalidInput(f"unknown printer profile fields: {', '.join(unknown)}")
        values = {name: _parsed(name, value) for name, value in data.items()}
        if "material" in values and "technology" not in values:
            values["technology"] = MATERIALS[values["material"]].technology
        if values.get("technology") == "resin":
            values = {**_RESIN_DEFAULTS, **values}
        nozzle = values.get("nozzle_mm", cls.nozzle_mm)
        flow = (
            nozzle
            * values.get("layer_height_mm", cls.layer_height_mm)
            * values.get("print_speed_mm_s", cls.print_speed_mm_s)
        )
        # rounded so that derived values equal the constructor's literals (0.4 · 0.2 · 60 is
        # 4.800000000000001 in floating point)
        values.setdefault("min_wall_mm", round(2 * nozzle, 9))
        values.setdefault("volumetric_flow_mm3_s", round(flow, 9))
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Return every field as plain JSON values; ``from_json`` of it gives an equal profile."""
        plain = asdict(self)
        plain["build_volume_mm"] = list(self.build_volume_mm)
        return plain


# --------------------------------------------------------------------------- validation

_POSITIVE: Final = (
    "nozzle_mm",
    "layer_height_mm",
    "min_wall_mm",
    "print_speed_mm_s",
    "volumetric_flow_mm3_s",
    "resin_layer_s",
)


def _parsed(name: str, value: Any) -> Any:
    """Convert one JSON value to the field's Python type, refusing the wrong JSON type."""
    if name == "build_volume_mm":
        if not isinstance(value, list | tuple) or len(value) != 3:
            raise InvalidInput(f"build_volume_mm must be a list of 3 numbers, got {value!r}")
        return tuple(_number(name, item) for item in value)
    if name in ("technology", "material"):
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string, got {value!r}")
        return _material_name(value) if name == "material" else value
    if name == "perimeters":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"perimeters must be a whole number, got {value!r}")
        return value
    return _number(name, value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    return float(value)


def _material_name(name: str) -> str:
    """Match a material name case-insensitively ("pla" is "PLA") to its key."""
    for key in MATERIALS:
        if key.lower() == name.lower():
            return key
    raise InvalidInput(f"material must be one of {list(MATERIALS)}, got {name!r}")


def _check_profile(profile: PrinterProfile) -> None:
    """Refuse a profile no printer could have; the messages name the field and its value."""
    values = profile.to_json()
    if len(profile.build_volume_mm) != 3 or not all(
        _finite(v) and v > 0 for v in profile.build_volume_mm
    ):
        raise InvalidInput(
            f"build_volume_mm must be 3 positive sizes, got {values['build_volume_mm']}"
        )
    if profile.technology not in ("fdm", "resin"):
        raise InvalidInput(f"technology must be 'fdm' or 'resin', got {profile.technology!r}")
    if profile.material not in MATERIALS:
        raise InvalidInput(f"material must be one of {list(MATERIALS)}, got {profile.material!r}")
    if MATERIALS[profile.material].technology != profile.technology:
        raise InvalidInput(
            f"material {profile.material!r} is not printed by {profile.technology!r} printers"
        )
    for name in _POSITIVE:
        if not (_finite(values[name]) and values[name] > 0):
            raise InvalidInput(f"{name} must be a positive number, got {values[name]!r}")
    _check_range(values, "layer_overhead_s", 0.0, 600.0)
    _check_range(values, "infill", 0.0, 1.0)
    _check_range(values, "support_density", 0.0, 1.0)
    _check_range(values, "overhang_angle_deg", 0.0, 89.0)
    if isinstance(profile.perimeters, bool) or not isinstance(profile.perimeters, int):
        raise InvalidInput(f"perimeters must be a whole number, got {profile.perimeters!r}")
    if not 0 <= profile.perimeters <= 50:
        raise InvalidInput(f"perimeters must lie in [0, 50], got {profile.perimeters}")
    if profile.layer_height_mm > 2.0 or profile.nozzle_mm > 5.0:
        raise InvalidInput(
            "layer_height_mm must be at most 2 and nozzle_mm at most 5, got "
            f"{profile.layer_height_mm} and {profile.nozzle_mm}"
        )


def _check_range(values: Mapping[str, Any], name: str, low: float, high: float) -> None:
    value = values[name]
    if not (_finite(value) and low <= value <= high):
        raise InvalidInput(f"{name} must lie in [{low:g}, {high:g}], got {value!r}")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
