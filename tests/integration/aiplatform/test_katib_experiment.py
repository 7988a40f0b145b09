"""A hyperparameter tuning job end to end under the real Katib v0.19.0, driven through the plugin.

`jobs submit training --config hptuning.yaml` makes the Experiment (RANDOM_SEARCH, 3 trials at once);
everything after that is Katib's and Kubeflow's own code: katib-controller with its webhooks
(:class:`kaip_testbed.katib.KatibController`), its DB manager on PostgreSQL and its goptuna suggestion
service (:class:`kaip_testbed.katib.KatibServices`; goptuna stands for the hyperopt image kaip's
katib-config names for ``random``, both draw at random), training-operator for the trials' TFJobs,
kube-controller-manager and kwok for the suggestion Deployment to become Available, kube-scheduler and
kwok for the Pods. :class:`kaip_testbed.trainingpods.TrainingPods` runs each trial's master container
and, beside it in a shared PID and mount namespace, the ``metrics-logger-and-collector`` sidecar
Katib's Pod webhook injected: the real ``file-metricscollector``, which waits for the training shell,
reads ``/tmp/hypertune/output.metrics`` and reports to the DB manager, from which Katib's Trial
controller reads each trial's observation.

The training module reports as cloudml-hypertune does (a JSON line per report, the metric's value as a
string, a float ``timestamp``) an objective it computes from its parameters, and records what it was
given; `jobs describe` must show those trials in gcloud's ``trainingOutput`` shape, best first, in
JSON, YAML and the ``--summarize`` tables. Proven: the metrics path (hypertune file -> collector ->
db-manager -> PostgreSQL -> Trial status) and the Experiment reaching Succeeded after 3 trials.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.kube.client import Kube
from kaip.resources import kubeflow as kf
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.gpu_nodes import GPUNode
from kaip_testbed.katib import CollectorSandboxes, KatibController, KatibServices
from kaip_testbed.kubeflow import KubeflowBed
from kaip_testbed.plugins import ai
from kaip_testbed.trainingpods import TrainingPods

pytestmark = pytest.mark.integration

NODES = (
    GPUNode("hp-a100-0", product="NVIDIA-A100-SXM4-80GB", kwok="kubeflow", kwok_taint=False),
    GPUNode("hp-a100-1", product="NVIDIA-A100-SXM4-80GB", kwok="kubeflow", kwok_taint=False),
)
JOB = "census_hp"
EXPERIMENT = "census-hp"
TAG = "accuracy"
HPTUNING = f"""
trainingInput:
  scaleTier: BASIC
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: {TAG}
    maxTrials: 3
    maxParallelTrials: 3
    algorithm: RANDOM_SEARCH
    params:
      - parameterName: learning-rate
        type: DOUBLE
        minValue: 0.001
        maxValue: 0.1
      - parameterName: layers
        type: INTEGER
        minValue: 1
        maxValue: 6
