"""The parameters of the mesh jobs: what ``POST /meshes/{id}/<operation>`` accepts, and what
the mesh worker re-checks when it reads the command from the log.

:func:`check_mesh_params` returns the canonical parameters (defaults filled in, a printer
profile complete), and checking the canonical form again gives it unchanged, so the API
stores exactly what the worker will run. Ranges and defaults are the ones the worker's own
functions enforce (``workers.mesh.printer``, ``styles``, ``materials``); a unit test holds
the two sides equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    RootModel,
    field_validator,
    model_validator,
)

from core.contracts.validation import WHOLE, Input, text, validated
from core.errors import InvalidInput
from core.events.job_kinds import (
    MESH_ANALYSE,
    MESH_MATERIAL,
    MESH_OPTIMISE,
    MESH_REPAIR,
    MESH_STYLE,
)

Units = Literal["mm", "cm", "m", "in"]
ObjectId = Annotated[str, text(100, min_length=1), Field(
    description="The scene object that shows this mesh: it is changed to show the result.")]
Positive = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]

# -- printer -------------------------------------------------------------------------------

PRINTER_MATERIALS: Mapping[str, Literal["fdm", "resin"]] = {
    "PLA": "fdm", "PETG": "fdm", "ABS": "fdm", "resin": "resin"}
"""Printing materials and the technology that prints each (densities live in the worker)."""

PRINTER_DEFAULTS: Mapping[str, Any] = {
    "build_volume_mm": [220.0, 220.0, 250.0], "technology": "fdm", "material": "PLA",
    "nozzle_mm": 0.4, "layer_height_mm": 0.2, "min_wall_mm": 0.8, "infill": 0.2,
    "perimeters": 2, "print_speed_mm_s": 60.0, "volumetric_flow_mm3_s": 4.8,
    "overhang_angle_deg": 45.0, "support_density": 0.15, "layer_overhead_s": 1.0,
    "resin_layer_s": 8.0,
}
"""A common FDM printer (0.4 mm nozzle, 0.2 mm layers, PLA): the worker's ``PrinterProfile()``."""

RESIN_DEFAULTS: Mapping[str, Any] = {
    "material": "resin", "layer_height_mm": 0.05, "min_wall_mm": 0.6, "support_density": 0.1}
"""What a resin profile changes when left out: thinner layers and walls, sparser supports."""


def _material_key(name: str) -> str:
    for key in PRINTER_MATERIALS:
        if key.lower() == name.lower():
            return key
    raise ValueError(f"must be one of {list(PRINTER_MATERIALS)}, got {name!r}")


