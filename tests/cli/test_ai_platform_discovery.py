"""Without Kubeflow's CRDs: every command names the missing API and how to install it (exit code 8),
before it creates anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaip.cli.app import run
from kaip.commands.ai_platform import cli
from kaip.kube.client import Kube
from kaip.resources import kinds

pytestmark = pytest.mark.integration


def ai(capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, *args: str) -> tuple[int, str]:
    code = run(
        cli, [*args, "--kubeconfig", str(kubeconfig), "-n", namespace], prog_name="kubectl ai-platform"
    )
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("framework", "message"),
    [
        (
            "tensorflow",
            "the cluster does not serve tfjobs.kubeflow.org/v1 (TFJob): install the Kubeflow Training Operator v1",
        ),
        (
            "mpi",
            "the cluster does not serve mpijobs.kubeflow.org/v2beta1 (MPIJob): install the MPI Operator v2",
        ),
    ],
)
def test_submit_names_the_missing_crd_and_creates_nothing(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    framework: str,
    message: str,
) -> None:
    code, err = ai(
        capsys,
        kubeconfig,
        namespace,
        "jobs",
        "submit",
        "training",
        "j",
        "--master-image-uri=i",
        f"--framework={framework}",
        "--data=ds=s3://bucket/p",
    )
    assert code == 8
    assert err.startswith(f"error: {message}")
    assert kube.list(kinds.PVCS)["items"] == []  # the PVC was not made for a job that cannot exist


def test_hyperparameter_tuning_names_katib(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    config = tmp_path / "hp.yaml"
    config.write_text(
        "trainingInput:\n  hyperparameters:\n    params:\n    - {parameterName: lr, type: DOUBLE, minValue: 0.1, maxValue: 1}\n"
    )
    code, err = ai(
        capsys,
        kubeconfig,
        namespace,
        "jobs",
        "submit",
        "training",
        "j",
        "--master-image-uri=i",
        f"--config={config}",
    )
    assert code == 8 and "experiments.kubeflow.org/v1beta1 (Experiment): install Katib" in err


def test_list_without_any_kubeflow_kind(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str
) -> None:
    code, err = ai(capsys, kubeconfig, namespace, "jobs", "list")
    assert (
        code == 8
        and "the cluster serves no Kubeflow job kinds" in err
        and "install the Kubeflow Training Operator" in err
    )
