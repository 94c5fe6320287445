"""The generator backends a GPU worker offers, by name.

Every backend is listed, available or not: the worker asks each one ``available()`` when a
job names it, so a job for a backend without weights fails with the reason instead of
"unknown generator".
"""

from __future__ import annotations

from pathlib import Path

from workers.gpu.backends import GeneratorBackend, InflateBackend
from workers.gpu.hunyuan import Hunyuan3DBackend
from workers.gpu.shap_e import ShapEBackend, ShapESettings
from workers.gpu.vram import DeviceBudget


def generator_backends(
    models_dir: Path | None, budget: DeviceBudget | None = None, *, shap_e_int8: bool = False
) -> dict[str, GeneratorBackend]:
    """The weight-free backend plus the model-based ones that read `models_dir`.

    Parameters
    ----------
    models_dir : ``Settings.models_dir``
    budget : the worker's device budget, shared so that loaded models of all backends
        count against one memory budget
    shap_e_int8 : run Shap-E's prior with int8 linear layers on CPU (``ORFEAS_SHAPE_INT8``)
    """
    backends: list[GeneratorBackend] = [
        InflateBackend(),
        ShapEBackend(models_dir, ShapESettings(int8_on_cpu=shap_e_int8), budget=budget),
        Hunyuan3DBackend(models_dir, budget=budget),
    ]
    return {backend.name: backend for backend in backends}
