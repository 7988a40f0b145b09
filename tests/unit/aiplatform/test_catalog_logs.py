"""The admin's catalog over the built-in one, and the stream-logs loop over a scripted cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from kaip.aiplatform import builtin_catalog, catalog, logs
from kaip.errors import OperationFailed, UsageError


def test_admin_entries_override_and_extend_the_builtin_catalog() -> None:
    text = """
machineTypes:
  n1-standard-4: {cpu: "3", memory: 12Gi, nodeSelector: {pool: cpu}}
  dgx-a100: {cpu: "120", memory: 900Gi, accelerator: {type: nvidia-tesla-a100, count: 8}}
  n1-highcpu-96: null
accelerators:
  nvidia-tesla-a100: {resource: nvidia.com/gpu, nodeSelector: {nvidia.com/gpu.product: NVIDIA-A100-SXM4-40GB}}
"""
    cat = catalog.from_configmap_text(text, where="cm")
    assert cat.source == "cluster (cm)"
    p = cat.placement(machine_type="n1-standard-4", accelerator=None)
    assert p.requests == {"cpu": "3", "memory": "12Gi"} and p.node_selector == {"pool": "cpu"}
    dgx = cat.placement(machine_type="dgx-a100", accelerator=None)
    assert dgx.limits["nvidia.com/gpu"] == "8"
    assert dgx.node_selector == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    with pytest.raises(UsageError, match="unknown machine type 'n1-highcpu-96'"):
        cat.machine("n1-highcpu-96")
    assert cat.machine("n1-standard-8")["cpu"] == "8"  # untouched built-in entries stay


def test_mig_slices_are_their_own_resources() -> None:
    cat = catalog.Catalog(builtin_catalog.BUILTIN)
    p = cat.placement(
        machine_type="n1-standard-8", accelerator={"type": "nvidia-a100-mig-1g.5gb", "count": 2}
    )
    assert p.limits["nvidia.com/mig-1g.5gb"] == "2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "must be a mapping"),
        ("colours: {}", r"unknown section\(s\) colours"),
        ("a: [", "not valid YAML"),
    ],
)
def test_broken_catalogs_are_reported(text: str, message: str) -> None:
    with pytest.raises(OperationFailed, match=message):
        catalog.from_configmap_text(text, where="cm")


def test_empty_configmap_means_builtin() -> None:
    assert catalog.from_configmap_text(None, where="cm").doc is builtin_catalog.BUILTIN


class Scripted:
    """A job whose Pods appear one after the other and then finish."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    def job(self) -> tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]:
        self.calls += 1
        pods: list[dict[str, Any]] = [self.pod("j-master-0", "master", 0)]
        if self.calls >= 2:
            pods.append(self.pod("j-worker-0", "worker", 0))
        conditions = [{"type": "Succeeded", "status": "True"}] if self.calls >= 3 else []
        return {"kind": "TFJob", "spec": {}, "status": {"conditions": conditions}}, pods

    @staticmethod
    def pod(name: str, rtype: str, index: int) -> dict[str, Any]:
        return {
            "metadata": {
                "name": name,
                "labels": {
                    "training.kubeflow.org/replica-type": rtype,
                    "training.kubeflow.org/replica-index": str(index),
                },
            },
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": "tensorflow", "restartCount": 0, "state": {"running": {}}}],
            },
        }

    def lines(self, pod: str, container: str) -> Iterator[str]:
        yield f"2026-01-01T00:00:00Z hello from {pod}/{container}"

    def close(self) -> None:
        self.closed = True


class NeverEnding(Scripted):
    """Log streams that stay open after the job ended (a lost node, a kubelet that keeps following)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()

    def lines(self, pod: str, container: str) -> Iterator[str]:
        yield f"2026-01-01T00:00:00Z last words of {pod}"
        self.stop.wait(60)

    def close(self) -> None:
        self.closed = True
        self.stop.set()


def test_stream_logs_ends_with_the_job_when_a_stream_stays_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "END_GRACE", 0.2)
    source = NeverEnding()
    started = time.monotonic()
    events = list(logs.follow(None, "j", source=source, sleep=lambda _s: None))
    assert time.monotonic() - started < 5
    assert source.stop.is_set()
    assert events[-1].final_state == "SUCCEEDED"
    assert {e.line.split("\t")[-1] for e in events if e.line} == {
        "last words of j-master-0",
        "last words of j-worker-0",
    }


def test_stream_logs_follows_late_pods_and_ends_with_the_job() -> None:
    events = list(logs.follow(None, "j", source=Scripted(), sleep=lambda _s: None))
    lines = sorted(e.line for e in events if e.line)
    assert lines == [
        "INFO\t2026-01-01T00:00:00Z\tmaster-replica-0\thello from j-master-0/tensorflow",
        "INFO\t2026-01-01T00:00:00Z\tworker-replica-0\thello from j-worker-0/tensorflow",
    ]
    assert events[-1].final_state == "SUCCEEDED"


def test_stream_logs_of_one_task() -> None:
    events = list(
        logs.follow(None, "j", task_name="worker-replica-0", source=Scripted(), sleep=lambda _s: None)
    )
    assert [e.line.split("\t")[2] for e in events if e.line] == ["worker-replica-0"]


def test_a_pod_not_started_has_no_log_yet() -> None:
    assert (
        logs.started({"status": {"containerStatuses": [{"name": "c", "state": {"waiting": {}}}]}}, "c")
        is None
    )
    assert (
        logs.started(
            {"status": {"containerStatuses": [{"name": "c", "restartCount": 2, "state": {"running": {}}}]}},
            "c",
        )
        == 2
    )
