"""The node checks against recorded /proc, /sys and nvidia-smi trees: exit code and one-line message
exactly as node-problem-detector reads them (0 OK, 1 problem, 2 unknown)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from kaip_incluster.nodechecks import __main__ as entry
from kaip_incluster.nodechecks import nvidia_smi, workload
from kaip_incluster.nodechecks.result import Status

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nodechecks"


def recorded(case: str) -> nvidia_smi.Runner:
    """The seam replaced: nvidia-smi answers what was recorded for ``case``."""
    folder = FIXTURES / case

    def run(args: Sequence[str]) -> nvidia_smi.Output:
        stdout = folder / "nvidia-smi.stdout"
        if list(args) == list(nvidia_smi.APPS_ARGS):
            if not stdout.exists():
                raise FileNotFoundError("nvidia-smi")
            apps = folder / "nvidia-smi-apps.stdout"
            return nvidia_smi.Output(apps.read_text() if apps.exists() else "")
        assert list(args) == list(nvidia_smi.ARGS)
        if not stdout.exists():
            raise FileNotFoundError("nvidia-smi")
        stderr = folder / "nvidia-smi.stderr"
        code = folder / "nvidia-smi.returncode"
        return nvidia_smi.Output(
            stdout.read_text(),
            stderr.read_text() if stderr.exists() else "",
            int(code.read_text()) if code.exists() else 0,
        )

    return run


def check(
    capsys: pytest.CaptureFixture[str], case: str, name: str, *extra: str, tmp: Path, now: float = 1000.0
) -> tuple[int, str]:
    argv = [name, "--root", str(FIXTURES / case), "--state-dir", str(tmp), *extra]
    code = entry.main(argv, runner=recorded(case), clock=lambda: now)
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "one line of message"
    return code, out.strip()


CASES = [
    ("healthy-a100", "GPUIsLost", (), Status.OK, "the driver sees all 8 GPUs"),
    (
        "gpu-lost-a100",
        "GPUIsLost",
        (),
        Status.PROBLEM,
        "GPU 0000:47:00.0 is lost (fallen off the bus); the node needs a reboot",
    ),
    (
        "gpu-missing-v100",
        "GPUIsLost",
        ("--expected-gpus", "8"),
        Status.PROBLEM,
        "the driver sees 7 of 8 GPUs",
    ),
    ("gpu-missing-v100", "GPUIsLost", (), Status.OK, "the driver sees all 7 GPUs"),
    (
        "no-driver",
        "GPUIsLost",
        (),
        Status.UNKNOWN,
        "nvidia-smi cannot run on this node; is the NVIDIA driver installed?",
    ),
    (
        "healthy-a100",
        "GPUPendingPage",
        (),
        Status.OK,
        "no pending page retirement or row remapping on 8 GPUs",
    ),
    (
        "pending-retirement-v100",
        "GPUPendingPage",
        (),
        Status.PROBLEM,
        "GPU 3 (0000:3e:00.0) has pages pending retirement: reset the GPU or reboot the node",
    ),
    (
        "row-remap-pending-a100",
        "GPUPendingPage",
        (),
        Status.PROBLEM,
        "GPU 5 (0000:90:00.0) has rows pending remapping: reset the GPU or reboot the node",
    ),
    (
        "no-driver",
        "GPUPendingPage",
        (),
        Status.UNKNOWN,
        "nvidia-smi cannot run on this node; is the NVIDIA driver installed?",
    ),
    ("healthy-a100", "PCIeLinkDegraded", (), Status.OK, "8 GPU PCIe links at full width and speed"),
    (
        "pcie-degraded-a30",
        "PCIeLinkDegraded",
        (),
        Status.PROBLEM,
        "PCIe link degraded: 0000:ca:00.0 x8 of x16 (16.0 GT/s PCIe of 16.0 GT/s PCIe); reseat or reboot",
    ),
    # without a driver the link is still read from sysfs
    ("no-driver", "PCIeLinkDegraded", (), Status.OK, "8 GPU PCIe links at full width and speed"),
]


@pytest.mark.parametrize(("case", "name", "extra", "status", "message"), CASES)
def test_check_against_recorded_node(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    case: str,
    name: str,
    extra: tuple[str, ...],
    status: Status,
    message: str,
) -> None:
    code, line = check(capsys, case, name, *extra, tmp=tmp_path)
    assert (code, line) == (status, message)


def test_nvswitches_and_nics_are_not_gpus(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # gpu-lost-a100 has 2 NVSwitches and a NIC on PCI; 8 GPUs are expected, not 11
    code, line = check(capsys, "gpu-lost-a100", "GPUIsLost", tmp=tmp_path)
    assert code == Status.PROBLEM and "of 11" not in line


def test_d_state_is_a_problem_only_after_the_threshold(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, line = check(capsys, "dstate", "DStateProcess", tmp=tmp_path, now=1000.0)
    assert (code, line) == (
        Status.OK,
        "no process in D state for 300s or more (2 in D state for less than 300s)",
    )
    code, line = check(capsys, "dstate", "DStateProcess", tmp=tmp_path, now=1400.0)
    assert code == Status.PROBLEM
    assert line == (
        "2 process(es) in D state for up to 400s: 4242 (python3 in nfs_wait_on_request), "
        "4250 (pt_data_worker in nfs_wait_on_request)"
    )
    # the processes are gone: forgotten, so a new one with the same pid starts from zero
    code, line = check(capsys, "healthy-a100", "DStateProcess", tmp=tmp_path, now=1500.0)
    assert (code, line) == (Status.OK, "no process in D state for 300s or more")
    code, _ = check(capsys, "dstate", "DStateProcess", tmp=tmp_path, now=1600.0)
    assert code == Status.OK


class FakeDriver:
    """Recorded CUDA outcomes per GPU (the workload seam)."""

    errors: ClassVar[dict[int, str]] = {}
    count = 4

    def device_count(self) -> int:
        return self.count

    def bus_id(self, ordinal: int) -> str:
        return f"0000:{ordinal:02x}:00.0"

    def exercise(self, ordinal: int) -> None:
        if ordinal in self.errors:
            raise workload.CudaFailure(self.errors[ordinal])


def test_active_check_reports_the_failing_gpu(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    class Failing(FakeDriver):
        errors: ClassVar[dict[int, str]] = {2: "cuMemcpyDtoH_v2: CUDA_ERROR_ECC_UNCORRECTABLE"}

    code = entry.main(["GPURuntimeError"], runner=recorded("healthy-a100"), cuda=Failing)
    assert code == Status.PROBLEM
    assert capsys.readouterr().out.strip() == (
        "workload failed on 1 of 4 idle GPUs: GPU 2 (0000:02:00.0): cuMemcpyDtoH_v2: CUDA_ERROR_ECC_UNCORRECTABLE"
    )
    code = entry.main(["GPURuntimeError"], runner=recorded("healthy-a100"), cuda=FakeDriver)
    assert (code, capsys.readouterr().out.strip()) == (Status.OK, "workload passed on 4 GPUs")


def test_active_check_without_a_driver_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    code = entry.main(
        ["GPURuntimeError"],
        runner=recorded("no-driver"),
        cuda=lambda: workload.CudaDriver("libcuda-absent.so.1"),
    )
    assert code == Status.UNKNOWN
    assert capsys.readouterr().out.startswith("libcuda-absent.so.1 cannot be loaded")


def test_cuda_init_failure_is_a_problem(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> workload.Driver:
        raise workload.CudaFailure("cuInit: CUDA_ERROR_UNKNOWN")

    code = entry.main(["GPURuntimeError"], runner=recorded("no-driver"), cuda=broken)
    assert code == Status.PROBLEM
    assert capsys.readouterr().out.strip() == "CUDA failed before the workload: cuInit: CUDA_ERROR_UNKNOWN"


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kaip_incluster.nodechecks", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_module_entry_point_as_npd_runs_it(tmp_path: Path) -> None:
    done = run_module(
        "DStateProcess", "--root", str(FIXTURES / "dstate"), "--threshold", "0", "--state-dir", str(tmp_path)
    )
    assert done.returncode == 1
    assert done.stdout.startswith("2 process(es) in D state") and done.stdout.count("\n") == 1
    done = run_module(
        "GPUIsLost", "--root", str(FIXTURES / "no-driver"), "--nvidia-smi", str(tmp_path / "absent")
    )
    assert (done.returncode, done.stdout.strip()) == (
        2,
        "nvidia-smi cannot run on this node; is the NVIDIA driver installed?",
    )


def test_unwritable_state_dir_is_unknown(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = run_module(
        "DStateProcess", "--root", str(FIXTURES / "dstate"), "--state-dir", str(blocker / "sub")
    )
    assert done.returncode == 2 and done.stdout.startswith("cannot write")


def test_long_messages_are_cut_to_one_npd_line() -> None:
    from kaip_incluster.nodechecks.result import MESSAGE_LIMIT, problem

    line = problem("x\n" * 500).line()
    assert len(line) == MESSAGE_LIMIT and "\n" not in line


@pytest.mark.parametrize(
    ("value", "pending"), [("Yes", True), ("No", False), ("[N/A]", False), ("2", True), ("0", False)]
)
def test_pending_flag_as_drivers_print_it(value: str, pending: bool) -> None:
    line = f"0, 00000000:07:00.0, GPU-x, NVIDIA A100-SXM4-80GB, [N/A], {value}, 4, 4, 16, 16, P0, Default, 0, 0, 81920"
    (gpu,) = nvidia_smi.parse(nvidia_smi.Output(line)).gpus
    assert gpu.remapped_rows_pending is pending