class PrinterParams(Input):
    """A printer profile; every field may be left out. Left out, ``min_wall_mm`` is twice the
    nozzle and ``volumetric_flow_mm3_s`` nozzle x layer height x speed; naming only the
    material sets the technology, and a resin profile starts from resin defaults."""

    build_volume_mm: Annotated[list[Positive], Field(min_length=3, max_length=3)] = Field(
        default=[220.0, 220.0, 250.0], description="Printable extent [x, y, z] in mm.")
    technology: Literal["fdm", "resin"] = Field(
        default="fdm", description="Extruded filament (fdm) or vat photopolymerisation (resin).")
    material: Annotated[str, text(20), AfterValidator(_material_key)] = Field(
        default="PLA", description="PLA, PETG, ABS or resin (any case), of the technology.")
    nozzle_mm: Annotated[float, Field(gt=0, le=5)] = Field(
        default=0.4, description="Nozzle diameter, taken as the extrusion width (FDM).")
    layer_height_mm: Annotated[float, Field(gt=0, le=2)] = Field(
        default=0.2, description="Layer thickness in mm.")
    min_wall_mm: Positive = Field(default=0.8, description="Thinner walls are flagged thin.")
    infill: Fraction = Field(default=0.2, description="Share of the interior extruded (FDM).")
    perimeters: Annotated[int, Field(ge=0, le=50)] = Field(
        default=2, description="Outline loops per layer (FDM).")
    print_speed_mm_s: Positive = Field(default=60.0, description="Extrusion speed in mm/s.")
    volumetric_flow_mm3_s: Positive = Field(
        default=4.8, description="Sustained extrusion rate in mm³/s, what limits FDM print time.")
    overhang_angle_deg: Annotated[float, Field(ge=0, le=89)] = Field(
        default=45.0, description="Steepest angle from the vertical that prints without support.")
    support_density: Fraction = Field(
        default=0.15, description="Share of the space under overhangs that supports fill.")
    layer_overhead_s: Annotated[float, Field(ge=0, le=600)] = Field(
        default=1.0, description="FDM: seconds per layer that extrude nothing.")
    resin_layer_s: Positive = Field(default=8.0, description="Resin: seconds of one layer's cycle.")

    @model_validator(mode="after")
    def _consistent(self) -> PrinterParams:
        profile = self.profile()
        if PRINTER_MATERIALS[profile["material"]] != profile["technology"]:
            raise ValueError(f"material {profile['material']!r} is not printed by "
                             f"{profile['technology']!r} printers")
        for name, value in profile.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} works out at {value}: the profile's figures are "
                                 "too large")
        return self

    def profile(self) -> dict[str, Any]:
        """The complete profile, as the worker's ``PrinterProfile.from_json(...).to_json()``."""
        given = {name: getattr(self, name) for name in self.model_fields_set}
        if "material" in given and "technology" not in given:
            given["technology"] = PRINTER_MATERIALS[given["material"]]
        if given.get("technology") == "resin":
            given = {**RESIN_DEFAULTS, **given}
        nozzle = given.get("nozzle_mm", PRINTER_DEFAULTS["nozzle_mm"])
        flow = (nozzle * given.get("layer_height_mm", PRINTER_DEFAULTS["layer_height_mm"])
                * given.get("print_speed_mm_s", PRINTER_DEFAULTS["print_speed_mm_s"]))
        # rounded as the worker rounds: 0.4 x 0.2 x 60 is 4.800000000000001 in floating point
        given.setdefault("min_wall_mm", round(2 * nozzle, 9))
        given.setdefault("volumetric_flow_mm3_s", round(flow, 9))
        profile = {**PRINTER_DEFAULTS, **given}
        profile["build_volume_mm"] = [float(v) for v in profile["build_volume_mm"]]
        return {name: float(value) if isinstance(value, int) and name != "perimeters"
                else value for name, value in profile.items()}


# -- analysis and the print optimiser ----------------------------------------------------------


def _non_zero(up: list[float]) -> list[float]:
    if not any(up):
        raise ValueError("must be a non-zero direction [x, y, z]")
    return up


class AnalysisParams(Input):
    """``POST /meshes/{id}/analysis``: the units the mesh is modelled in, the printer to judge
    it against, and the build direction."""

    units: Units = Field(default="mm", description="The unit of the mesh's coordinates.")
    printer: PrinterParams | None = Field(default=None, description="Null: a common FDM printer.")
    up: Annotated[list[float], Field(min_length=3, max_length=3),
                  AfterValidator(_non_zero)] = Field(
        default=[0.0, 0.0, 1.0], description="The build direction [x, y, z] in mesh coordinates.")

    def canonical(self) -> dict[str, Any]:
        return {"units": self.units, "printer": _profile(self.printer),
                "up": [float(v) for v in self.up]}


class OptimiseParams(Input):
    """``POST /meshes/{id}/optimise``: which print-preparation steps to run for which printer;
    ``hollow`` (a wall in mm) is for resin printers, with ``drain_holes``."""

    object_id: ObjectId | None = None
    units: Units = Field(default="mm", description="The unit of the mesh's coordinates.")
    printer: PrinterParams | None = Field(default=None, description="Null: a common FDM printer.")
    reorient: bool = Field(default=True, description="Turn the part to need the least support.")
    thicken: bool = Field(default=False, description="Thicken walls below the printer's minimum.")
    scale_to_fit: bool = Field(default=False, description="Scale down to fit the build volume.")
    hollow: Annotated[float, Field(ge=0.3, le=20.0)] | None = Field(
        default=None, description="Resin: hollow the part to walls this thick (mm).")
    drain_holes: Annotated[int, Field(ge=0, le=8), WHOLE] = Field(
        default=2, description="Drain holes of a hollowed part.")

    @model_validator(mode="after")
    def _hollow_is_for_resin(self) -> OptimiseParams:
        if self.hollow is not None and _profile(self.printer)["technology"] != "resin":
            raise ValueError("hollowing is for resin printers; set printer.technology to resin")
        return self

    def canonical(self) -> dict[str, Any]:
        return _with_object(self) | {
            "units": self.units, "printer": _profile(self.printer), "reorient": self.reorient,
            "thicken": self.thicken, "scale_to_fit": self.scale_to_fit,
            "hollow": None if self.hollow is None else float(self.hollow),
            "drain_holes": self.drain_holes}


