"""The active check's workload: on every GPU, create a context, fill device memory, copy it back and
compare, through the CUDA driver API (``libcuda``, loaded with ctypes: no CUDA toolkit needed).

Problems that only show when a GPU runs work (the seed's GPURuntimeError: "busy", stuck, or failing
after an Xid) surface here as CUDA errors. :class:`Driver` is a seam: tests replace it with recorded
outcomes; :class:`CudaDriver` is the real one.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from kaip_incluster.nodechecks.result import Result, ok, problem, unknown

PATTERN = 0xA5
SIZE = 16 * 1024 * 1024


class DriverMissing(Exception):
    """libcuda cannot be loaded: no NVIDIA driver (or not mounted into the container)."""


class CudaFailure(Exception):
    """A CUDA driver call failed; the message names the call and the CUDA error."""


class Driver(Protocol):
    def device_count(self) -> int: ...

    def exercise(self, ordinal: int) -> None:
        """Run the workload on one GPU; raise CudaFailure when it fails."""


@dataclass(frozen=True)
class Outcome:
    ordinal: int
    error: str | None


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


def run(driver: Driver) -> list[Outcome]:
    outcomes = []
    for ordinal in range(driver.device_count()):
        try:
            driver.exercise(ordinal)
        except CudaFailure as exc:
            outcomes.append(Outcome(ordinal, str(exc)))
        else:
            outcomes.append(Outcome(ordinal, None))
    return outcomes


def decide(outcomes: Sequence[Outcome]) -> Result:
    if not outcomes:
        return unknown("CUDA reports no GPU on this node")
    failed = [o for o in outcomes if o.error]
    if failed:
        detail = "; ".join(f"GPU {o.ordinal}: {o.error}" for o in failed)
        return problem(f"workload failed on {len(failed)} of {len(outcomes)} GPUs: {detail}")
    return ok(f"workload passed on {len(outcomes)} GPUs")


def check(factory: Callable[[], Driver] = CudaDriver) -> Result:
    """Load the driver, run the workload, decide. CUDA that fails to initialise is a problem."""
    try:
        driver = factory()
        return decide(run(driver))
    except DriverMissing as exc:
        return unknown(str(exc))
    except CudaFailure as exc:
        return problem(f"CUDA failed before the workload: {exc}")
