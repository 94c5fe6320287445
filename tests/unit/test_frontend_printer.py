"""The print bed the workspace draws is the default printer profile's build volume."""

from __future__ import annotations

import json
from pathlib import Path

from core.contracts.mesh_params import PrinterParams
from workers.mesh.printer import PrinterProfile

SHIPPED = Path(__file__).resolve().parents[2] / "frontend" / "src" / "printerProfile.json"


def test_the_drawn_bed_is_the_default_profiles_build_volume() -> None:
    shipped = json.loads(SHIPPED.read_text())["build_volume_mm"]
    assert shipped == list(PrinterProfile().build_volume_mm)
    assert shipped == PrinterParams().build_volume_mm
