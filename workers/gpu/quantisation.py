"""Optional int8 dynamic quantisation of linear layers for CPU inference, measured not assumed.

Dynamic quantisation stores ``nn.Linear`` weights as int8 and quantises activations on the
fly. Whether that pays off depends on the model: small layers can get slower (the
quantise/dequantise overhead dominates) and outputs drift. :func:`measure_int8` therefore
runs both versions on the same input and reports time, size and output difference, so an
operator decides from numbers.
"""

from __future__ import annotations

import copy
import io
import time
import warnings
from dataclasses import asdict, dataclass

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from core.errors import ConfigurationError


@dataclass(frozen=True)
class QuantisationReport:
    """Effect of int8 dynamic quantisation on one model and input.

    Attributes
    ----------
    float_seconds, int8_seconds : median seconds of one forward pass
    speedup : float_seconds / int8_seconds (above 1 means int8 is faster)
    float_bytes, int8_bytes : size of the serialised state dict
    max_abs_diff, mean_abs_diff : between the two outputs
    relative_error : L2 norm of the difference over the L2 norm of the float output
    """

    float_seconds: float
    int8_seconds: float
    speedup: float
    float_bytes: int
    int8_bytes: int
    max_abs_diff: float
    mean_abs_diff: float
    relative_error: float

    def as_dict(self) -> dict[str, float | int]:
        """Plain values for an event or a log line."""
        return asdict(self)


def quantise_linear_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` with its ``nn.Linear`` layers dynamically quantised to int8.

    ``torch.ao.quantization`` warns that it is deprecated in favour of ``torchao``; it
    still works and is the one implementation shipped with torch, so its warnings are
    silenced here rather than turned into errors for every caller.

    ``quantize_dynamic`` swaps child modules only, so a bare ``nn.Linear`` is wrapped
    for the swap and unwrapped afterwards; otherwise it would come back unchanged.

    Raises
    ------
    ConfigurationError
        The model is not on the CPU (dynamic int8 kernels exist only there), or it has
        no linear layer to quantise.
    """
    devices = {p.device.type for p in model.parameters()}
    if devices - {"cpu"}:
        raise ConfigurationError(f"int8 dynamic quantisation runs on CPU; model is on {devices}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        wrapped = torch.nn.Sequential(copy.deepcopy(model))
        quantised = torch.ao.quantization.quantize_dynamic(
            wrapped, {torch.nn.Linear}, dtype=torch.qint8
        )
    if not any(isinstance(m, DynamicLinear) for m in quantised.modules()):
        raise ConfigurationError(f"{type(model).__name__} has no nn.Linear layer to quantise")
    return quantised[0]


def measure_int8(
    model: torch.nn.Module, example: torch.Tensor, *, repeats: int = 5
) -> QuantisationReport:
    """Quantise `model` and compare it with the original on `example`.

    Parameters
    ----------
    model : float CPU model whose forward takes one tensor and returns one tensor
    example : an input batch, e.g. (batch, features) float
    repeats : timed forward passes per version (after one warm-up); the median is kept
    """
    quantised = quantise_linear_int8(model)
    with torch.inference_mode():
        reference = model(example)
        approximate = quantised(example)
        float_seconds = _median_seconds(model, example, repeats)
        int8_seconds = _median_seconds(quantised, example, repeats)
    difference = (approximate - reference).abs()
    return QuantisationReport(
        float_seconds=float_seconds,
        int8_seconds=int8_seconds,
        speedup=float_seconds / max(int8_seconds, 1e-12),
        float_bytes=_state_bytes(model),
        int8_bytes=_state_bytes(quantised),
        max_abs_diff=float(difference.max()),
        mean_abs_diff=float(difference.mean()),
        relative_error=float(difference.norm() / reference.norm().clamp_min(1e-12)),
    )


def _median_seconds(model: torch.nn.Module, example: torch.Tensor, repeats: int) -> float:
    """Median wall-clock seconds of `repeats` forward passes after one warm-up."""
    model(example)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        model(example)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def _state_bytes(model: torch.nn.Module) -> int:
    """Size of the serialised state dict: packed int8 weights are not ``parameters()``."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes
