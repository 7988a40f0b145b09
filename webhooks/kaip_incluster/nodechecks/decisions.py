"""The checks' decisions: pure functions from what was read to a :class:`~.result.Result`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kaip_incluster.nodechecks.host import PciDevice, Process
from kaip_incluster.nodechecks.nvidia_smi import Snapshot
from kaip_incluster.nodechecks.result import Result, ok, problem, unknown


def gpu_is_lost(snapshot: Snapshot | None, *, pci: Sequence[PciDevice], expected: int | None) -> Result:
    """GPUs the driver sees against those the node should have (PCI bus, or the admin's count)."""
    if snapshot is None:
        return unknown("nvidia-smi cannot run on this node; is the NVIDIA driver installed?")
    if snapshot.lost:
        return problem(
            f"GPU {', '.join(snapshot.lost)} is lost (fallen off the bus); the node needs a reboot"
        )
    want = max(expected or 0, len(pci))
    seen = {g.bus_id for g in snapshot.gpus}
    if not seen and snapshot.errors:
        return unknown(f"nvidia-smi failed: {snapshot.errors[0]}")
    if want == 0:
        return unknown("no NVIDIA GPU on the PCI bus and no --expected-gpus; nothing to compare")
    if len(seen) < want:
        missing = [d.bus_id for d in pci if d.bus_id not in seen]
        where = f" (missing {', '.join(missing)})" if missing else ""
        return problem(f"the driver sees {len(seen)} of {want} GPUs{where}")
    return ok(f"the driver sees all {len(seen)} GPUs")


def gpu_pending_page(snapshot: Snapshot | None) -> Result:
    """Pages pending retirement (before Ampere) or rows pending remapping (Ampere and later)."""
    if snapshot is None:
        return unknown("nvidia-smi cannot run on this node; is the NVIDIA driver installed?")
    if not snapshot.gpus:
        first = snapshot.errors[0] if snapshot.errors else "no GPU listed"
        return unknown(f"nvidia-smi listed no GPU: {first}")
    found = []
    for gpu in snapshot.gpus:
        what = [
            w
            for w, flag in (
                ("pages pending retirement", gpu.retired_pages_pending),
                ("rows pending remapping", gpu.remapped_rows_pending),
            )
            if flag
        ]
        if what:
            found.append(f"GPU {gpu.index} ({gpu.bus_id}) has {' and '.join(what)}")
    if found:
        return problem("; ".join(found) + ": reset the GPU or reboot the node")
    return ok(f"no pending page retirement or row remapping on {len(snapshot.gpus)} GPUs")


def pcie_link_degraded(snapshot: Snapshot | None, *, pci: Sequence[PciDevice]) -> Result:
    """Link width below the maximum. A lower generation alone is normal at idle (power saving)."""
    links: dict[str, tuple[int, int, str]] = {}
    for dev in pci:
        if dev.link_width is not None and dev.link_width_max:
            gen = f"{dev.link_speed or '?'} of {dev.link_speed_max or '?'}"
            links[dev.bus_id] = (dev.link_width, dev.link_width_max, gen)
    for gpu in snapshot.gpus if snapshot else ():
        if gpu.link_width is not None and gpu.link_width_max and gpu.bus_id not in links:
            gen = f"gen {gpu.link_gen or '?'} of {gpu.link_gen_max or '?'}"
            links[gpu.bus_id] = (gpu.link_width, gpu.link_width_max, gen)
    if not links:
        return unknown("no PCIe link width readable for any NVIDIA GPU (sysfs or nvidia-smi)")
    degraded = [
        f"{bus} x{width} of x{widest} ({gen})"
        for bus, (width, widest, gen) in sorted(links.items())
        if width < widest
    ]
    if degraded:
        return problem(f"PCIe link degraded: {'; '.join(degraded)}; reseat or reboot")
    return ok(f"{len(links)} GPU PCIe links at full width")


def _key(proc: Process) -> str:
    return f"{proc.pid}:{proc.start_ticks}"


def d_state(
    procs: Sequence[Process], *, memory: Mapping[str, float], now: float, threshold: float
) -> tuple[Result, dict[str, float]]:
    """Processes in uninterruptible sleep for at least ``threshold`` seconds across runs.

    ``/proc`` does not say since when a process is in D state, so each run remembers when it first
    saw it (``memory``); a process that left D state is forgotten.
    """
    remembered = {_key(p): memory.get(_key(p), now) for p in procs if p.state == "D"}
    stuck = [p for p in procs if p.state == "D" and now - remembered[_key(p)] >= threshold]
    if not stuck:
        waiting = len(remembered)
        note = f" ({waiting} in D state for less than {threshold:g}s)" if waiting else ""
        return ok(f"no process in D state for {threshold:g}s or more{note}"), remembered
    oldest = max(now - remembered[_key(p)] for p in stuck)
    names = ", ".join(f"{p.pid} ({p.comm}{' in ' + p.wchan if p.wchan else ''})" for p in stuck[:5])
    more = f" and {len(stuck) - 5} more" if len(stuck) > 5 else ""
    return (
        problem(f"{len(stuck)} process(es) in D state for up to {oldest:.0f}s: {names}{more}"),
        remembered,
    )
