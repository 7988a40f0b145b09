"""`jobs submit training` against the real API server with Kubeflow's CRDs (structural schemas that
refuse unknown fields): every framework, staged packages, preloaded data, the admin's catalog, and a
hyperparameter tuning job whose trials the server accepts."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.kube.client import Kube
from kaip.kube.errors import Invalid
from kaip.resources import kinds
from kaip.resources import kubeflow as kf
from kaip_testbed.catalog import admin_catalog
from kaip_testbed.plugins import ai

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kubeflow")]


def submit(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, *args: str
) -> tuple[int, str, str]:
    return ai(capsys, kubeconfig, namespace, "jobs", "submit", "training", *args)


def strict_create(kube: Kube, resource: Any, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    query = {"fieldValidation": "Strict", "dryRun": "All" if dry_run else None}
    return kube.request(
        "POST", resource.path(namespace=kube.namespace), query=query, body=obj, resource=resource
    )  # type: ignore[no-any-return]


def test_the_crds_refuse_unknown_fields(kube: Kube) -> None:
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "metadata": {"name": "probe"},
        "spec": {
            "tfReplicaSpecs": {
                "Master": {"template": {"spec": {"containers": [{"name": "tensorflow", "image": "i"}]}}}
            }
        },
    }
    strict_create(kube, kf.TFJOBS, job, dry_run=True)  # the well-formed one passes
    job["spec"]["runPolicy"] = {"cleanUpPolicy": "All"}
    with pytest.raises(Invalid, match="unknown field"):
        strict_create(kube, kf.TFJOBS, job, dry_run=True)
    del job["spec"]["runPolicy"]
    job["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["imag"] = "x"
    with pytest.raises(Invalid, match="unknown field"):
        strict_create(kube, kf.TFJOBS, job, dry_run=True)


FRAMEWORKS = [
    (
        "tensorflow",
        kf.TFJOBS,
        [
            "--parameter-server-count=1",
            "--parameter-server-machine-type=n1-highmem-8",
            "--use-chief-in-tf-config=true",
        ],
    ),
    ("pytorch", kf.PYTORCHJOBS, []),
    ("xgboost", kf.XGBOOSTJOBS, []),
    ("jax", kf.JAXJOBS, ["--master-accelerator=type=nvidia-tesla-t4,count=1"]),
    ("paddle", kf.PADDLEJOBS, []),
    ("mpi", kf.MPIJOBS, []),
]


@pytest.mark.parametrize(("framework", "resource", "extra"), FRAMEWORKS, ids=[f[0] for f in FRAMEWORKS])
def test_every_framework_is_created_as_built(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    framework: str,
    resource: Any,
    extra: list[str],
) -> None:
    code, out, err = submit(
        capsys, kubeconfig, namespace, f"job_{framework}", f"--framework={framework}",
        "--master-image-uri=registry.local/train:1", "--scale-tier=custom", "--master-machine-type=n1-standard-8",
        "--worker-count=2", "--worker-machine-type=n1-standard-8", *extra,
        "--worker-accelerator=type=nvidia-tesla-t4,count=1",
        "--credentials=aws-team", "--secondary-network=rdma", "--queue=team-a", "--labels=team=vision",
        f"--data=ds-{framework}=s3://datasets/imagenet", "-o", "yaml", "--", "--epochs=2",
    )  # fmt: skip
    assert code == 0, err
    _claim, sent = list(yaml.safe_load_all(out))
    assert "Job [job_" not in out and f"Job [job_{framework}] submitted successfully." in err
    stored = kube.get(resource, f"job-{framework}")
    # Nothing was pruned: the server kept every field we sent.
    assert stored["spec"] == sent["spec"]
    assert stored["metadata"]["labels"][kf.LABEL_KUEUE_QUEUE] == "team-a"
    assert (
        kube.get(kinds.PVCS, f"ds-{framework}")["metadata"]["annotations"]["preload.kaip.dev/source"]
        == "s3://datasets/imagenet/"
    )


def test_package_path_is_staged_in_a_configmap_and_installed(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube, tmp_path: Path
) -> None:
    pkg = tmp_path / "trainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("print('hello')\n")
    code, _, err = submit(
        capsys,
        kubeconfig,
        namespace,
        "staged",
        "--module-name=trainer.task",
        f"--package-path={pkg}",
        "--runtime-version=2.11",
    )
    assert code == 0, err
    cm = kube.get(kinds.CONFIGMAPS, "staged-packages")
    data = base64.b64decode(cm["binaryData"]["trainer-0.0.0.tar.gz"])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert any(n.endswith("trainer/task.py") for n in tar.getnames())
    job = kube.get(kf.TFJOBS, "staged")
    # deleting the job deletes its packages
    assert cm["metadata"]["ownerReferences"] == [
        {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "name": "staged", "uid": job["metadata"]["uid"]}
    ]
    spec = job["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]
    assert {"name": "kaip-packages", "configMap": {"name": "staged-packages"}} in spec["volumes"]
    assert "/kaip/packages/trainer-0.0.0.tar.gz" in spec["containers"][0]["command"][2]


def test_preloaded_data_is_reused_and_a_clash_is_refused(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    assert (
        submit(
            capsys, kubeconfig, namespace, "first", "--master-image-uri=i", "--data=shared=gs://team-data/set"
        )[0]
        == 0
    )
    assert (
        submit(
            capsys,
            kubeconfig,
            namespace,
            "second",
            "--master-image-uri=i",
            "--data=shared=gs://team-data/set/",
        )[0]
        == 0
    )
    assert kube.get(kf.TFJOBS, "second")
    code, _, err = submit(
        capsys, kubeconfig, namespace, "third", "--master-image-uri=i", "--data=shared=gs://team-data/other"
    )
    assert code == 2
    assert "PVC shared already exists with source gs://team-data/set/, not gs://team-data/other/" in err


def test_server_dry_run_creates_nothing(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    code, out, _ = submit(capsys, kubeconfig, namespace, "dry", "--master-image-uri=i", "--dry-run=server")
    assert code == 0 and out.strip() == "tfjob.kubeflow.org/dry created (server dry run)"
    assert kube.list(kf.TFJOBS)["items"] == []


def test_the_admins_catalog_decides_machines(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, kube: Kube, admin_kube: Kube
) -> None:
    catalog = {
        "machineTypes": {
            "dgx-a100": {
                "cpu": "120",
                "memory": "900Gi",
                "nodeSelector": {"pool": "dgx"},
                "accelerator": {"type": "nvidia-a100-mig-3g.20gb", "count": 2},
            }
        }
    }
    with admin_catalog(admin_kube, catalog):
        code, _, err = submit(
            capsys,
            kubeconfig,
            namespace,
            "on_dgx",
            "--master-image-uri=i",
            "--scale-tier=custom",
            "--master-machine-type=dgx-a100",
        )
        assert code == 0, err
        spec = kube.get(kf.TFJOBS, "on-dgx")["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]
        assert spec["nodeSelector"] == {"pool": "dgx"}
        assert spec["containers"][0]["resources"]["limits"]["nvidia.com/mig-3g.20gb"] == "2"
        code, out, err = ai(capsys, kubeconfig, namespace, "config", "show", "-o", "json")
        assert code == 0 and "cluster (ConfigMap kaip-system/ai-platform-catalog)" in err
        shown = json.loads(out)
        assert shown["machineTypes"]["dgx-a100"]["cpu"] == "120" and "n1-standard-4" in shown["machineTypes"]


HPTUNING = """
trainingInput:
  scaleTier: CUSTOM
  masterType: n1-standard-8
  workerType: n1-standard-8
  workerCount: 1
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    maxTrials: 4
    maxParallelTrials: 2
    enableTrialEarlyStopping: True
    params:
      - parameterName: first-layer-size
        type: INTEGER
        minValue: 50
        maxValue: 500
        scaleType: UNIT_LINEAR_SCALE
      - parameterName: optimizer
        type: CATEGORICAL
        categoricalValues: [sgd, adam]
"""


@pytest.mark.parametrize("framework", ["tensorflow", "pytorch", "mpi"])
def test_hyperparameter_tuning_becomes_an_experiment_whose_trials_the_server_accepts(
    capsys: pytest.CaptureFixture[str],
    kubeconfig: Path,
    namespace: str,
    kube: Kube,
    tmp_path: Path,
    framework: str,
) -> None:
    config = tmp_path / "hptuning_config.yaml"
    config.write_text(HPTUNING)
    code, _, err = submit(
        capsys,
        kubeconfig,
        namespace,
        "census_hp",
        f"--config={config}",
        f"--framework={framework}",
        "--master-image-uri=i",
        "--module-name=trainer.task",
    )
    assert code == 0, err
    exp = kube.get(kf.EXPERIMENTS, "census-hp")
    assert (
        exp["spec"]["parallelTrialCount"] == 2
        and exp["spec"]["objective"]["objectiveMetricName"] == "accuracy"
    )
    # What Katib will create for one trial: the placeholders filled in, as its controller does.
    template = exp["spec"]["trialTemplate"]
    text = json.dumps(template["trialSpec"])
    for value, p in zip(["128", "adam", "census-hp-abc"], template["trialParameters"], strict=True):
        text = text.replace(f"${{trialParameters.{p['name']}}}", value)
    trial = json.loads(text)
    trial["metadata"] = {"name": "census-hp-abc"}
    kind = kf.BY_KIND[trial["kind"]]
    created = strict_create(kube, kind.resource, trial, dry_run=True)
    container = next(iter(created["spec"][kind.replica_key].values()))["template"]["spec"]["containers"][0]
    # One shell line (Katib's Pod webhook joins command and args into one), the values quoted in it.
    assert container["command"][:2] == ["sh", "-c"] and "args" not in container
    assert container["command"][2].endswith(" '--first-layer-size=128' '--optimizer=adam'")