"""
TASK = '''
"""A tuning trial: computes its objective from its parameters and reports it as cloudml-hypertune
does (hypertune.HyperTune().report_hyperparameter_tuning_metric)."""
import argparse, json, os, time

parser = argparse.ArgumentParser()
parser.add_argument("--learning-rate", type=float, required=True)
parser.add_argument("--layers", type=int, required=True)
parser.add_argument("--record", required=True)
args, _ = parser.parse_known_args()
objective = round(1.0 - 50 * (args.learning_rate - 0.03) ** 2 - 0.01 * abs(args.layers - 4), 6)
time.sleep(1.0)  # training
path = os.environ["CLOUD_ML_HP_METRIC_FILE"]
os.makedirs(os.path.dirname(path), exist_ok=True)
line = {"timestamp": time.time(), "trial": os.environ["CLOUD_ML_TRIAL_ID"],
        os.environ["CLOUD_ML_HP_METRIC_TAG"]: str(objective), "global_step": "100", "checkpoint_path": ""}
with open(path, "a") as out:
    out.write(json.dumps(line) + "\\n")
with open(args.record, "a") as out:
    out.write(json.dumps({"trial": os.environ["CLOUD_ML_TRIAL_ID"], "learning-rate": args.learning_rate,
                          "layers": args.layers, "objective": objective}) + "\\n")
print("reported", objective, flush=True)
'''


@pytest.fixture(scope="module")
def bed(kwok: ControlPlane, admin_kube: Kube) -> Iterator[KubeflowBed]:
    bed = KubeflowBed(kwok, admin_kube, shape="training-operator", nodes=NODES)
    try:
        bed.start()
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="module")
def services(bed: KubeflowBed) -> Iterator[KatibServices]:
    svc = KatibServices(bed.plane.workdir / "katib-services")
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def katib(bed: KubeflowBed, admin_kube: Kube, services: KatibServices) -> Iterator[KatibController]:
    controller = KatibController(bed.plane, admin_kube, services=services)
    try:
        controller.start()
        yield controller
    finally:
        controller.stop()


def describe(capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, *flags: str) -> str:
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "describe", JOB, *flags)
    assert code == 0, err
    return out


def wait_succeeded(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, katib: KatibController, kube: Kube
) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        doc: dict[str, Any] = json.loads(describe(capsys, kubeconfig, namespace, "-o", "json"))
        if doc["state"] in ("SUCCEEDED", "FAILED"):
            return doc
        time.sleep(1)
    trials = [(t["metadata"]["name"], t.get("status")) for t in kube.list(kf.TRIALS)["items"]]
    raise AssertionError(
        f"{JOB} not done after 90s: {json.dumps(doc)[:3000]}\ntrials: {json.dumps(trials)[:4000]}\n"
        f"{katib.log_tail()}"
    )


def test_an_experiment_runs_three_trials_reports_through_the_collector_and_describes_the_best_first(
    katib: KatibController,
    services: KatibServices,
    bed: KubeflowBed,
    capsys: pytest.CaptureFixture[str],
    kube: Kube,
    kubeconfig: Path,
    namespace: str,
    tmp_path: Path,
) -> None:
    package = tmp_path / "src" / "trainer"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "task.py").write_text(textwrap.dedent(TASK))
    config = tmp_path / "hptuning_config.yaml"
    config.write_text(HPTUNING)
    record = tmp_path / "record.jsonl"
    services.route(namespace, EXPERIMENT, "random")  # cluster DNS for the suggestion Service
    sandboxes = CollectorSandboxes(services)
    with TrainingPods(
        kube,
        bed.plane,
        namespace=namespace,
        workdir=tmp_path / "kubelet",
        code=package.parent,
        sandbox=sandboxes,
    ):
        code, _, err = ai(
            capsys, kubeconfig, namespace,
            "jobs", "submit", "training", JOB, f"--config={config}", "--module-name=trainer.task",
            f"--package-path={package}", "--runtime-version=2.11", "--", f"--record={record}",
        )  # fmt: skip
        assert code == 0, err
        doc = wait_succeeded(capsys, kubeconfig, namespace, katib, kube)
    collected = sandboxes.collector_output()
    assert doc["state"] == "SUCCEEDED", (json.dumps(doc)[:3000], collected[-3000:], katib.log_tail())

    # What each trial's program was given and computed, by its parameters; each saw its own trial's
    # name as CLOUD_ML_TRIAL_ID, as AI Platform sets it.
    records = [json.loads(line) for line in record.read_text().splitlines()]
    ran = {(r["learning-rate"], r["layers"]): r for r in records}
    assert {r["trial"] for r in records} == {t["metadata"]["name"] for t in kube.list(kf.TRIALS)["items"]}
    assert len(ran) == 3 and len(sandboxes.made) == 3
    assert collected.count("Metrics reported.") == 3  # the real collector, to the real DB manager

    output = doc["trainingOutput"]
    assert output["completedTrialCount"] == "3"
    assert output["hyperparameterMetricTag"] == TAG and output["isHyperparameterTuningJob"] is True
    trials = output["trials"]
    assert {t["trialId"] for t in trials} == {t["metadata"]["name"] for t in kube.list(kf.TRIALS)["items"]}
    for trial in trials:
        given = trial["hyperparameters"]
        mine = ran[(float(given["learning-rate"]), int(given["layers"]))]
        assert trial["state"] == "SUCCEEDED"
        # The value Katib read back from its DB is the one the program reported.
        assert trial["finalMetric"]["objectiveValue"] == pytest.approx(mine["objective"])
        assert trial["startTime"] and trial["endTime"]
    best = max(ran.values(), key=lambda r: r["objective"])
    assert trials[0]["finalMetric"]["objectiveValue"] == pytest.approx(best["objective"])  # best first
    exp = kube.get(kf.EXPERIMENTS, EXPERIMENT)
    assert exp["status"]["currentOptimalTrial"]["bestTrialName"] == trials[0]["trialId"]  # Katib agrees
    values = [t["finalMetric"]["objectiveValue"] for t in trials]
    assert values == sorted(values, reverse=True)

    # The same in YAML, and the --summarize tables.
    assert yaml.safe_load(describe(capsys, kubeconfig, namespace))["trainingOutput"] == output
    text = describe(capsys, kubeconfig, namespace, "--summarize")
    assert "Trials (best first)" in text
    rows = [line for line in text.split("Trials (best first)", 1)[1].splitlines() if EXPERIMENT in line]
    assert len(rows) == 3
    assert trials[0]["trialId"] in rows[0] and f"{best['objective']:g}" in rows[0]

    # `jobs list` shows the job (not its trials' TFJobs) as before.
    code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "json")
    assert code == 0, err
    assert [(j["jobId"], j["state"]) for j in json.loads(out)["items"]] == [(JOB, "SUCCEEDED")]
