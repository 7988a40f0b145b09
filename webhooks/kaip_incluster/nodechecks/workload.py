"""The active check's workload: on every GPU, create a context, fill device memory, copy it back and
compare, through the CUDA driver API (``libcuda``, loaded with ctypes: no CUDA toolkit needed).

Problems that only show when a GPU runs work (the seed's GPURuntimeError: "busy", stuck, or failing
after an Xid) surface here as CUDA errors. :class:`Driver` is a seam: tests replace it with recorded
outcomes; :class:`CudaDriver` is the real one.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from kaip_incluster.nodechecks.nvidia_smi import Gpu, normal_bus_id
from kaip_incluster.nodechecks.result import Result, ok, problem, unknown

PATTERN = 0xA5
SIZE = 16 * 1024 * 1024


class DriverMissing(Exception):
    """libcuda cannot be loaded: no NVIDIA driver (or not mounted into the container)."""


class CudaFailure(Exception):
    """A CUDA driver call failed; the message names the call and the CUDA error."""


class Driver(Protocol):
    def device_count(self) -> int: ...

    def bus_id(self, ordinal: int) -> str:
        """The GPU's PCI bus id (``0000:07:00.0``), to match it with nvidia-smi and the kubelet."""

    def exercise(self, ordinal: int) -> None:
        """Run the workload on one GPU; raise CudaFailure when it fails."""


#: CUDA errors a healthy GPU gives when someone else uses it (memory taken, exclusive-process mode).
BUSY_ERRORS = ("CUDA_ERROR_OUT_OF_MEMORY", "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA_ERROR_DEVICE_BUSY")
#: Free device memory the workload needs, in MiB (its 16 MiB, a context's overhead and a margin).
NEEDED_MIB = 512


@dataclass(frozen=True)
class Outcome:
    ordinal: int
    error: str | None
    bus_id: str = ""
    skipped: str | None = None  # why the GPU was not probed (held by a Pod, busy, memory full)


class CudaDriver:
    """The CUDA driver API through ctypes."""

    def __init__(self, library: str = "libcuda.so.1") -> None:
        try:
            self._cuda = ctypes.CDLL(library)
        except OSError as exc:
            raise DriverMissing(f"{library} cannot be loaded ({exc})") from exc
        self._call("cuInit", ctypes.c_uint(0))

    def _error_name(self, code: int) -> str:
        name = ctypes.c_char_p()
        if self._cuda.cuGetErrorName(code, ctypes.byref(name)) == 0 and name.value:
            return name.value.decode()
        return f"CUDA error {code}"

    def _call(self, function: str, *args: object) -> None:
        code = getattr(self._cuda, function)(*args)
        if code != 0:
            raise CudaFailure(f"{function}: {self._error_name(code)}")

    def device_count(self) -> int:
        count = ctypes.c_int()
        self._call("cuDeviceGetCount", ctypes.byref(count))
        return count.value

    def bus_id(self, ordinal: int) -> str:
        device, text = ctypes.c_int(), ctypes.create_string_buffer(32)
        self._call("cuDeviceGet", ctypes.byref(device), ordinal)
        self._call("cuDeviceGetPCIBusId", text, 32, device)
        return normal_bus_id(text.value.decode())

    def exercise(self, ordinal: int) -> None:
        device, context, pointer = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
        self._call("cuDeviceGet", ctypes.byref(device), ordinal)
        self._call("cuCtxCreate_v2", ctypes.byref(context), 0, device)
        try:
            self._call("cuMemAlloc_v2", ctypes.byref(pointer), ctypes.c_size_t(SIZE))
            try:
                self._call("cuMemsetD8_v2", pointer, ctypes.c_ubyte(PATTERN), ctypes.c_size_t(SIZE))
                host = (ctypes.c_ubyte * SIZE)()
                self._call("cuMemcpyDtoH_v2", host, pointer, ctypes.c_size_t(SIZE))
                if bytes(host) != bytes([PATTERN]) * SIZE:
                    raise CudaFailure("device memory read back differs from what was written")
            finally:
                self._cuda.cuMemFree_v2(pointer)
        finally:
            self._cuda.cuCtxDestroy_v2(context)


