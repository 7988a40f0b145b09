"""Reading the host's ``/proc`` and ``/sys`` under a root directory (``/host`` in the DaemonSet, a
recorded fixture tree in tests). Thin: files in, plain records out; missing files read as absent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

NVIDIA_VENDOR = "0x10de"
#: PCI classes of GPUs: VGA controller (0x0300xx) and 3D controller (0x0302xx); NVSwitches are 0x0680.
GPU_CLASSES = ("0x0300", "0x0302")


@dataclass(frozen=True)
class PciDevice:
    bus_id: str
    link_speed: str | None  # "16.0 GT/s PCIe"
    link_speed_max: str | None
    link_width: int | None
    link_width_max: int | None


@dataclass(frozen=True)
class Process:
    pid: int
    comm: str
    state: str
    start_ticks: int  # field 22 of stat: tells a reused pid from the process seen before
    wchan: str


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def nvidia_gpus(root: Path) -> list[PciDevice]:
    """NVIDIA GPUs on the PCI bus, with their link state, sorted by bus id."""
    found = []
    base = root / "sys" / "bus" / "pci" / "devices"
    for dev in sorted(base.iterdir()) if base.is_dir() else ():
        if _read(dev / "vendor") != NVIDIA_VENDOR:
            continue
        if not (_read(dev / "class") or "").startswith(GPU_CLASSES):
            continue
        found.append(
            PciDevice(
                bus_id=dev.name.lower(),
                link_speed=_read(dev / "current_link_speed"),
                link_speed_max=_read(dev / "max_link_speed"),
                link_width=_int(_read(dev / "current_link_width")),
                link_width_max=_int(_read(dev / "max_link_width")),
            )
        )
    return found


def processes(root: Path) -> list[Process]:
    """Every process of ``root/proc`` that could be read (processes exit while we look)."""
    out = []
    proc = root / "proc"
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        if not stat or ")" not in stat:
            continue
        head, _, tail = stat.rpartition(")")
        fields = tail.split()
        if len(fields) < 20:
            continue
        wchan = _read(entry / "wchan") or ""
        out.append(
            Process(
                pid=int(entry.name),
                comm=head.partition("(")[2],
                state=fields[0],
                start_ticks=_int(fields[19]) or 0,
                wchan="" if wchan == "0" else wchan,
            )
        )
    return sorted(out, key=lambda p: p.pid)


def load_memory(path: Path) -> dict[str, float]:
    """When each D-state process was first seen (``"pid:start_ticks" -> epoch seconds``)."""
    text = _read(path)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save_memory(path: Path, memory: dict[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(memory, sort_keys=True))
    tmp.replace(path)
