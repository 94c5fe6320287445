"""Device memory budgeting for the GPU worker: precision, batch size, loaded models, OOM.

One :class:`DeviceBudget` per worker device decides how a job runs there: the precision
(bf16 where the GPU supports it, else fp16; fp32 on CPU, where half precision is slow and
lossy), a batch size from the memory that is free right now, which loaded pipelines stay
resident (least recently used first out, within a byte budget), and what happens when the
device runs out of memory anyway: the caches are emptied and the job is retried once at
half the batch and a coarser resolution before it fails with :class:`OutOfDeviceMemory`.
Every run is measured (device, peak memory, seconds) into a plain dict for the job events.
"""

from __future__ import annotations

import gc
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import psutil
import torch

from core.errors import OrfeasError
from workers.gpu.backends import GeneratedMesh

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 4
_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


class OutOfDeviceMemory(OrfeasError):
    """A job did not fit in device memory even after the smaller retry.

    Retrying on another worker (or later, on a less busy device) may succeed, so callers
    should record it as a retryable failure.
    """


@dataclass(frozen=True)
class DevicePlan:
    """How one attempt of a job uses the device.

    Attributes
    ----------
    device : where the job runs
    dtype : floating-point precision of the models
    batch_size : items processed together, 1 to 4
    resolution_scale : factor on the job's grid or image resolution (1.0, then 0.5 on retry)
    """

    device: torch.device
    dtype: torch.dtype
    batch_size: int
    resolution_scale: float = 1.0

    def shrunk(self) -> DevicePlan:
        """The plan of the retry after running out of memory: half the batch and resolution."""
        return replace(
            self,
            batch_size=max(1, self.batch_size // 2),
            resolution_scale=self.resolution_scale * 0.5,
        )


@dataclass(frozen=True)
class MeasuredMesh(GeneratedMesh):
    """A backend's result together with the device report of the run that produced it.

    Attributes
    ----------
    report : see :meth:`DeviceBudget.run`; plain values, ready to go into an event
    """

    report: Mapping[str, object] = field(default_factory=dict)


def choose_dtype(device: torch.device, *, bf16_supported: bool | None = None) -> torch.dtype:
    """Precision for models on `device`.

    bf16 keeps fp32's exponent range, so activations that overflow fp16 stay finite; fp16
    is the fallback on GPUs without bf16. CPUs get fp32: their half-precision kernels are
    slower than fp32 and lose accuracy for nothing.

    Parameters
    ----------
    device : the target device
    bf16_supported : whether the GPU supports bf16; asked of torch when None
    """
    if device.type != "cuda":
        return torch.float32
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else torch.float16


def free_memory(device: torch.device) -> tuple[int, int]:
    """(free, total) bytes on `device`: the GPU's own memory, or the machine's RAM."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return int(free), int(total)
    memory = psutil.virtual_memory()
    return int(memory.available), int(memory.total)


def pick_batch_size(free_bytes: int, per_item_bytes: int, *, reserve: float = 0.2) -> int:
    """Largest batch of 1 to 4 whose working memory fits in `free_bytes`.

    A `reserve` fraction of the free memory is left alone: allocators fragment, and other
    processes may share the device. One item is always allowed; whether it fits is found
    out by running it, with the out-of-memory retry as the safety net.
    """
    if per_item_bytes <= 0:
        return MAX_BATCH
    usable = free_bytes * (1.0 - reserve)
    return max(1, min(MAX_BATCH, int(usable // per_item_bytes)))


def module_bytes(thing: object) -> int:
    """Bytes held by the parameters and buffers of a module, or of a pipeline's modules.

    Diffusers pipelines expose their parts as ``components``; anything else that is not a
    ``torch.nn.Module`` counts as zero (tokenisers, schedulers, image processors).
    """
    if isinstance(thing, torch.nn.Module):
        tensors = [*thing.parameters(), *thing.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors)
    components = getattr(thing, "components", None)
    if isinstance(components, Mapping):
        return sum(module_bytes(part) for part in components.values())
    return 0


def release_cached_memory(device: torch.device) -> None:
    """Return freed blocks to the device, so the next job (or process) can use them.

    Dropped tensors go back to PyTorch's caching allocator, not to the driver; without
    ``empty_cache`` a later, larger allocation can fail although nothing is in use.
    """
    gc.collect()
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


class PipelineCache(Generic[T]):
    """Loaded pipelines kept resident, least recently used evicted first, within a budget.

    Loading weights takes seconds to minutes, so pipelines stay loaded between jobs; the
    budget stops several large ones from crowding out the memory the jobs need. A pipeline
    larger than the whole budget is still loaded (a job needs it), but alone.
    """

    def __init__(
        self,
        budget_bytes: int,
        device: torch.device,
        size_of: Callable[[object], int] = module_bytes,
    ) -> None:
        self.budget_bytes = budget_bytes
        self.device = device
        self._size_of = size_of
        self._entries: OrderedDict[str, tuple[T, int]] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        """Resident keys, least recently used first."""
        return list(self._entries)

    @property
    def used_bytes(self) -> int:
        """Bytes held by the resident pipelines, as measured when each was loaded."""
        return sum(size for _, size in self._entries.values())

    def get(self, key: str, load: Callable[[], T]) -> T:
        """The pipeline for `key`, loading it with `load` (and evicting others) if needed."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key][0]
        value = load()
        size = self._size_of(value)
        self._make_room(size)
        self._entries[key] = (value, size)
        return value

    def evict(self, key: str) -> None:
        """Drop one pipeline and hand its memory back to the device."""
        self._entries.pop(key, None)
        release_cached_memory(self.device)

    def clear(self) -> None:
        """Drop every pipeline (on shutdown, or after an out-of-memory failure)."""
        self._entries.clear()
        release_cached_memory(self.device)

    def _make_room(self, size: int) -> None:
        """Evict least recently used pipelines until `size` more bytes fit the budget."""
        while self._entries and self.used_bytes + size > self.budget_bytes:
            key, (_, evicted) = self._entries.popitem(last=False)
            log.info("evicting pipeline %s (%d bytes) to fit %d bytes", key, evicted, size)
        release_cached_memory(self.device)


class PeakMemory:
    """Peak memory of one run: the CUDA allocator's high-water mark, or the process's RSS.

    On CPU, torch allocates outside Python's allocator, so ``tracemalloc`` would miss the
    tensors; the resident set size sees them. Linux lets a process reset its RSS high-water
    mark (``/proc/self/clear_refs``); where that is refused, the process's lifetime peak is
    reported instead and `source` says so.

    Both figures include what was resident before the run (loaded models, the interpreter);
    :meth:`delta` subtracts the memory in use at :meth:`start` and so estimates what the run
    itself needed. On CPU that estimate is rough: other threads of the process allocate too,
    and memory freed back to the allocator but not to the OS still counts as resident.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.source = ""
        self.baseline = 0

    def start(self) -> None:
        """Reset the high-water mark at the start of a run, and note what is in use now."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = int(torch.cuda.memory_allocated(self.device))
            self.source = "cuda_max_memory_allocated"
            return
        self.baseline = int(psutil.Process().memory_info().rss)
        if _reset_rss_peak():
            self.source = "rss_peak_since_start"
        else:
            self.source = "rss_peak_of_process"

    def delta(self) -> int:
        """Peak bytes since :meth:`start` beyond those in use when it was called."""
        return max(0, self.read() - self.baseline)

    def read(self) -> int:
        """Peak bytes since :meth:`start` (see `source` for what was measured)."""
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.source == "rss_peak_since_start":
            return _rss_peak_bytes()
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _reset_rss_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux ``clear_refs`` value 5)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _rss_peak_bytes() -> int:
    """``VmHWM`` of this process, in bytes."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return int(psutil.Process().memory_info().rss)


class DeviceBudget:
    """How jobs use one device: precision, batch size, resident pipelines, OOM retry.

    Parameters
    ----------
    device : the worker's device
    cache_fraction : share of the device's total memory that loaded pipelines may hold
    per_item_bytes : working memory one batch item needs beyond the weights; it sets the
        batch size from the memory free when a job starts
    bf16_supported : override for tests and for GPUs that misreport; asked of torch when None
    """

    def __init__(
        self,
        device: torch.device,
        *,
        cache_fraction: float = 0.6,
        per_item_bytes: int = 2 * 1024**3,
        bf16_supported: bool | None = None,
    ) -> None:
        self.device = device
        self.dtype = choose_dtype(device, bf16_supported=bf16_supported)
        self.per_item_bytes = per_item_bytes
        _, total = free_memory(device)
        self.pipelines: PipelineCache[Any] = PipelineCache(int(total * cache_fraction), device)

    def plan(self) -> DevicePlan:
        """The plan for a job starting now, from the memory free at this moment."""
        free, _ = free_memory(self.device)
        batch = pick_batch_size(free, self.per_item_bytes)
        return DevicePlan(self.device, self.dtype, batch)

    def run(
        self, job: Callable[[DevicePlan], T], plan: DevicePlan | None = None
    ) -> tuple[T, dict[str, object]]:
        """Run `job` under a plan, retrying once smaller if the device runs out of memory.

        Returns
        -------
        result : what `job` returned
        report : ``device``, ``dtype``, ``batch_size``, ``resolution_scale``, ``attempts``,
            ``peak_memory_bytes``, ``peak_memory_delta_bytes`` (see :class:`PeakMemory`),
            ``peak_memory_source`` and ``seconds``

        Raises
        ------
        OutOfDeviceMemory
            Both attempts ran out of memory.
        """
        plan = plan or self.plan()
        peak = PeakMemory(self.device)
        peak.start()
        started = time.perf_counter()
        result, used, attempts = self._attempt(job, plan)
        report: dict[str, object] = {
            "device": str(self.device),
            "dtype": str(used.dtype).removeprefix("torch."),
            "batch_size": used.batch_size,
            "resolution_scale": used.resolution_scale,
            "attempts": attempts,
            "peak_memory_bytes": peak.read(),
            "peak_memory_delta_bytes": peak.delta(),
            "peak_memory_source": peak.source,
            "seconds": round(time.perf_counter() - started, 4),
        }
        return result, report

    def _attempt(
        self, job: Callable[[DevicePlan], T], plan: DevicePlan
    ) -> tuple[T, DevicePlan, int]:
        """`job` under `plan`, then once under the shrunk plan after an OOM."""
        try:
            return job(plan), plan, 1
        except torch.OutOfMemoryError:
            # Freed only after the except block: until then the exception's traceback
            # pins the failed attempt's frames and their tensors.
            log.warning("out of memory on %s at batch %d; retrying smaller",
                        plan.device, plan.batch_size)
        release_cached_memory(self.device)
        smaller = plan.shrunk()
        try:
            return job(smaller), smaller, 2
        except torch.OutOfMemoryError as second:
            release_cached_memory(self.device)
            raise OutOfDeviceMemory(
                f"out of memory on {plan.device} even at batch {smaller.batch_size} and "
                f"{smaller.resolution_scale:g}x resolution: {second}"
            ) from None

    def between_jobs(self) -> None:
        """Hand memory freed by the last job back to the GPU; keep loaded pipelines.

        Nothing to do on CPU: freed tensors go straight back to the process's allocator, and
        a full garbage collection there would cost about 0.1 s per job for nothing.
        """
        if self.device.type == "cuda":
            release_cached_memory(self.device)
