"""`-w/--watch` follows node changes live; kubectl finds the plugin; the node-problem-detector
manifests are accepted by the real API server."""

from __future__ import annotations

import os
import queue
import subprocess
import sysconfig
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from gpunodes import condition, create, delete, gpu_node

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed import binaries

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = os.path.join(sysconfig.get_path("scripts"), "kubectl-node_health")


class Lines:
    """The stdout lines of a running process, read with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.box: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.box.put(line.rstrip("\n"))

    def until(self, wanted: str, *, then: str = "", timeout: float = 30.0) -> list[str]:
        """The lines printed up to the first that contains ``wanted`` (and ``then``, when given)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.box.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if wanted in line and then in line:
                return seen
        raise AssertionError(f"{wanted!r} {then!r} not printed within {timeout}s; got {seen}")


@pytest.fixture
def watched_node(admin_kube: Kube) -> Iterator[tuple[str, str]]:
    run_id = uuid.uuid4().hex[:6]
    name = f"watched-{run_id}"
    create(admin_kube, [gpu_node(name, run_id)])
    try:
        yield name, f"kaip.dev/test-run={run_id}"
    finally:
        delete(admin_kube, [name])


@contextmanager
def start(kubeconfig: Path, *args: str) -> Iterator[Lines]:
    proc = subprocess.Popen(
        [PLUGIN, *args, "--kubeconfig", str(kubeconfig), "--polarity-configmap", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield Lines(proc)
    finally:
        proc.kill()
        proc.wait()


def gpu_lost(admin_kube: Kube, name: str) -> None:
    patch = {
        "status": {"conditions": [condition("GPUIsLost", "True", since=timedelta(0), message="1 of 8 lost")]}
    }
    admin_kube.patch(kinds.NODES, name, patch, kind="strategic", subresource="status")


def test_list_watch_prints_the_changed_node(
    admin_kube: Kube, kubeconfig: Path, watched_node: tuple[str, str]
) -> None:
    name, selector = watched_node
    with start(kubeconfig, "list", "-w", "-l", selector) as lines:
        first = lines.until(name)
        assert first[0].split()[:3] == ["NAME", "STATUS", "PROBLEMS"]
        assert first[-1].split()[1:3] == ["Ready", "<none>"]
        gpu_lost(admin_kube, name)
        changed = lines.until("GPUIsLost")[-1].split()
        assert changed[:3] == [name, "Ready", "GPUIsLost"]
        admin_kube.patch(kinds.NODES, name, {"spec": {"unschedulable": True}})
        assert lines.until("SchedulingDisabled")[-1].split()[1] == "Ready,SchedulingDisabled"


def test_only_problems_watch_shows_a_node_break_and_recover(
    admin_kube: Kube, kubeconfig: Path, watched_node: tuple[str, str]
) -> None:
    name, selector = watched_node
    with start(kubeconfig, "list", "-w", "--only-problems", "-l", selector) as lines:
        gpu_lost(admin_kube, name)
        assert lines.until(name)[-1].split()[:3] == [name, "Ready", "GPUIsLost"]
        healed = {"status": {"conditions": [condition("GPUIsLost", "False", since=timedelta(0))]}}
        admin_kube.patch(kinds.NODES, name, healed, kind="strategic", subresource="status")
        # kwok's heartbeats change the node too: a row printed for one of those before the heal
        # arrives still shows the problem; the healed row follows.
        rows = [line.split()[:3] for line in lines.until(f"{name} ", then="<none>") if line.startswith(name)]
        assert rows[-1] == [name, "Ready", "<none>"]
        assert all(row[2] in ("GPUIsLost", "<none>") for row in rows)


def test_summary_watch_prints_a_new_summary(
    admin_kube: Kube, kubeconfig: Path, watched_node: tuple[str, str]
) -> None:
    name, selector = watched_node
    with start(kubeconfig, "summary", "-w", "-l", selector) as lines:
        lines.until("No abnormal node conditions.")
        gpu_lost(admin_kube, name)
        problem = lines.until("GPUIsLost")[-1].split()
        assert problem[:3] == ["GPUIsLost", "True", "1"] and problem[-1] == name


def test_kubectl_runs_the_plugin(kubeconfig: Path, watched_node: tuple[str, str]) -> None:
    name, selector = watched_node
    env = {**os.environ, "PATH": f"{sysconfig.get_path('scripts')}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [
            binaries.path_of("kubectl"),
            "node-health",
            "list",
            "-l",
            selector,
            "--kubeconfig",
            str(kubeconfig),
            "-o",
            "name",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"node/{name}")


def test_node_problem_detector_manifests_are_accepted_by_the_server(kubeconfig: Path) -> None:
    done = subprocess.run(
        [
            binaries.path_of("kubectl"),
            "apply",
            "--dry-run=server",
            "-k",
            str(ROOT / "manifests" / "node-problem-detector"),
            "--kubeconfig",
            str(kubeconfig),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "daemonset.apps/kaip-node-problem-detector created (server dry run)" in done.stdout
    assert "clusterrolebinding.rbac.authorization.k8s.io/kaip-node-problem-detector created" in done.stdout