def _profile(printer: PrinterParams | None) -> dict[str, Any]:
    return (printer or PrinterParams()).profile()


def _with_object(params: BaseModel) -> dict[str, Any]:
    object_id = getattr(params, "object_id", None)
    return {} if object_id is None else {"object_id": object_id}


# -- repair --------------------------------------------------------------------------------


class RepairParams(Input):
    """``POST /meshes/{id}/repair``: the share of the faces below which a loose part is debris,
    and the distance within which vertices are merged (mesh units; null: automatic)."""

    object_id: ObjectId | None = None
    debris_fraction: Annotated[float, Field(ge=0.0, le=0.5)] = Field(
        default=1e-4, description="Loose parts below this share of the whole mesh's area, "
        "and below its square root of the whole's size, are removed as debris.")
    merge_tolerance: Positive | None = Field(
        default=None, description="Join corners closer than this (mesh units); null: "
        "automatic (exact matches, and near ones where they close an open mesh).")

    def canonical(self) -> dict[str, Any]:
        return _with_object(self) | {"debris_fraction": float(self.debris_fraction),
                                     "merge_tolerance": self.merge_tolerance}


# -- styles --------------------------------------------------------------------------------

STYLES = ("low_poly", "organic", "mechanical", "futuristic", "custom")
MAX_STYLE_FACES = 2_000_000
Ratio = Annotated[float, Field(ge=0.01, le=1.0)]
FaceLimit = Annotated[int, Field(ge=1, le=MAX_STYLE_FACES), WHOLE]


class _Styled(Input):
    object_id: ObjectId | None = None

    def canonical(self) -> dict[str, Any]:
        return _with_object(self) | self.model_dump(exclude={"object_id"})


class LowPolyStyle(_Styled):
    """Quadric decimation to ``ratio`` of the faces, flat shaded."""

    style: Literal["low_poly"]
    ratio: Ratio = 0.1


class OrganicStyle(_Styled):
    """Loop subdivisions (fewer past ``max_faces``), then Taubin smoothing passes."""

    style: Literal["organic"]
    iterations: Annotated[int, Field(ge=0, le=100), WHOLE] = 10
    subdivisions: Annotated[int, Field(ge=0, le=2), WHOLE] = 1
    max_faces: FaceLimit = MAX_STYLE_FACES


class MechanicalStyle(_Styled):
    """Decimation, then near-coplanar faces snapped into planes; sharp edges shaded hard."""

    style: Literal["mechanical"]
    angle: Annotated[float, Field(ge=1.0, le=45.0)] = 12.0
    feature_angle: Annotated[float, Field(ge=1.0, le=90.0)] = 30.0
    ratio: Ratio = 0.5
    iterations: Annotated[int, Field(ge=1, le=10), WHOLE] = 3


class FuturisticStyle(_Styled):
    """Decimation to large facets, then every edge chamfered by ``bevel`` of the diagonal."""

    style: Literal["futuristic"]
    ratio: Ratio = 0.05
    bevel: Annotated[float, Field(ge=0.0, le=0.05)] = 0.01


class CustomStyle(_Styled):
    """Smoothing, decimation or subdivision (``detail``), and an optional mirror."""

    style: Literal["custom"]
    smoothness: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    detail: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0
    symmetry: Literal["none", "x", "y", "z"] = "none"
    keep: Literal["positive", "negative"] = "positive"
    max_faces: FaceLimit = MAX_STYLE_FACES


class StyleParams(RootModel[Annotated[
        LowPolyStyle | OrganicStyle | MechanicalStyle | FuturisticStyle | CustomStyle,
        Field(discriminator="style")]]):
    """``POST /meshes/{id}/style``: a style preset and its parameters."""


STYLE_MODELS: dict[str, type[_Styled]] = {
    "low_poly": LowPolyStyle, "organic": OrganicStyle, "mechanical": MechanicalStyle,
    "futuristic": FuturisticStyle, "custom": CustomStyle}


# -- materials -------------------------------------------------------------------------------