def reasons_to_skip(
    gpus: Sequence[Gpu] | None, apps: Mapping[str, Sequence[int]] | None, allocated: Mapping[str, str] | None
) -> dict[str, str]:
    """Bus id -> why this GPU must not be probed: a Pod holds it (kubelet checkpoint), processes run on
    it (nvidia-smi compute apps), its memory is full, or its compute mode forbids a context."""
    skip: dict[str, str] = {}
    for gpu in gpus or ():
        if allocated and gpu.uuid in allocated:
            skip[gpu.bus_id] = "held by a Pod"
        elif apps and apps.get(gpu.bus_id):
            mode = " in exclusive mode" if gpu.compute_mode == "Exclusive_Process" else ""
            skip[gpu.bus_id] = f"busy{mode}"
        elif gpu.compute_mode == "Prohibited":
            skip[gpu.bus_id] = "compute mode Prohibited"
        elif (
            gpu.memory_total_mib is not None
            and gpu.memory_used_mib is not None
            and gpu.memory_total_mib - gpu.memory_used_mib < NEEDED_MIB
        ):
            skip[gpu.bus_id] = "memory full"
    return skip


def run(
    driver: Driver,
    skip: Mapping[str, str] | None = None,
    *,
    busy_now: Callable[[str], str | None] = lambda bus_id: None,
) -> list[Outcome]:
    """Probe every GPU not in ``skip``. A busy-type CUDA error counts as "busy" when ``busy_now`` (a
    second look, after the probe) finds the GPU taken meanwhile; on an idle GPU it is a fault."""
    outcomes = []
    for ordinal in range(driver.device_count()):
        bus = driver.bus_id(ordinal) if skip is not None else ""
        if skip and bus in skip:
            outcomes.append(Outcome(ordinal, None, bus, skip[bus]))
            continue
        try:
            driver.exercise(ordinal)
        except CudaFailure as exc:
            why = busy_now(bus) if any(name in str(exc) for name in BUSY_ERRORS) else None
            outcomes.append(Outcome(ordinal, None if why else str(exc), bus, why))
        else:
            outcomes.append(Outcome(ordinal, None, bus))
    return outcomes


def decide(outcomes: Sequence[Outcome]) -> Result:
    if not outcomes:
        return unknown("CUDA reports no GPU on this node")
    skipped = [o for o in outcomes if o.skipped]
    probed = [o for o in outcomes if not o.skipped]
    counts: dict[str, int] = {}
    for o in skipped:
        counts[o.skipped or ""] = counts.get(o.skipped or "", 0) + 1
    note = (
        f"; {len(skipped)} not probed ({', '.join(f'{n} {w}' for w, n in counts.items())})" if skipped else ""
    )
    failed = [o for o in probed if o.error]
    if failed:
        detail = "; ".join(
            f"GPU {o.ordinal}{f' ({o.bus_id})' if o.bus_id else ''}: {o.error}" for o in failed
        )
        return problem(f"workload failed on {len(failed)} of {len(probed)} idle GPUs: {detail}{note}")
    if not probed:
        return ok(f"no idle GPU to probe{note}")
    return ok(f"workload passed on {len(probed)} GPUs{note}")


def check(
    factory: Callable[[], Driver] = CudaDriver,
    skip: Mapping[str, str] | None = None,
    *,
    busy_now: Callable[[str], str | None] = lambda bus_id: None,
) -> Result:
    """Load the driver, run the workload on the GPUs not in ``skip``, decide. CUDA that fails to
    initialise is a problem."""
    try:
        driver = factory()
        return decide(run(driver, skip, busy_now=busy_now))
    except DriverMissing as exc:
        return unknown(str(exc))
    except CudaFailure as exc:
        return problem(f"CUDA failed before the workload: {exc}")
