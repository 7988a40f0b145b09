"""``python -m kaip_incluster.nodechecks CHECK [options]``: one check, one line, NPD's exit code."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kaip_incluster.nodechecks import decisions, host, nvidia_smi, workload
from kaip_incluster.nodechecks.result import Result, Status, unknown

CHECKS = ("GPUIsLost", "GPUPendingPage", "DStateProcess", "PCIeLinkDegraded", "GPURuntimeError")


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
    return p


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
        return decisions.pcie_link_degraded(_snapshot(runner), pci=host.nvidia_gpus(root))
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
    return workload.check(cuda)


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
