"""Reading the host's ``/proc`` and ``/sys`` under a root directory (``/host`` in the DaemonSet, a
recorded fixture tree in tests). Thin: files in, plain records out; missing files read as absent."""

from __future__ import annotations

import json
import os
import re
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
class Mount:
    """An NFS mount of the host's mount table (:mod:`.nfs` probes it)."""

    source: str  # "filer:/export/datasets"
    point: str  # "/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~nfs/data"
    fstype: str


@dataclass(frozen=True)
class Probe:
    mount: Mount
    outcome: str  # "ok", "hung", "stale", or "error: <strerror>"


@dataclass(frozen=True)
class Process:
    pid: int
    comm: str
    state: str
    start_ticks: int  # field 22 of stat: tells a reused pid from the process seen before
    wchan: str


def read_text(path: Path) -> str | None:
    """A sysfs or procfs file's text, stripped; ``None`` when it cannot be read."""
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def to_int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def nvidia_gpus(root: Path) -> list[PciDevice]:
    """NVIDIA GPUs on the PCI bus, with their link state, sorted by bus id."""
    found = []
    base = root / "sys" / "bus" / "pci" / "devices"
    for dev in sorted(base.iterdir()) if base.is_dir() else ():
        if read_text(dev / "vendor") != NVIDIA_VENDOR:
            continue
        if not (read_text(dev / "class") or "").startswith(GPU_CLASSES):
            continue
        found.append(
            PciDevice(
                bus_id=dev.name.lower(),
                link_speed=read_text(dev / "current_link_speed"),
                link_speed_max=read_text(dev / "max_link_speed"),
                link_width=to_int(read_text(dev / "current_link_width")),
                link_width_max=to_int(read_text(dev / "max_link_width")),
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
        stat = read_text(entry / "stat")
        if not stat or ")" not in stat:
            continue
        head, _, tail = stat.rpartition(")")
        fields = tail.split()
        if len(fields) < 20:
            continue
        wchan = read_text(entry / "wchan") or ""
        out.append(
            Process(
                pid=int(entry.name),
                comm=head.partition("(")[2],
                state=fields[0],
                start_ticks=to_int(fields[19]) or 0,
                wchan="" if wchan == "0" else wchan,
            )
        )
    return sorted(out, key=lambda p: p.pid)


def load_memory(path: Path) -> dict[str, float]:
    """When each D-state process was first seen (``"pid:start_ticks" -> epoch seconds``)."""
    text = read_text(path)
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


#: Xid events that mean the GPU or node needs attention (NVIDIA's Xid catalogue: 48 double-bit ECC,
#: 62/119/120 GSP or internal errors, 63/64 row remapping, 74 NVLink, 79 fallen off the bus, 92 high
#: single-bit rate, 94/95 contained/uncontained ECC, 140 unrecovered ECC). Application faults
#: (13, 31, 43, 45) are left out: a user's bug is not a broken node.
SERIOUS_XIDS = frozenset({48, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140})
_XID = re.compile(r"NVRM: Xid \(PCI:([0-9A-Fa-f:.]+)\): (\d+),?\s*(?:pid=[^,]*,\s*)?(?:name=[^,]*,\s*)?(.*)")


def kernel_log(root: Path, *, limit: int = 200_000) -> list[str] | None:
    """The messages of ``root/dev/kmsg`` (the kernel's ring buffer, one record per read, never
    blocking: opened non-blocking, read until it says EAGAIN); a regular file in the fixtures.
    None when it cannot be opened (needs CAP_SYSLOG where ``dmesg_restrict`` is set)."""
    try:
        fd = os.open(root / "dev" / "kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    chunks: list[bytes] = []
    try:
        for _ in range(limit):
            try:
                chunk = os.read(fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:  # records overwritten while reading: go on with the next
                continue
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    # "<prio>,<seq>,<usec>,<flags>;message" (continuation lines start with a space)
    return [line.split(";", 1)[1] if ";" in line.split(" ", 1)[0] else line for line in lines if line.strip()]


def xid_events(lines: list[str], serious: frozenset[int] = SERIOUS_XIDS) -> list[tuple[str, int, str]]:
    """``(bus id, xid, text)`` of the serious Xid events; ``PCI:0000:07:00`` reads as ``0000:07:00.0``."""
    out = []
    for line in lines:
        match = _XID.search(line)
        if not match or int(match.group(2)) not in serious:
            continue
        bus = match.group(1).lower()
        if bus.count(":") == 2 and "." not in bus:
            bus += ".0"
        out.append((bus, int(match.group(2)), match.group(3).strip()[:60]))
    return out


def expected_by_product(path: Path | None) -> dict[str, int]:
    """``{"NVIDIA A100-SXM4-80GB": 8, ...}`` from the ConfigMap's JSON file; empty when absent."""
    text = read_text(path) if path else None
    if not text:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: want a JSON object of GPU product name -> count")
    return {str(k): int(v) for k, v in data.items()}


def load_json(path: Path) -> dict[str, object]:
    """A check's memory across runs (a JSON object); empty when absent or unreadable."""
    text = read_text(path)
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def save_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    tmp.replace(path)
