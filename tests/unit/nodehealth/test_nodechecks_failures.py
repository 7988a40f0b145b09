"""The node checks of the node-failure seed's remaining classes, against recorded node trees
(tests/fixtures/nodechecks/) and trees built in tmp_path: the active check that never probes a GPU in
use, PCIe speed, GPU counts, ECC/Xid, network links and NFS mounts."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest

from kaip_incluster.nodechecks import __main__ as entry
from kaip_incluster.nodechecks import decisions, kubelet, nfs, workload
from kaip_incluster.nodechecks.result import Status

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_nodechecks import FIXTURES, recorded


def run(
    capsys: pytest.CaptureFixture[str],
    case: str | Path,
    *argv: str,
    now: float = 1000.0,
    cuda: Callable[[], workload.Driver] = workload.CudaDriver,
) -> tuple[int, str]:
    root = case if isinstance(case, Path) else FIXTURES / case
    code = entry.main(
        [*argv[:1], "--root", str(root), *argv[1:]], runner=recorded(str(root)), clock=lambda: now, cuda=cuda
    )
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "one line of message"
    return code, out.strip()


# -- 1. the active check: busy, exclusive, full and Pod-held GPUs are not probed -------------------------


class Node:
    """The CUDA seam for gpu-busy-a100: GPU 4 fails when idle; GPUs 0-3, in use, would fail if probed
    (out of memory, exclusive mode), so probing them would be the false alarm under test."""

    BUS: ClassVar[list[str]] = ["07", "0f", "47", "4e", "87", "90", "b7", "bd"]
    probed: ClassVar[list[int]] = []

    def device_count(self) -> int:
        return len(self.BUS)

    def bus_id(self, ordinal: int) -> str:
        return f"0000:{self.BUS[ordinal]}:00.0"

    def exercise(self, ordinal: int) -> None:
        self.probed.append(ordinal)
        if ordinal in (0, 1, 3):
            raise workload.CudaFailure("cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY")
        if ordinal == 2:
            raise workload.CudaFailure("cuCtxCreate_v2: CUDA_ERROR_DEVICE_UNAVAILABLE")
        if ordinal == 4:
            raise workload.CudaFailure("cuMemcpyDtoH_v2: CUDA_ERROR_ECC_UNCORRECTABLE")


def test_checkpoint_lists_the_gpus_pods_hold_and_the_plugins_devices() -> None:
    ck = kubelet.read_checkpoint(FIXTURES / "gpu-busy-a100")
    assert ck is not None
    # the finished Pod (no directory under /var/lib/kubelet/pods) holds nothing any more
    assert ck.allocated == {
        "GPU-0000a100-0000-4c1d-9a7e-000000046700": "8f14e45f-ceea-467e-a9d5-0f1a3c7d2b11/trainer"
    }
    assert len(ck.registered["nvidia.com/gpu"]) == 8


def test_checkpoint_formats(tmp_path: Path) -> None:
    path = tmp_path / kubelet.CHECKPOINT
    path.parent.mkdir(parents=True)
    # before Kubernetes 1.20 DeviceIDs was a list; time-slicing replicas fold onto their GPU
    path.write_text(
        json.dumps(
            {
                "Data": {
                    "PodDeviceEntries": [
                        {
                            "PodUID": "a",
                            "ContainerName": "c",
                            "ResourceName": "nvidia.com/gpu",
                            "DeviceIDs": ["GPU-1::2"],
                        },
                        {
                            "PodUID": "b",
                            "ContainerName": "c",
                            "ResourceName": "example.com/fpga",
                            "DeviceIDs": ["F-1"],
                        },
                    ],
                    "RegisteredDevices": {"nvidia.com/gpu": ["GPU-1::0", "GPU-1::1", "GPU-2::0"]},
                }
            }
        )
    )
    ck = kubelet.read_checkpoint(tmp_path)
    assert (
        ck is not None
        and ck.allocated == {"GPU-1": "a/c"}
        and ck.registered == {"nvidia.com/gpu": {"GPU-1", "GPU-2"}}
    )
    path.write_text("{not json")
    assert kubelet.read_checkpoint(tmp_path) is None


def test_full_busy_exclusive_and_held_gpus_are_not_probed_an_idle_failing_one_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Node.probed = []
    code, line = run(capsys, "gpu-busy-a100", "GPURuntimeError", cuda=Node)
    assert Node.probed == [4, 5, 6, 7]
    assert code == Status.PROBLEM
    assert line == (
        "workload failed on 1 of 4 idle GPUs: GPU 4 (0000:87:00.0): cuMemcpyDtoH_v2: CUDA_ERROR_ECC_UNCORRECTABLE; "
        "4 not probed (1 held by a Pod, 1 busy, 1 busy in exclusive mode, 1 memory full)"
    )


def test_busy_gpus_alone_raise_no_condition(capsys: pytest.CaptureFixture[str]) -> None:
    class Healthy(Node):
        def exercise(self, ordinal: int) -> None:
            if ordinal < 4:
                super().exercise(ordinal)

    code, line = run(capsys, "gpu-busy-a100", "GPURuntimeError", cuda=Healthy)
    assert (code, line) == (
        Status.OK,
        "workload passed on 4 GPUs; 4 not probed (1 held by a Pod, 1 busy, 1 busy in exclusive mode, 1 memory full)",
    )


def test_a_gpu_taken_during_the_probe_is_busy_an_idle_one_out_of_memory_is_broken() -> None:
    class Oom:
        def device_count(self) -> int:
            return 2

        def bus_id(self, ordinal: int) -> str:
            return f"0000:0{ordinal}:00.0"

        def exercise(self, ordinal: int) -> None:
            raise workload.CudaFailure("cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY")

    taken = {"0000:00:00.0"}
    result = workload.check(Oom, {}, busy_now=lambda bus: "busy" if bus in taken else None)
    assert result.status == Status.PROBLEM
    assert result.message == (
        "workload failed on 1 of 1 idle GPUs: GPU 1 (0000:01:00.0): cuMemAlloc_v2: CUDA_ERROR_OUT_OF_MEMORY; "
        "1 not probed (1 busy)"
    )


# -- 2. PCIe speed and width ---------------------------------------------------------------------


def node_copy(tmp_path: Path, case: str) -> Path:
    root = tmp_path / case
    shutil.copytree(FIXTURES / case, root)
    return root


def test_pcie_speed_below_max_at_full_performance_is_degraded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = node_copy(tmp_path, "gpu-busy-a100")  # every GPU at P0, links at 16 GT/s x16
    assert run(capsys, root, "PCIeLinkDegraded") == (Status.OK, "8 GPU PCIe links at full width and speed")
    (root / "sys/bus/pci/devices/0000:90:00.0/current_link_speed").write_text("8.0 GT/s PCIe\n")
    (root / "sys/bus/pci/devices/0000:b7:00.0/current_link_width").write_text("4\n")
    assert run(capsys, root, "PCIeLinkDegraded") == (
        Status.PROBLEM,
        "PCIe link degraded: 0000:b7:00.0 x4 of x16 (16.0 GT/s PCIe of 16.0 GT/s PCIe); "
        "0000:90:00.0 speed 8 of 16 GT/s at P0; reseat or reboot",
    )


def test_pcie_speed_of_an_idle_gpu_is_power_saving_unless_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # healthy-a100: idle (P8) at 2.5 of 16 GT/s
    assert run(capsys, "healthy-a100", "PCIeLinkDegraded")[0] == Status.OK
    code, line = run(capsys, "healthy-a100", "PCIeLinkDegraded", "--pcie-speed-at-idle")
    assert code == Status.PROBLEM and "0000:07:00.0 speed 2.5 of 16 GT/s at P8" in line


# -- 3. GPU counts, ECC and Xid ------------------------------------------------------------------


def test_gpu_counts_agree(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "gpu-busy-a100", "GPUCountMismatch") == (
        Status.OK,
        "GPU counts agree (NVIDIA A100-SXM4-80GB): PCI 8, driver 8, device plugin 8",
    )


def test_expected_count_per_product_from_the_configmap(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    expected = tmp_path / "expected-gpus.json"
    expected.write_text(json.dumps({"Tesla V100-SXM2-32GB": 8, "NVIDIA A100-SXM4-80GB": 8}))
    assert run(capsys, "gpu-missing-v100", "GPUCountMismatch", "--expected-gpus-file", str(expected)) == (
        Status.PROBLEM,
        "GPU counts disagree (Tesla V100-SXM2-32GB): PCI 7, expected 8, driver 7",
    )


def test_device_plugin_offering_fewer_gpus_than_the_driver_sees(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = node_copy(tmp_path, "gpu-busy-a100")
    path = root / kubelet.CHECKPOINT
    doc = json.loads(path.read_text())
    doc["Data"]["RegisteredDevices"]["nvidia.com/gpu"] = doc["Data"]["RegisteredDevices"]["nvidia.com/gpu"][
        :7
    ]
    path.write_text(json.dumps(doc))
    assert run(capsys, root, "GPUCountMismatch", "--expected-gpus", "8") == (
        Status.PROBLEM,
        "GPU counts disagree (NVIDIA A100-SXM4-80GB): PCI 8, expected 8, driver 8, device plugin 7",
    )


def test_the_driver_losing_a_gpu_is_a_count_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = run(capsys, "gpu-lost-a100", "GPUCountMismatch")
    assert code == Status.PROBLEM and line.endswith("PCI 8, driver 7")


def test_double_bit_ecc_and_serious_xid_are_errors_application_xid_is_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "xid-ecc-a100", "GPUUncorrectableError") == (
        Status.PROBLEM,
        "GPU 3 (0000:4e:00.0) 2 double-bit ECC errors; Xid 79 on 0000:b7:00.0: GPU has fallen off the bus.",
    )
    assert run(capsys, "healthy-a100", "GPUUncorrectableError") == (
        Status.OK,
        "no double-bit ECC error on 8 GPUs; kernel log unreadable",
    )
    code, line = run(capsys, "xid-ecc-a100", "GPUUncorrectableError", "--xid", "13")
    assert code == Status.PROBLEM and "Xid 13 on 0000:0f:00.0" in line and "Xid 79" not in line


# -- 4. network ----------------------------------------------------------------------------------

WATCH = ("--interface", "eth0", "--interface", "ens1f0", "--interface", "ib0", "--interface", "eth1")
RDMA = ("--rdma", "mlx5_0", "--rdma", "mlx5_1:1", "--rdma", "mlx5_2")


def test_link_down_and_missing_interfaces(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run(capsys, "network", "NetworkLinkDown", *WATCH, *RDMA) == (
        Status.PROBLEM,
        "link down: ens1f0 (down), rdma mlx5_1/1 (DOWN, Polling)",
    )
    assert run(capsys, "network", "NetworkInterfaceMissing", *WATCH, *RDMA) == (
        Status.PROBLEM,
        "expected interface not recognised: eth1, rdma mlx5_2; check the NIC and its driver",
    )
    assert run(capsys, "network", "NetworkLinkDown", "--interface", "eth0", "--rdma", "mlx5_0") == (
        Status.OK,
        "2 watched links up",
    )
    assert run(capsys, "network", "NetworkLinkDown")[0] == Status.UNKNOWN


def set_counter(root: Path, rel: str, value: int) -> None:
    (root / rel).write_text(f"{value}\n")


def test_flapping_counts_within_the_window(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = node_copy(tmp_path, "network")
    args = (
        "NetworkLinkFlapping",
        "--interface",
        "eth0",
        "--rdma",
        "mlx5_0",
        "--state-dir",
        str(tmp_path / "s"),
        "--window",
        "600",
        "--max-flaps",
        "2",
    )
    assert run(capsys, root, *args, now=0)[0] == Status.OK
    set_counter(root, "sys/class/net/eth0/carrier_changes", 2 + 2 * 3)  # 3 flaps
    set_counter(root, "sys/class/infiniband/mlx5_0/ports/1/counters/link_downed", 1)
    assert run(capsys, root, *args, now=300) == (
        Status.PROBLEM,
        "link flapped more than 2 times in 600s: eth0 3 times",
    )
    # the flaps leave the window: stable again
    assert run(capsys, root, *args, now=1000) == (
        Status.OK,
        "2 watched links stable (2 flaps or fewer in 600s)",
    )


def test_transceiver_errors_growing_in_the_window(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = node_copy(tmp_path, "network")
    args = (
        "NetworkTransceiverError",
        "--interface",
        "eth0",
        "--rdma",
        "mlx5_1",
        "--state-dir",
        str(tmp_path / "s"),
    )
    assert run(capsys, root, *args, now=0)[0] == Status.OK  # 1742 symbol errors since boot: history
    set_counter(root, "sys/class/infiniband/mlx5_1/ports/1/counters/symbol_error", 1742 + 500)
    set_counter(root, "sys/class/net/eth0/statistics/rx_crc_errors", 40)
    assert run(capsys, root, *args, now=60) == (
        Status.PROBLEM,
        "physical-layer errors (transceiver/cable) above 100 in 3600s: rdma mlx5_1/1 +500",
    )
    # a driver reload resets the counter: not an error burst
    set_counter(root, "sys/class/infiniband/mlx5_1/ports/1/counters/symbol_error", 0)
    assert run(capsys, root, *args, now=120)[0] == Status.OK


# -- 5. NFS --------------------------------------------------------------------------------------


def nfs_node(tmp_path: Path) -> Path:
    root = tmp_path / "node"
    pods = root / "var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs"
    (pods / "data").mkdir(parents=True)
    (pods / "my\tlogs").mkdir(parents=True)
    (root / "mnt/datasets").mkdir(parents=True)
    (root / "proc/1").mkdir(parents=True)
    (root / "proc/1/mounts").write_text(
        "/dev/nvme0n1p2 / ext4 rw,relatime 0 0\n"
        "filer:/export/data /var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs/data nfs4 rw,hard 0 0\n"
        "filer:/export/logs /var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs/my\\011logs nfs rw 0 0\n"
        "filer:/export/ds /mnt/datasets nfs4 ro,hard 0 0\n"
        "filer:/export/home /home nfs4 rw 0 0\n"
    )
    return root


def test_nfs_mounts_under_the_watched_prefixes(tmp_path: Path) -> None:
    root = nfs_node(tmp_path)
    points = [m.point for m in nfs.nfs_mounts(root, ["/var/lib/kubelet/pods", "/mnt/datasets"]) or []]
    assert points == [
        "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs/data",
        "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs/my\tlogs",
        "/mnt/datasets",
    ]
    assert nfs.nfs_mounts(tmp_path / "absent", []) is None


def test_answering_nfs_mounts_are_ok(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = nfs_node(tmp_path)
    assert run(capsys, root, "NFSMountHung", "--nfs-path-prefix", "/var/lib/kubelet/pods") == (
        Status.OK,
        "2 NFS mounts answer",
    )


def test_a_hung_mount_never_blocks_and_a_stale_one_is_reported(tmp_path: Path) -> None:
    root = nfs_node(tmp_path)
    mounts = nfs.nfs_mounts(root, ["/var/lib/kubelet/pods", "/mnt/datasets"]) or []
    # a stand-in interpreter: the first mount's stat hangs, the second's is stale, the third answers
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$4" in\n'
        "  */data) exec sleep 60 ;;\n"
        "  *logs) echo '116 Stale file handle'; exit 3 ;;\n"
        "  *) exit 0 ;;\n"
        "esac\n"
    )
    fake.chmod(0o755)
    started = time.monotonic()
    probes = nfs.probe(root, mounts, timeout=0.5, python=str(fake))
    assert time.monotonic() - started < 5, "a hung mount must not hold the check"
    assert [p.outcome for p in probes] == ["hung", "stale", "ok"]
    result = decisions.nfs_mount_hung(probes, timeout=0.5)
    assert result.status == Status.PROBLEM
    assert result.message == (
        "2 NFS mount(s) hung or stale (timeout 0.5s): /var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs/data "
        "(filer:/export/data) hung; /var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs/my\tlogs (filer:/export/logs) stale"
    )


def test_a_mount_point_not_visible_to_the_check_is_unknown(tmp_path: Path) -> None:
    root = nfs_node(tmp_path)
    shutil.rmtree(root / "mnt")
    probes = nfs.probe(root, nfs.nfs_mounts(root, ["/mnt/datasets"]) or [], timeout=10)
    result = decisions.nfs_mount_hung(probes, timeout=10)
    assert result.status == Status.UNKNOWN and "No such file or directory" in result.message


def test_the_nfs_remount_example_is_a_rule_the_controller_accepts() -> None:
    import yaml

    from kaip.remediation import spec

    path = FIXTURES.parents[2] / "manifests/remediation/examples/nfs-remount.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    (rule,) = [spec.parse_rule(d) for d in docs if d["kind"] == "RemediationRule"]
    (budget,) = [spec.parse_budget(d) for d in docs if d["kind"] == "NodeDisruptionBudget"]
    assert [c.type for c in rule.conditions] == ["NFSMountHung"]
    assert [op.name for op in rule.operations] == ["nfs-remount", "reboot"]
    assert (budget.max_unavailable.value, budget.max_unavailable.percent) == (10, True)


def test_mig_devices_are_not_compared_with_whole_gpus(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = node_copy(tmp_path, "gpu-busy-a100")
    path = root / kubelet.CHECKPOINT
    doc = json.loads(path.read_text())
    doc["Data"]["RegisteredDevices"]["nvidia.com/gpu"] = [f"MIG-{n}" for n in range(56)]  # single strategy
    path.write_text(json.dumps(doc))
    assert run(capsys, root, "GPUCountMismatch") == (
        Status.OK,
        "GPU counts agree (NVIDIA A100-SXM4-80GB): PCI 8, driver 8",
    )