MATERIAL_KINDS = ("metal", "plastic", "wood", "stone", "ceramic", "fabric")
TEXTURE_SIZES = (128, 256, 512, 1024, 2048)
MATERIAL_DEFAULTS: Mapping[str, tuple[tuple[float, float, float], tuple[float, float], float]] = {
    "metal": ((0.72, 0.73, 0.75), (0.25, 0.45), 1.0),
    "plastic": ((0.80, 0.18, 0.16), (0.35, 0.50), 0.0),
    "wood": ((0.63, 0.43, 0.24), (0.55, 0.80), 0.0),
    "stone": ((0.54, 0.52, 0.49), (0.75, 0.95), 0.0),
    "ceramic": ((0.95, 0.93, 0.89), (0.05, 0.15), 0.0),
    "fabric": ((0.23, 0.36, 0.55), (0.80, 1.00), 0.0),
}
"""Each kind's colour (sRGB), roughness range and metalness when the caller gives none."""

_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
Component = Annotated[float, Field(ge=0.0, le=1.0)]


def material_catalogue() -> list[dict[str, Any]]:
    """Each kind's defaults as the workspace shows them before a bake: colour (``#rrggbb``),
    roughness range and metalness; the browser's preview starts from these numbers."""
    return [{"kind": kind,
             "color": "#" + "".join(f"{round(c * 255):02x}" for c in color),
             "roughness": list(roughness), "metallic": metallic}
            for kind, (color, roughness, metallic) in MATERIAL_DEFAULTS.items()]


class MaterialParams(Input):
    """``POST /meshes/{id}/material``: a procedural PBR material baked into textures.
    ``color`` is ``"#rrggbb"`` or ``[r, g, b]`` in [0, 1]; ``roughness`` is ``[low, high]``."""

    object_id: ObjectId | None = None
    material: Literal["metal", "plastic", "wood", "stone", "ceramic", "fabric"]
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0
    color: Annotated[list[Component], Field(min_length=3, max_length=3)] | None = None
    roughness: Annotated[list[Component], Field(min_length=2, max_length=2)] | None = None
    scale: Annotated[float, Field(ge=0.01, le=100.0)] = 1.0
    texture_size: Literal[128, 256, 512, 1024, 2048] = 512

    @field_validator("color", mode="before")
    @classmethod
    def _hex(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not _HEX_COLOR.fullmatch(value):
                raise ValueError(f'must be "#rrggbb" or [r, g, b], got {value[:20]!r}')
            return [int(value[i:i + 2], 16) / 255.0 for i in (1, 3, 5)]
        return value

    @field_validator("roughness")
    @classmethod
    def _ordered(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"must be [low, high] with low <= high, got {value}")
        return value

    def canonical(self) -> dict[str, Any]:
        color, roughness, _ = MATERIAL_DEFAULTS[self.material]
        return _with_object(self) | {
            "material": self.material, "seed": self.seed,
            "color": [float(c) for c in (self.color or color)],
            "roughness": [float(r) for r in (self.roughness or roughness)],
            "scale": float(self.scale), "texture_size": self.texture_size}


# -- one entry point ---------------------------------------------------------------------------

OPERATION_MODELS: dict[str, type[Input]] = {
    MESH_ANALYSE: AnalysisParams,
    MESH_REPAIR: RepairParams,
    MESH_MATERIAL: MaterialParams,
    MESH_OPTIMISE: OptimiseParams,
}
"""The body model of each job kind; styles pick theirs by the ``style`` field."""


def check_mesh_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical parameters of a ``kind`` job (defaults filled in), or InvalidInput."""
    if not isinstance(params, Mapping):
        raise InvalidInput(f"{kind} parameters must be a JSON object")
    if kind == MESH_STYLE:
        model: type[Input] = _style_model(params.get("style"))
    elif kind in OPERATION_MODELS:
        model = OPERATION_MODELS[kind]
    else:
        raise InvalidInput(f"unknown mesh operation {kind!r}")
    checked: Any = validated(model, dict(params), "the parameters")
    canonical: dict[str, Any] = checked.canonical()
    return canonical


def _style_model(style: Any) -> type[_Styled]:
    if not isinstance(style, str) or style not in STYLE_MODELS:
        raise InvalidInput(f"style must be one of {', '.join(STYLES)}")
    return STYLE_MODELS[style]
