"""Device budgeting (:mod:`workers.gpu.vram`) and int8 measurement, on CPU with tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.errors import ConfigurationError, OrfeasError
from workers.gpu.hunyuan import Hunyuan3DBackend
from workers.gpu.quantisation import measure_int8, quantise_linear_int8
from workers.gpu.registry import generator_backends
from workers.gpu.vram import (
    DeviceBudget,
    DevicePlan,
    OutOfDeviceMemory,
    PipelineCache,
    choose_dtype,
    module_bytes,
    pick_batch_size,
)

CPU = torch.device("cpu")
MIB = 1024**2


def _linear(megabytes: int) -> torch.nn.Module:
    """A float32 linear layer of about `megabytes` MiB of weights."""
    side = int((megabytes * MIB / 4) ** 0.5)
    return torch.nn.Linear(side, side, bias=False)


def test_precision_per_device() -> None:
    cuda = torch.device("cuda", 0)
    assert choose_dtype(CPU) == torch.float32
    assert choose_dtype(CPU, bf16_supported=True) == torch.float32
    assert choose_dtype(cuda, bf16_supported=True) == torch.bfloat16
    assert choose_dtype(cuda, bf16_supported=False) == torch.float16
    assert DeviceBudget(CPU).plan().dtype == torch.float32


def test_batch_size_follows_free_memory() -> None:
    assert pick_batch_size(100 * MIB, 10 * MIB) == 4
    assert pick_batch_size(25 * MIB, 10 * MIB) == 2
    assert pick_batch_size(5 * MIB, 10 * MIB) == 1
    assert 1 <= DeviceBudget(CPU, per_item_bytes=MIB).plan().batch_size <= 4


def test_module_bytes_counts_parameters_and_pipeline_components() -> None:
    layer = _linear(1)
    expected = layer.weight.numel() * 4

    class Pipeline:
        components = {"model": layer, "name": "not a module"}

    assert module_bytes(layer) == expected
    assert module_bytes(Pipeline()) == expected
    assert module_bytes("text") == 0


def test_cache_evicts_least_recently_used_to_fit_budget() -> None:
    cache: PipelineCache[torch.nn.Module] = PipelineCache(int(2.5 * MIB), CPU)
    loads: list[str] = []

    def loader(key: str) -> torch.nn.Module:
        loads.append(key)
        return _linear(1)

    for key in ("a", "b"):
        cache.get(key, lambda k=key: loader(k))
    cache.get("a", lambda: loader("a"))  # a hit: "a" becomes most recently used
    cache.get("c", lambda: loader("c"))  # needs room: "b" goes
    assert loads == ["a", "b", "c"]
    assert cache.keys() == ["a", "c"]
    assert cache.used_bytes <= cache.budget_bytes


def test_cache_keeps_an_oversized_pipeline_alone() -> None:
    cache: PipelineCache[torch.nn.Module] = PipelineCache(MIB, CPU)
    cache.get("small", lambda: torch.nn.Linear(8, 8))
    cache.get("big", lambda: _linear(2))
    assert cache.keys() == ["big"]
    cache.clear()
    assert cache.keys() == [] and cache.used_bytes == 0


def test_out_of_memory_is_retried_once_smaller() -> None:
    budget = DeviceBudget(CPU)
    plans: list[DevicePlan] = []

    def job(plan: DevicePlan) -> int:
        plans.append(plan)
        if len(plans) == 1:
            raise torch.OutOfMemoryError("simulated: 2.00 GiB requested")
        return plan.batch_size

    result, report = budget.run(job, DevicePlan(CPU, torch.float32, batch_size=4))
    assert result == 2
    assert [p.batch_size for p in plans] == [4, 2]
    assert [p.resolution_scale for p in plans] == [1.0, 0.5]
    assert report["attempts"] == 2 and report["batch_size"] == 2
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    assert isinstance(report["peak_memory_bytes"], int) and report["peak_memory_bytes"] > 0
    assert str(report["peak_memory_source"]).startswith("rss_peak")


def test_second_out_of_memory_is_a_clear_error() -> None:
    def job(plan: DevicePlan) -> None:
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(OutOfDeviceMemory, match=r"even at batch 1 and 0\.5x") as caught:
        DeviceBudget(CPU).run(job, DevicePlan(CPU, torch.float32, batch_size=2))
    assert isinstance(caught.value, OrfeasError)


def test_other_errors_are_not_retried() -> None:
    calls = []

    def job(plan: DevicePlan) -> None:
        calls.append(plan)
        raise ValueError("a bug, not memory")

    with pytest.raises(ValueError):
        DeviceBudget(CPU).run(job)
    assert len(calls) == 1


def test_peak_memory_sees_a_large_cpu_allocation() -> None:
    def job(plan: DevicePlan) -> int:
        block = torch.ones(64 * MIB // 4)  # 64 MiB, touched so it is resident
        return int(block.numel())

    _, report = DeviceBudget(CPU).run(job)
    assert int(str(report["peak_memory_bytes"])) >= 64 * MIB


def test_int8_quantisation_is_measured() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 64)
    ).eval()
    example = torch.randn(32, 256)
    report = measure_int8(model, example, repeats=3)
    assert report.float_seconds > 0 and report.int8_seconds > 0
    assert report.speedup == pytest.approx(report.float_seconds / report.int8_seconds)
    assert report.int8_bytes < report.float_bytes / 2  # int8 weights: about a quarter
    assert report.max_abs_diff > 0 and report.relative_error < 0.05
    assert set(report.as_dict()) >= {"speedup", "max_abs_diff", "relative_error"}


def test_int8_quantisation_leaves_the_original_alone() -> None:
    model = torch.nn.Linear(8, 8)
    quantised = quantise_linear_int8(model)
    assert type(model) is torch.nn.Linear and type(quantised) is not torch.nn.Linear


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_int8_quantisation_refuses_gpu_models() -> None:
    with pytest.raises(ConfigurationError):
        quantise_linear_int8(torch.nn.Linear(4, 4).cuda())


def test_hunyuan_says_why_it_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HY3DGEN_MODELS", raising=False)
    ok, reason = Hunyuan3DBackend(None).available()
    assert not ok and "HY3DGEN_MODELS" in reason
    ok, reason = Hunyuan3DBackend(tmp_path).available()
    assert not ok and "config.yaml is missing" in reason
    folder = tmp_path / "hunyuan3d" / "tencent" / "Hunyuan3D-2" / "hunyuan3d-dit-v2-0"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model: {}\n")
    (folder / "model.fp16.safetensors").write_bytes(b"")
    ok, reason = Hunyuan3DBackend(tmp_path).available()
    assert not ok and "hy3dgen" in reason  # the package is not installed here
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path / "elsewhere"))
    assert Hunyuan3DBackend(tmp_path).weights_root == tmp_path / "elsewhere"


def test_registry_lists_every_backend(tmp_path: Path) -> None:
    backends = generator_backends(tmp_path)
    assert set(backends) == {"inflate", "shap-e", "hunyuan3d"}
    assert backends["inflate"].available()[0]
    assert not backends["shap-e"].available()[0]


def test_int8_quantisation_needs_a_linear_layer() -> None:
    with pytest.raises(ConfigurationError, match=r"no nn\.Linear"):
        quantise_linear_int8(torch.nn.Sequential(torch.nn.ReLU()))
