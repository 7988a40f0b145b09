"""``python -m kaip_incluster.nodechecks CHECK [options]``: one check, one line, NPD's exit code."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kaip_incluster.nodechecks import decisions, host, kubelet, network, nfs, nvidia_smi, workload
from kaip_incluster.nodechecks.result import Result, Status, unknown

CHECKS = (
    "GPUIsLost",
    "GPUPendingPage",
    "DStateProcess",
    "PCIeLinkDegraded",
    "GPURuntimeError",
    "GPUCountMismatch",
    "GPUUncorrectableError",
    "NetworkLinkDown",
    "NetworkLinkFlapping",
    "NetworkInterfaceMissing",
    "NetworkTransceiverError",
    "NFSMountHung",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kaip_incluster.nodechecks",
        description="node-problem-detector custom plugin checks: exit 0 OK, 1 problem, 2 unknown.",
    )
    p.add_argument("check", choices=CHECKS)
    p.add_argument("--root", default="/", type=Path, help="where the host's /proc and /sys are (default /)")
    p.add_argument("--nvidia-smi", default="nvidia-smi", help="the nvidia-smi executable")
    p.add_argument("--expected-gpus", type=int, help="GPUs this node should have (default: those on PCI)")
    p.add_argument("--threshold", type=float, default=300.0, help="DStateProcess: seconds in D state")
    p.add_argument(
        "--state-dir",
        default="/var/lib/kaip-nodechecks",
        type=Path,
        help="DStateProcess: where to remember when processes entered D state",
    )
    p.add_argument(
        "--pcie-speed-at-idle",
        action="store_true",
        help="PCIeLinkDegraded: judge link speed on idle GPUs too (PCIe power management off)",
    )
    p.add_argument(
        "--expected-gpus-file",
        type=Path,
        help="GPUCountMismatch: JSON object of GPU product name (as nvidia-smi names it) -> count",
    )
    p.add_argument(
        "--xid",
        type=int,
        action="append",
        help="GPUUncorrectableError: an Xid that is a problem (repeat; default: host.SERIOUS_XIDS)",
    )
    p.add_argument(
        "--interface", action="append", default=[], help="network checks: a netdev to watch (repeat)"
    )
    p.add_argument(
        "--rdma", action="append", default=[], help="network checks: an RDMA device[:port] to watch (repeat)"
    )
    p.add_argument("--window", type=float, default=3600.0, help="flaps/errors: seconds to count over")
    p.add_argument(
        "--max-flaps", type=int, default=3, help="NetworkLinkFlapping: flaps allowed in the window"
    )
    p.add_argument("--max-errors", type=int, default=100, help="NetworkTransceiverError: errors allowed")
    p.add_argument(
        "--nfs-path-prefix",
        action="append",
        default=[],
        help="NFSMountHung: watch NFS mounts under this host path (repeat; default /var/lib/kubelet/pods)",
    )
    p.add_argument("--nfs-timeout", type=float, default=5.0, help="NFSMountHung: seconds for all probes")
    return p


def _windowed(
    args: argparse.Namespace,
    name: str,
    decide: Callable[..., tuple[Result, dict[str, list[list[float]]]]],
    now: float,
    limit: int,
) -> Result:
    """A network check that counts over a window, with its samples kept in ``--state-dir``."""
    links = network.links(args.root, args.interface, args.rdma)
    memory_file = args.state_dir / name
    memory = {k: v for k, v in host.load_json(memory_file).items() if isinstance(v, list)}
    result, kept = decide(links, memory=memory, now=now, window=args.window, limit=limit)
    try:
        host.save_json(memory_file, kept)
    except OSError as exc:
        return unknown(f"cannot write {memory_file} ({exc.strerror}); {result.message}")
    return result


def _gpu_runtime(
    args: argparse.Namespace, runner: nvidia_smi.Runner, cuda: Callable[[], workload.Driver]
) -> Result:
    """The active check on the GPUs no Pod holds and no process uses (see :mod:`.workload`)."""
    snapshot = _snapshot(runner)
    gpus = snapshot.gpus if snapshot and snapshot.gpus else None
    checkpoint = kubelet.read_checkpoint(args.root)
    skip = workload.reasons_to_skip(
        gpus, nvidia_smi.query_apps(runner), checkpoint.allocated if checkpoint else None
    )

    def busy_now(bus_id: str) -> str | None:
        apps = nvidia_smi.query_apps(runner)
        if apps is None:
            return "busy-type error, nvidia-smi unavailable to tell"
        return "busy" if apps.get(bus_id) else None

    return workload.check(cuda, skip, busy_now=busy_now)


def _snapshot(runner: nvidia_smi.Runner) -> nvidia_smi.Snapshot | None:
    """What nvidia-smi says, or None when it cannot run (not installed, not executable, hung)."""
    try:
        return nvidia_smi.query(runner)
    except (OSError, subprocess.SubprocessError):
        return None


def evaluate(
    args: argparse.Namespace,
    *,
    runner: nvidia_smi.Runner,
    clock: Callable[[], float] = time.time,
    cuda: Callable[[], workload.Driver] = workload.CudaDriver,
) -> Result:
    root: Path = args.root
    if args.check == "GPUIsLost":
        return decisions.gpu_is_lost(
            _snapshot(runner), pci=host.nvidia_gpus(root), expected=args.expected_gpus
        )
    if args.check == "GPUPendingPage":
        return decisions.gpu_pending_page(_snapshot(runner))
    if args.check == "PCIeLinkDegraded":
        return decisions.pcie_link_degraded(
            _snapshot(runner), pci=host.nvidia_gpus(root), speed_at_idle=args.pcie_speed_at_idle
        )
    if args.check == "DStateProcess":
        memory_file = args.state_dir / "dstate.json"
        result, memory = decisions.d_state(
            host.processes(root), memory=host.load_memory(memory_file), now=clock(), threshold=args.threshold
        )
        try:
            host.save_memory(memory_file, memory)
        except OSError as exc:
            return unknown(f"cannot write {memory_file} ({exc.strerror}); {result.message}")
        return result
    if args.check == "GPURuntimeError":
        return _gpu_runtime(args, runner, cuda)
    if args.check == "GPUCountMismatch":
        checkpoint = kubelet.read_checkpoint(args.root)
        # whole GPUs only: with MIG the plugin offers MIG devices, which are not compared
        ids = checkpoint.registered.get("nvidia.com/gpu") if checkpoint else None
        mig = ids is None or any(i.startswith("MIG-") for i in ids)
        plugin = None if mig else len({i for i in ids or () if i.startswith("GPU-")})
        return decisions.gpu_count_mismatch(
            _snapshot(runner),
            pci=host.nvidia_gpus(root),
            plugin=plugin,
            expected=args.expected_gpus,
            expected_by_product=host.expected_by_product(args.expected_gpus_file),
        )
    if args.check == "GPUUncorrectableError":
        lines = host.kernel_log(root)
        serious = frozenset(args.xid) if args.xid else host.SERIOUS_XIDS
        xids = host.xid_events(lines, serious) if lines is not None else None
        return decisions.gpu_uncorrectable_error(_snapshot(runner), xids=xids)
    if args.check == "NetworkLinkDown":
        return decisions.network_link_down(network.links(root, args.interface, args.rdma))
    if args.check == "NetworkInterfaceMissing":
        return decisions.network_interface_missing(network.links(root, args.interface, args.rdma))
    if args.check == "NetworkLinkFlapping":
        return _windowed(args, "netflaps.json", decisions.network_link_flapping, clock(), args.max_flaps)
    if args.check == "NetworkTransceiverError":
        return _windowed(
            args, "neterrors.json", decisions.network_transceiver_error, clock(), args.max_errors
        )
    prefixes = args.nfs_path_prefix or ["/var/lib/kubelet/pods"]
    mounts = nfs.nfs_mounts(root, prefixes)
    probes = nfs.probe(root, mounts, timeout=args.nfs_timeout) if mounts is not None else None
    return decisions.nfs_mount_hung(probes, timeout=args.nfs_timeout)


def main(
    argv: Sequence[str] | None = None,
    *,
    runner: nvidia_smi.Runner | None = None,
    clock: Callable[[], float] = time.time,
    cuda: Callable[[], workload.Driver] = workload.CudaDriver,
) -> int:
    """Print the check's one line and return its exit code (argument errors exit 2: Unknown)."""
    args = parser().parse_args(argv)
    try:
        result = evaluate(
            args, runner=runner or nvidia_smi.system_runner(args.nvidia_smi), clock=clock, cuda=cuda
        )
    except Exception as exc:  # a crashing check must read as Unknown, in one line
        result = unknown(f"{args.check} check failed: {type(exc).__name__}: {exc}")
    print(result.line())
    return int(result.status if result.status in Status else Status.UNKNOWN)


if __name__ == "__main__":
    sys.exit(main())
