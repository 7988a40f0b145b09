"""The checks' decisions: pure functions from what was read to a :class:`~.result.Result`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kaip_incluster.nodechecks.host import PciDevice, Probe, Process
from kaip_incluster.nodechecks.network import Link
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


def _gts(speed: str | None) -> float | None:
    """``"16.0 GT/s PCIe"`` -> 16.0 (sysfs' form; ``Unknown`` and absent read as None)."""
    try:
        return float((speed or "").split()[0])
    except (ValueError, IndexError):
        return None


def pcie_link_degraded(
    snapshot: Snapshot | None, *, pci: Sequence[PciDevice], speed_at_idle: bool = False
) -> Result:
    """Link width below the maximum, or link speed below the maximum while the GPU runs at full
    performance (``P0``). An idle GPU lowers its link speed to save power (2.5 GT/s at ``P8``): that
    is not judged unless ``speed_at_idle`` (nodes with PCIe power management off)."""
    pstate = {g.bus_id: g.pstate for g in snapshot.gpus} if snapshot else {}
    links: dict[str, tuple[int, int, str]] = {}
    slow: list[str] = []
    for dev in pci:
        if dev.link_width is not None and dev.link_width_max:
            gen = f"{dev.link_speed or '?'} of {dev.link_speed_max or '?'}"
            links[dev.bus_id] = (dev.link_width, dev.link_width_max, gen)
        now, top = _gts(dev.link_speed), _gts(dev.link_speed_max)
        state = pstate.get(dev.bus_id)
        if now is not None and top and now < top and (speed_at_idle or state == "P0"):
            at = f" at {state}" if state else ""
            slow.append(f"{dev.bus_id} speed {now:g} of {top:g} GT/s{at}")
    for gpu in snapshot.gpus if snapshot else ():
        if gpu.link_width is not None and gpu.link_width_max and gpu.bus_id not in links:
            gen = f"gen {gpu.link_gen or '?'} of {gpu.link_gen_max or '?'}"
            links[gpu.bus_id] = (gpu.link_width, gpu.link_width_max, gen)
            if (
                gpu.link_gen is not None
                and gpu.link_gen_max
                and gpu.link_gen < gpu.link_gen_max
                and (speed_at_idle or gpu.pstate == "P0")
            ):
                slow.append(f"{gpu.bus_id} speed gen {gpu.link_gen} of gen {gpu.link_gen_max}")
    if not links:
        return unknown("no PCIe link width readable for any NVIDIA GPU (sysfs or nvidia-smi)")
    degraded = [
        f"{bus} x{width} of x{widest} ({gen})"
        for bus, (width, widest, gen) in sorted(links.items())
        if width < widest
    ]
    if degraded or slow:
        return problem(f"PCIe link degraded: {'; '.join(degraded + slow)}; reseat or reboot")
    return ok(f"{len(links)} GPU PCIe links at full width and speed")


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


def gpu_count_mismatch(
    snapshot: Snapshot | None,
    *,
    pci: Sequence[PciDevice],
    plugin: int | None,
    expected: int | None,
    expected_by_product: Mapping[str, int],
) -> Result:
    """The GPUs each layer sees, side by side: the node's expected count (``--expected-gpus``, or the
    product's count from the ConfigMap), the PCI bus, the driver, the device plugin (its healthy,
    registered devices: what the node offers as allocatable). Any disagreement is a problem."""
    counts: dict[str, int] = {"PCI": len(pci)}
    product = snapshot.gpus[0].name if snapshot and snapshot.gpus else None
    if expected is None and product is not None:
        expected = expected_by_product.get(product)
    if expected is not None:
        counts["expected"] = expected
    if snapshot is not None and (snapshot.gpus or not snapshot.errors):
        counts["driver"] = len(snapshot.gpus)
    if plugin is not None:
        counts["device plugin"] = plugin
    if len(counts) == 1 and not pci:
        return unknown("no NVIDIA GPU on the PCI bus, no driver and no expected count; nothing to compare")
    text = ", ".join(f"{layer} {n}" for layer, n in counts.items())
    what = f" ({product})" if product else ""
    if len(set(counts.values())) > 1:
        return problem(f"GPU counts disagree{what}: {text}")
    return ok(f"GPU counts agree{what}: {text}")


def gpu_uncorrectable_error(
    snapshot: Snapshot | None, *, xids: Sequence[tuple[str, int, str]] | None
) -> Result:
    """Volatile uncorrectable (double-bit) ECC errors from the driver's counters, and Xid events of
    ``xids`` (``(bus id, xid, text)`` from the kernel log, already filtered to the serious ones)."""
    found: list[str] = []
    for gpu in snapshot.gpus if snapshot else ():
        if gpu.ecc_uncorrected_volatile:
            found.append(
                f"GPU {gpu.index} ({gpu.bus_id}) {gpu.ecc_uncorrected_volatile} double-bit ECC errors"
            )
    seen: set[tuple[str, int]] = set()
    for bus, xid, text in xids or ():
        if (bus, xid) not in seen:
            seen.add((bus, xid))
            found.append(f"Xid {xid} on {bus}{': ' + text if text else ''}")
    if found:
        return problem("; ".join(found))
    if snapshot is None and xids is None:
        return unknown("neither nvidia-smi nor the kernel log can be read on this node")
    parts = []
    if snapshot is not None:
        parts.append(f"no double-bit ECC error on {len(snapshot.gpus)} GPUs")
    parts.append("no serious Xid in the kernel log" if xids is not None else "kernel log unreadable")
    return ok("; ".join(parts))


def network_link_down(links: Sequence[Link]) -> Result:
    """A configured link that is present and not up (a missing one is NetworkInterfaceMissing's)."""
    if not links:
        return unknown("no interface configured to watch (--interface, --rdma)")
    present = [lk for lk in links if lk.present]
    down = [f"{lk.name} ({lk.state})" for lk in present if not lk.up]
    if down:
        return problem(f"link down: {', '.join(down)}")
    return ok(f"{len(present)} watched links up")


def network_interface_missing(links: Sequence[Link]) -> Result:
    if not links:
        return unknown("no interface configured to watch (--interface, --rdma)")
    missing = [lk.name for lk in links if not lk.present]
    if missing:
        return problem(
            f"expected interface not recognised: {', '.join(missing)}; check the NIC and its driver"
        )
    return ok(f"all {len(links)} expected links present")


def counter_in_window(
    links: Sequence[Link],
    counter: Mapping[str, int | None],
    *,
    memory: Mapping[str, list[list[float]]],
    now: float,
    window: float,
) -> tuple[dict[str, int], dict[str, list[list[float]]]]:
    """How much each link's counter grew within ``window`` seconds, from samples kept across runs
    (``memory``: link -> ``[[time, value], ...]``). A counter that went down (driver reloaded, node
    rebooted) starts over. Links without the counter are left out."""
    grew: dict[str, int] = {}
    kept: dict[str, list[list[float]]] = {}
    for lk in links:
        value = counter.get(lk.name)
        if value is None:
            continue
        samples = [s for s in memory.get(lk.name, []) if now - s[0] <= window and s[1] <= value]
        samples.append([now, float(value)])
        kept[lk.name] = samples
        grew[lk.name] = int(value - min(s[1] for s in samples))
    return grew, kept


def network_link_flapping(
    links: Sequence[Link], *, memory: Mapping[str, list[list[float]]], now: float, window: float, limit: int
) -> tuple[Result, dict[str, list[list[float]]]]:
    """More than ``limit`` flaps (carrier lost and back, or an RDMA port's ``link_downed``) within
    ``window`` seconds."""
    grew, kept = counter_in_window(
        links, {lk.name: lk.flaps for lk in links if lk.present}, memory=memory, now=now, window=window
    )
    if not grew:
        return unknown("no flap counter readable on any watched link"), kept
    bad = [f"{name} {n} times" for name, n in sorted(grew.items()) if n > limit]
    if bad:
        return problem(f"link flapped more than {limit} times in {window:g}s: {', '.join(bad)}"), kept
    return ok(f"{len(grew)} watched links stable ({limit} flaps or fewer in {window:g}s)"), kept


def network_transceiver_error(
    links: Sequence[Link], *, memory: Mapping[str, list[list[float]]], now: float, window: float, limit: int
) -> tuple[Result, dict[str, list[list[float]]]]:
    """Physical-layer receive errors (Ethernet CRC/frame errors, RDMA symbol errors: a failing
    transceiver, AOC or cable) growing by more than ``limit`` within ``window`` seconds."""
    grew, kept = counter_in_window(
        links, {lk.name: lk.errors for lk in links if lk.present}, memory=memory, now=now, window=window
    )
    if not grew:
        return unknown("the kernel exposes no error counter for the watched links"), kept
    bad = [f"{name} +{n}" for name, n in sorted(grew.items()) if n > limit]
    if bad:
        return (
            problem(
                f"physical-layer errors (transceiver/cable) above {limit} in {window:g}s: {', '.join(bad)}"
            ),
            kept,
        )
    return ok(f"no transceiver errors above {limit} in {window:g}s on {len(grew)} links"), kept


def nfs_mount_hung(probes: Sequence[Probe] | None, *, timeout: float) -> Result:
    """An NFS mount the workloads use that does not answer ``statvfs`` within ``timeout`` (hung) or
    answers ``ESTALE`` (stale)."""
    if probes is None:
        return unknown("no mount table readable (/proc/1/mounts, /proc/mounts)")
    bad = [
        f"{p.mount.point} ({p.mount.source}) {p.outcome}" for p in probes if p.outcome in ("hung", "stale")
    ]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        return problem(
            f"{len(bad)} NFS mount(s) hung or stale (timeout {timeout:g}s): {'; '.join(bad[:3])}{more}"
        )
    # an error other than ESTALE (the mount point not visible here, permissions) says nothing of NFS
    odd = [f"{p.mount.point} {p.outcome}" for p in probes if p.outcome != "ok"]
    if odd:
        return unknown(f"cannot probe {len(odd)} NFS mount(s): {'; '.join(odd[:3])}")
    return ok(f"{len(probes)} NFS mounts answer")
