"""`make demo`, the README's main job, run as a user runs it: on its own control plane, with the
webhook, the data-loader controller, MinIO and Kubeflow's training-operator, it must show each part
working and exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kaip_testbed.objectstores import MINIO_PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.objectstore]

ROOT = Path(__file__).resolve().parents[2]


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
