"""The nvidia-smi reader: a seam. Checks call :func:`query` through a ``Runner``; production runs the
real ``nvidia-smi``, tests replace the runner with recorded outputs (tests/fixtures/nodechecks/*/).

One query serves every passive GPU check::

    nvidia-smi --query-gpu=FIELDS --format=csv,noheader,nounits

A GPU that fell off the bus does not get a CSV line; nvidia-smi prints an error line for it instead
("Unable to determine the device handle for GPU 0000:07:00.0: GPU is lost. ...") and exits non-zero.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

FIELDS = (
    "index",
    "pci.bus_id",
    "uuid",
    "name",
    "retired_pages.pending",
    "remapped_rows.pending",
    "pcie.link.gen.current",
    "pcie.link.gen.max",
    "pcie.link.width.current",
    "pcie.link.width.max",
    "pstate",
    "compute_mode",
    "ecc.errors.uncorrected.volatile.total",
    "memory.used",
    "memory.total",
)
ARGS = (f"--query-gpu={','.join(FIELDS)}", "--format=csv,noheader,nounits")
#: The processes on each GPU (``nvidia-smi --help-query-compute-apps``): a GPU that has one is busy.
APPS_FIELDS = ("gpu_bus_id", "pid", "used_memory")
APPS_ARGS = (f"--query-compute-apps={','.join(APPS_FIELDS)}", "--format=csv,noheader,nounits")

_LOST = re.compile(
    r"GPU ([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])\b.*\bGPU is lost", re.IGNORECASE
)
_NOT_APPLICABLE = {"", "[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]"}


@dataclass(frozen=True)
class Output:
    """What one nvidia-smi run left behind (recorded as files in the fixtures)."""

    stdout: str
    stderr: str = ""
    returncode: int = 0


#: Runs nvidia-smi with these arguments; raises FileNotFoundError when it is not installed.
Runner = Callable[[Sequence[str]], Output]


@dataclass(frozen=True)
class Gpu:
    index: int
    bus_id: str
    uuid: str
    name: str
    retired_pages_pending: bool
    remapped_rows_pending: bool
    link_gen: int | None
    link_gen_max: int | None
    link_width: int | None
    link_width_max: int | None
    pstate: str | None = None  # "P0" (full performance) .. "P12"; links slow down above P0 to save power
    compute_mode: str | None = None  # "Default", "Exclusive_Process", "Prohibited"
    ecc_uncorrected_volatile: int | None = None  # double-bit errors since the driver loaded
    memory_used_mib: int | None = None
    memory_total_mib: int | None = None


@dataclass(frozen=True)
class Snapshot:
    gpus: tuple[Gpu, ...]
    lost: tuple[str, ...]  # PCI bus ids nvidia-smi reported as lost
    errors: tuple[str, ...]  # other lines it could not read


def normal_bus_id(bus_id: str) -> str:
    """``00000000:07:00.0`` and ``0000:07:00.0`` name the same device; compare in sysfs' form."""
    domain, _, rest = bus_id.strip().lower().partition(":")
    return f"{int(domain, 16):04x}:{rest}" if rest else bus_id.lower()


def _flag(value: str) -> bool:
    """``Yes``/``No`` on current drivers; some print a count of pending rows instead."""
    text = value.strip().lower()
    return int(text) > 0 if text.isdigit() else text in ("yes", "true", "pending")


def _number(value: str) -> int | None:
    value = value.strip()
    if value in _NOT_APPLICABLE:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def parse(out: Output) -> Snapshot:
    gpus: list[Gpu] = []
    lost: list[str] = []
    errors: list[str] = []
    for line in (out.stdout + "\n" + out.stderr).splitlines():
        if not line.strip():
            continue
        match = _LOST.search(line)
        if match:
            lost.append(normal_bus_id(match.group(1)))
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(FIELDS) or not cells[0].isdigit():
            errors.append(line.strip())
            continue
        gpus.append(
            Gpu(
                index=int(cells[0]),
                bus_id=normal_bus_id(cells[1]),
                uuid=cells[2],
                name=cells[3],
                retired_pages_pending=_flag(cells[4]),
                remapped_rows_pending=_flag(cells[5]),
                link_gen=_number(cells[6]),
                link_gen_max=_number(cells[7]),
                link_width=_number(cells[8]),
                link_width_max=_number(cells[9]),
                pstate=None if cells[10] in _NOT_APPLICABLE else cells[10],
                compute_mode=None if cells[11] in _NOT_APPLICABLE else cells[11],
                ecc_uncorrected_volatile=_number(cells[12]),
                memory_used_mib=_number(cells[13]),
                memory_total_mib=_number(cells[14]),
            )
        )
    return Snapshot(tuple(gpus), tuple(lost), tuple(errors))


def system_runner(command: str = "nvidia-smi", *, timeout: float = 15.0) -> Runner:
    """The production runner: the real nvidia-smi, with a timeout below NPD's."""

    def run(args: Sequence[str]) -> Output:
        done = subprocess.run([command, *args], capture_output=True, text=True, timeout=timeout, check=False)
        return Output(done.stdout, done.stderr, done.returncode)

    return run


def query(runner: Runner) -> Snapshot:
    return parse(runner(ARGS))


def parse_apps(out: Output) -> dict[str, list[int]]:
    """PIDs of the compute processes per GPU (bus id in sysfs' form); unreadable lines are skipped."""
    apps: dict[str, list[int]] = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(APPS_FIELDS) or not cells[1].isdigit() or ":" not in cells[0]:
            continue
        apps.setdefault(normal_bus_id(cells[0]), []).append(int(cells[1]))
    return apps


def query_apps(runner: Runner) -> dict[str, list[int]] | None:
    """Compute processes per GPU, or None when nvidia-smi cannot tell (not installed, failed, hung)."""
    try:
        out = runner(APPS_ARGS)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_apps(out) if out.returncode == 0 else None
