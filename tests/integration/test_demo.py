"""`make demo`, the README's main job, run as a user runs it: on its own control plane, with the
webhook, the data-loader controller, MinIO and Kubeflow's training-operator, it must show each part
working and exit 0.

The second test runs the README's command itself, `make demo ARGS=--keep`, in a clean clone of this
repository's HEAD (committed changes only: commit before running it), in a virtualenv of its own,
without Go on PATH (the servers come from testbin's cache): the plane stays up until Ctrl-C, and
nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path

import pytest

from kaip_testbed import binaries
from kaip_testbed.objectstores import MINIO_PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

ROOT = Path(__file__).resolve().parents[2]
#: The line `--keep` ends with, once the plane is up for the user.
KEPT = "Press Ctrl-C to stop it."
#: Not passed to the clean clone's `make demo`: our own interpreter and paths, and what an outer
#: `make test` passes down (MAKEFLAGS...), whose variables would override the clone's choices.
NOT_PASSED = ("PYTHONPATH", "KAIP_DEMO_KUBECONFIG", "KUBECONFIG", "VIRTUAL_ENV", "PYTHON", "SYSTEM_PYTHON")


def test_the_demo_runs_the_main_job_for_real() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "support")}
    env.pop("KAIP_DEMO_KUBECONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "kaip_testbed.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert_the_demo_worked(out)


def assert_the_demo_worked(out: str) -> None:
    """Each part of the demo shows in what it printed, no secret does, and its folder is gone."""
    # node-health over the broken nodes
    assert "GPUIsLost" in out and "gpu-a100-1" in out
    # the credentials webhook refused the malformed Secret and admitted the good one
    assert (
        'denied the request: Secret of type kaip.dev/aws-credentials: key "aws_secret_access_key" is missing'
        in out
    )
    assert "secret/s3-reader created" in out
    # the controller preloaded the PVC
    assert "persistentvolumeclaim/mnist loaded from s3://datasets/mnist/" in out
    # the training job ran under the operator, its logs followed to the end
    assert "epoch 3/3" in out and "Job [mnist] submitted successfully." in out
    assert any(line.split()[:2] == ["mnist", "SUCCEEDED"] for line in out.splitlines())
    # no secret value printed, and nothing left behind
    assert MINIO_PASSWORD not in out
    workdir = next(
        line.rsplit(" in ", 1)[1] for line in out.splitlines() if line.startswith("Starting a local")
    )
    assert not Path(workdir).exists()


def externally_managed_python() -> str | None:
    """A system Python that pip must not install into (PEP 668), as Debian's python3 is, if any."""
    check = (
        "import os, sys, sysconfig; sys.exit(not (sys.prefix == sys.base_prefix and sys.version_info >= (3, 10)"
        " and os.path.isfile(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))))"
    )
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if Path(candidate).exists() and subprocess.run([candidate, "-c", check], check=False).returncode == 0:
            return candidate
    return None


def without_go(path: str) -> str:
    """PATH without the folders that hold a `go`: the servers must come from the cache."""
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and not os.access(Path(p, "go"), os.X_OK))


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make")
def test_make_demo_keep_from_a_clean_clone_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    binaries.folder(need=binaries.NAMES)  # built (or found) here, with Go; the clone must not need it
    clone = tmp_path / "kaip"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    env = {
        k: v for k, v in os.environ.items() if k not in NOT_PASSED and not k.startswith(("MAKE", "MFLAGS"))
    }
    env["PATH"] = without_go(env.get("PATH", ""))
    system = externally_managed_python()
    if system is not None:
        # Debian's python3 as SYSTEM_PYTHON: the Makefile makes .venv/ in the clone and uses it.
        argv = ["make", "demo", "ARGS=--keep", f"SYSTEM_PYTHON={system}"]
        python = clone / ".venv" / "bin" / "python"
    else:
        # No such Python here: a fresh virtualenv, activated, is the Python the Makefile takes.
        home = tmp_path / "venv"
        venv.create(home, with_pip=True)
        env["PATH"] = os.pathsep.join([str(home / "bin"), env["PATH"]])
        env["VIRTUAL_ENV"] = str(home)
        argv = ["make", "demo", "ARGS=--keep"]
        python = home / "bin" / "python"
    demo = subprocess.Popen(
        argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, which Ctrl-C signals as a terminal would
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(
        target=lambda: [*map(lines.put, demo.stdout or ()), lines.put(None)], daemon=True
    ).start()
    out: list[str] = []
    try:
        deadline = time.monotonic() + 540
        while not out or out[-1].strip() != KEPT:
            line = lines.get(timeout=max(1.0, deadline - time.monotonic()))
            assert line is not None, "".join(out)[-4000:]  # the demo ended without keeping the plane up
            out.append(line)
        printed = "".join(out)
        assert "The demo took" in printed and "step(s) failed" not in printed, printed[-4000:]
        kubeconfig = next(
            line.split("=", 1)[1].strip() for line in out if line.strip().startswith("export KUBECONFIG=")
        )
        # The plane is still up: the user's next command, with the printed KUBECONFIG, works.
        kept = subprocess.run(
            [str(python.parent / "kubectl-node_health"), "list", "--only-problems"],
            env={**env, "KUBECONFIG": kubeconfig}, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert kept.returncode == 0 and "GPUIsLost" in kept.stdout, kept.stdout + kept.stderr
        # ...from the clone, installed in the virtualenv that ran the demo.
        where = subprocess.run(
            [str(python), "-c", "import kaip; print(kaip.__file__)"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert where.stdout.startswith(str(clone)), where.stdout
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C
        demo.wait(timeout=120)
    while (line := lines.get(timeout=30)) is not None:
        out.append(line)
    assert_the_demo_worked("".join(out))
    assert not Path(kubeconfig).exists()
