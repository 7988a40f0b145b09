"""trainingInput.hyperparameters -> Katib Experiment, with AI Platform's sample hptuning_config.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip.aiplatform import katib, packages, submit, training
from kaip.aiplatform.builtin_catalog import BUILTIN
from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.manifests import ClusterOptions
from kaip.cli.app import run
from kaip.commands.ai_platform import cli
from kaip.errors import UsageError
from kaip.kube.errors import Forbidden, Invalid
from kaip_testbed.katib import katib_rewrite, run_container

# The census sample of GoogleCloudPlatform/cloudml-samples (hptuning_config.yaml), as users have it.
CENSUS_HPTUNING = """
trainingInput:
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
      - parameterName: num-layers
        type: INTEGER
        minValue: 1
        maxValue: 15
        scaleType: UNIT_LINEAR_SCALE
      - parameterName: scale-factor
        type: DOUBLE
        minValue: 0.1
        maxValue: 1.0
        scaleType: UNIT_REVERSE_LOG_SCALE
"""


def experiment(config_text: str, **flags: Any) -> submit.Plan:
    flags.setdefault("module_name", "trainer.task")
    framework = flags.pop("framework", "tensorflow")
    return submit.plan(
        flags=training.SubmitFlags(job_id="census_hp", args=("--train-steps", "1000"), **flags),
        config=training.read_config(config_text, source="hptuning_config.yaml"),
        options=ClusterOptions(framework=framework),
        catalog=Catalog(BUILTIN),
    )


def hp(**fields: Any) -> str:
    return yaml.safe_dump({"trainingInput": {"hyperparameters": fields}})


def test_census_sample_becomes_an_experiment() -> None:
    p = experiment(CENSUS_HPTUNING)
    exp = p.main
    assert exp["apiVersion"] == "kubeflow.org/v1beta1" and exp["kind"] == "Experiment"
    assert exp["metadata"]["name"] == "census-hp"
    spec = exp["spec"]
    assert spec["objective"] == {
        "type": "maximize",
        "objectiveMetricName": "accuracy",
        "metricStrategies": [{"name": "accuracy", "value": "latest"}],
    }
    assert spec["algorithm"] == {"algorithmName": "bayesianoptimization"}
    assert spec["maxTrialCount"] == 4 and spec["parallelTrialCount"] == 2
    assert "maxFailedTrialCount" not in spec
    assert spec["earlyStopping"] == {"algorithmName": "medianstop"}
    assert spec["parameters"] == [
        {
            "name": "first-layer-size",
            "parameterType": "int",
            "feasibleSpace": {"min": "50", "max": "500", "distribution": "uniform"},
        },
        {
            "name": "num-layers",
            "parameterType": "int",
            "feasibleSpace": {"min": "1", "max": "15", "distribution": "uniform"},
        },
        {
            "name": "scale-factor",
            "parameterType": "double",
            "feasibleSpace": {"min": "0.1", "max": "1", "distribution": "uniform"},
        },
    ]
    assert any("UNIT_REVERSE_LOG_SCALE" in w for w in p.warnings)
    # what cloudml-hypertune writes is what Katib reads
    assert spec["metricsCollectorSpec"] == {
        "source": {
            "fileSystemPath": {"path": "/tmp/hypertune/output.metrics", "kind": "File", "format": "JSON"}
        },
        "collector": {"kind": "File"},
    }


def test_trial_template_passes_values_as_gcloud_arguments() -> None:
    template = experiment(CENSUS_HPTUNING).main["spec"]["trialTemplate"]
    assert template["primaryContainerName"] == "tensorflow"
    assert template["primaryPodLabels"] == {"training.kubeflow.org/job-role": "master"}
    assert template["successCondition"] == 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
    assert template["trialParameters"][0] == {
        "name": "first_layer_size",
        "description": "gcloud parameter first-layer-size",
        "reference": "first-layer-size",
    }
    trial = template["trialSpec"]
    assert trial["kind"] == "TFJob" and "metadata" not in trial
    c = trial["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    # The module and every argument are written into the script (Katib joins command and args).
    assert "args" not in c
    assert c["command"] == [
        "sh",
        "-c",
        "set -e\npython -m trainer.task --train-steps 1000 '--first-layer-size=${trialParameters.first_layer_size}'"
        " '--num-layers=${trialParameters.num_layers}' '--scale-factor=${trialParameters.scale_factor}'",
    ]
    assert {"name": "CLOUD_ML_TRIAL_ID", "value": "${trialParameters.kaipTrialName}"} in c["env"]
    assert {"name": "kaipTrialName", "description": "the trial's name", "reference": "${trialSpec.Name}"} in (
        template["trialParameters"]
    )


def test_gcloud_defaults_not_katibs() -> None:
    spec = experiment(
        hp(
            params=[
                {
                    "parameterName": "lr",
                    "type": "DOUBLE",
                    "minValue": 0.001,
                    "maxValue": 0.1,
                    "scaleType": "UNIT_LOG_SCALE",
                }
            ]
        )
    ).main["spec"]
    assert spec["parallelTrialCount"] == 1  # gcloud's default, not Katib's 3
    assert spec["maxTrialCount"] == 1
    assert spec["objective"]["type"] == "maximize"
    assert spec["objective"]["objectiveMetricName"] == "training/hptuning/metric"
    assert spec["parameters"][0]["feasibleSpace"]["distribution"] == "logUniform"


def test_grid_search_steps_integers_and_clamps_max_trials() -> None:
    p = experiment(
        hp(
            algorithm="GRID_SEARCH",
            maxTrials=50,
            params=[
                {"parameterName": "layers", "type": "INTEGER", "minValue": 1, "maxValue": 3},
                {"parameterName": "opt", "type": "CATEGORICAL", "categoricalValues": ["sgd", "adam"]},
                {"parameterName": "batch", "type": "DISCRETE", "discreteValues": [16, 32, 64.5]},
            ],
        )
    )
    spec = p.main["spec"]
    assert spec["algorithm"] == {"algorithmName": "grid"}
    assert spec["parameters"][0]["feasibleSpace"] == {"min": "1", "max": "3", "step": "1"}
    assert spec["parameters"][1]["feasibleSpace"] == {"list": ["sgd", "adam"]}
    assert spec["parameters"][2] == {
        "name": "batch",
        "parameterType": "discrete",
        "feasibleSpace": {"list": ["16", "32", "64.5"]},
    }
    assert spec["maxTrialCount"] == 18
    assert any("lowered to 18" in w for w in p.warnings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "algorithm": "GRID_SEARCH",
                "params": [{"parameterName": "lr", "type": "DOUBLE", "minValue": 0, "maxValue": 1}],
            },
            "GRID_SEARCH takes only",
        ),
        (
            {"params": [{"parameterName": "b", "type": "DISCRETE", "discreteValues": [2, 1]}]},
            "strictly increasing",
        ),
        (
            {
                "params": [
                    {
                        "parameterName": "lr",
                        "type": "DOUBLE",
                        "minValue": 0,
                        "maxValue": 1,
                        "scaleType": "UNIT_LOG_SCALE",
                    }
                ]
            },
            "strictly positive",
        ),
        (
            {"params": [{"parameterName": "lr", "type": "FLOAT", "minValue": 0, "maxValue": 1}]},
            "type must be one of",
        ),
        (
            {"params": [{"parameterName": "lr", "type": "DOUBLE", "minValue": 2, "maxValue": 1}]},
            "is above maxValue",
        ),
        ({"params": []}, "at least one parameter"),
        (
            {
                "goal": "BEST",
                "params": [{"parameterName": "o", "type": "CATEGORICAL", "categoricalValues": ["a"]}],
            },
            "MAXIMIZE or MINIMIZE",
        ),
        (
            {
                "resumePreviousJobId": "old",
                "params": [{"parameterName": "o", "type": "CATEGORICAL", "categoricalValues": ["a"]}],
            },
            "cannot resume",
        ),
        ({"maxTrial": 3, "params": []}, "maxTrial is not a HyperparameterSpec field"),
    ],
)
def test_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as err:
        experiment(hp(**fields))
    assert message in str(err.value)


def test_minimize_and_failed_trials() -> None:
    spec = experiment(
        hp(
            goal="MINIMIZE",
            maxFailedTrials=3,
            algorithm="RANDOM_SEARCH",
            params=[{"parameterName": "o", "type": "CATEGORICAL", "categoricalValues": ["a", "b"]}],
        )
    ).main["spec"]
    assert spec["objective"]["type"] == "minimize"
    assert spec["maxFailedTrialCount"] == 3
    assert spec["algorithm"]["algorithmName"] == "random"


def test_pytorch_trials_pass_values_to_every_replica() -> None:
    p = experiment(
        hp(params=[{"parameterName": "lr", "type": "DOUBLE", "minValue": 0.01, "maxValue": 0.1}]),
        framework="pytorch",
        master_machine_type="n1-standard-4",
        worker_count=1,
        worker_machine_type="n1-standard-4",
    )
    trial = p.main["spec"]["trialTemplate"]["trialSpec"]
    for replica in trial["spec"]["pytorchReplicaSpecs"].values():
        script = replica["template"]["spec"]["containers"][0]["command"][2]
        assert script.endswith(" '--lr=${trialParameters.lr}'")


def test_trial_parameter_names() -> None:
    assert katib.trial_parameter_name("learning-rate") == "learning_rate"
    assert katib.trial_parameter_name("lr") == "lr"


# -- the trial's command through Katib's Pod webhook --------------------------------------------------
NOTE = 'it\'s a "quoted" note'
USER_ARGS = ("--train-steps", "1000", f"--note={NOTE}", "--empty=")


def packaged_experiment(config_text: str, *, framework: str = "tensorflow", **flags: Any) -> submit.Plan:
    return submit.plan(
        flags=training.SubmitFlags(
            job_id="census_hp", module_name="trainer.task", args=USER_ARGS, runtime_version="2.11", **flags
        ),
        config=training.read_config(config_text, source="hptuning_config.yaml"),
        options=ClusterOptions(framework=framework),
        catalog=Catalog(BUILTIN),
        local_files=[packages.LocalFile("trainer-0.0.0.tar.gz", b"sdist")],
    )


def trial_job(exp: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The trial job Katib makes: the placeholders replaced in the template's JSON text
    (pkg/controller.v1beta1/experiment/manifest/generator.go, applyParameters)."""
    template = exp["spec"]["trialTemplate"]
    text = json.dumps(template["trialSpec"])
    # A reference to the trial's own metadata (${trialSpec.Name}) is filled from the Trial.
    values = {**values, "${trialSpec.Name}": "census-hp-abcdefgh"}
    for p in template["trialParameters"]:
        text = text.replace(f"${{trialParameters.{p['name']}}}", values[p["reference"]])
    return json.loads(text)  # type: ignore[no-any-return]


GRID = hp(
    algorithm="GRID_SEARCH",
    enableTrialEarlyStopping=True,
    params=[
        {"parameterName": "layers", "type": "INTEGER", "minValue": 1, "maxValue": 3},
        {"parameterName": "optimizer", "type": "CATEGORICAL", "categoricalValues": ["sgd", "adam w"]},
    ],
)
VALUES = {"layers": "2", "optimizer": "adam w"}
INSTALL = ["-m", "pip", "install", "--quiet", "--no-cache-dir", "/kaip/packages/trainer-0.0.0.tar.gz"]
PROGRAM = ["-m", "trainer.task", *USER_ARGS, "--layers=2", "--optimizer=adam w"]


@pytest.mark.parametrize("early_stopping", [False, True], ids=["plain", "early-stopping"])
def test_the_primary_container_runs_the_module_and_writes_katibs_marker(
    tmp_path: Path, early_stopping: bool
) -> None:
    exp = packaged_experiment(GRID).main
    primary = trial_job(exp, VALUES)["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    wrapped = katib_rewrite(primary, early_stopping=early_stopping)
    ran = run_container(wrapped, tmp_path / "ok")
    assert ran.returncode == 0, ran.output
    assert ran.python_calls == [INSTALL, PROGRAM]  # installed, then the module with every argument intact
    assert ran.marker() == "completed\n"
    failed = run_container(wrapped, tmp_path / "failed", python_exit=3)
    assert failed.python_calls == [INSTALL, PROGRAM] and failed.marker() is None
    # Katib's early-stopping branch answers a failure with exit 1; without it the program's code comes back.
    assert failed.returncode == (1 if early_stopping else 3)


def test_other_replicas_run_the_same_command_unchanged(tmp_path: Path) -> None:
    exp = packaged_experiment(
        GRID, scale_tier="custom", master_machine_type="n1-standard-4", worker_count=1,
        worker_machine_type="n1-standard-4",
    ).main  # fmt: skip
    worker = trial_job(exp, VALUES)["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    ran = run_container(worker, tmp_path / "ok")  # Katib rewrites only the primary Pod
    assert (ran.returncode, ran.python_calls, ran.marker()) == (0, [INSTALL, PROGRAM], None)
    assert run_container(worker, tmp_path / "failed", python_exit=5).returncode == 5


def test_a_job_outside_katib_keeps_exec_and_its_arguments_unquoted(tmp_path: Path) -> None:
    job = submit.plan(
        flags=training.SubmitFlags(job_id="plain", module_name="trainer.task", args=USER_ARGS),
        config=None,
        options=ClusterOptions(),
        catalog=Catalog(BUILTIN),
    ).main
    c = job["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["sh", "-c", 'set -e\nexec python -m "$0" "$@"', "trainer.task"]
    assert c["args"] == list(USER_ARGS)
    ran = run_container(c, tmp_path / "ok", python_exit=7)
    assert ran.python_calls == [["-m", "trainer.task", *USER_ARGS]] and ran.returncode == 7
    # Why trials differ: Katib's rewrite of this form runs the module "sh" and never writes its marker.
    broken = run_container(katib_rewrite({**c, "args": ["--epochs=2"]}), tmp_path / "rewritten")
    assert broken.python_calls == [["-m", "sh", "trainer.task", "--epochs=2"]] and broken.marker() is None


def test_mpi_launcher_trials_run_mpirun_as_the_shells_child() -> None:
    lr = [{"parameterName": "lr", "type": "DOUBLE", "minValue": 0.1, "maxValue": 1}]
    exp = experiment(hp(params=lr), framework="mpi", worker_count=1, worker_machine_type="n1-standard-4",
                     master_machine_type="n1-standard-4", scale_tier="custom").main  # fmt: skip
    specs = exp["spec"]["trialTemplate"]["trialSpec"]["spec"]["mpiReplicaSpecs"]
    launcher = specs["Launcher"]["template"]["spec"]["containers"][0]
    last = launcher["command"][2].splitlines()[-1]
    assert last.startswith("mpirun ") and "exec" not in launcher["command"][2] and "args" not in launcher
    assert last.endswith(" python -m trainer.task --train-steps 1000 '--lr=${trialParameters.lr}'")
    worker = specs["Worker"]["template"]["spec"]["containers"][0]
    assert "command" not in worker and "args" not in worker  # the operator's sshd, untouched


def test_image_entrypoint_trials_are_warned_about() -> None:
    p = experiment(
        hp(params=[{"parameterName": "lr", "type": "DOUBLE", "minValue": 0.1, "maxValue": 1}]),
        module_name=None,
        master_image_uri="registry.local/train:1",
    )
    assert any("reads it from the image registry" in w for w in p.warnings)
    c = p.main["spec"]["trialTemplate"]["trialSpec"]["spec"]["tfReplicaSpecs"]["Master"]["template"]["spec"]
    assert c["containers"][0]["args"][-1] == "--lr=${trialParameters.lr}"


@pytest.mark.parametrize("value", ["it's", 'say "hi"', "back\\slash", "two\nlines"])
def test_values_katib_cannot_pass_are_refused(value: str) -> None:
    fields = {"params": [{"parameterName": "o", "type": "CATEGORICAL", "categoricalValues": ["a", value]}]}
    with pytest.raises(UsageError, match="Katib cannot pass"):
        experiment(hp(**fields))


def test_names_katib_would_refuse_are_refused() -> None:
    clash = [
        {"parameterName": "learning-rate", "type": "DOUBLE", "minValue": 0.1, "maxValue": 1},
        {"parameterName": "learning_rate", "type": "DOUBLE", "minValue": 0.1, "maxValue": 1},
    ]
    with pytest.raises(UsageError, match="Katib's placeholders: learning_rate, learning_rate"):
        experiment(hp(params=clash))
    with pytest.raises(UsageError, match="at most 40 characters"):
        submit.plan(
            flags=training.SubmitFlags(job_id="a" * 41, module_name="trainer.task"),
            config=training.read_config(hp(params=clash[:1]), source="hp.yaml"),
            options=ClusterOptions(),
            catalog=Catalog(BUILTIN),
        )


# -- the namespace label --------------------------------------------------------------------------
def test_namespace_label_decisions() -> None:
    assert katib.injection_enabled({"metadata": {"labels": {katib.INJECTION_LABEL: "enabled"}}})
    assert not katib.injection_enabled({"metadata": {"labels": {katib.INJECTION_LABEL: "disabled"}}})
    assert not katib.injection_enabled({"metadata": {}})
    assert katib.label_command("team a") == (
        "kubectl label namespace 'team a' katib.kubeflow.org/metrics-collector-injection=enabled"
    )
    refusal = (
        'admission webhook "validator.experiment.katib.kubeflow.org" denied the request: Cannot create the '
        'Experiment "x" in namespace "y": the namespace lacks label "katib.kubeflow.org/metrics-collector-'
        'injection: enabled"'
    )
    assert katib.refused_for_label(refusal) and not katib.refused_for_label("maxTrialCount must be > 0")


def test_client_dry_run_says_the_namespace_needs_the_label(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "hp.yaml"
    config.write_text(hp(params=[{"parameterName": "lr", "type": "DOUBLE", "minValue": 0.1, "maxValue": 1}]))
    argv = ["jobs", "submit", "training", "j", "--module-name=t.m", f"--config={config}", "--dry-run=client",
            "-n", "team-a"]  # fmt: skip
    assert run(cli, argv, prog_name="kubectl ai-platform") == 0
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "Katib" in x]
    assert line.endswith(
        "an admin runs: kubectl label namespace team-a katib.kubeflow.org/metrics-collector-injection=enabled"
    )


class NamespaceKube:
    """kaip's Kube as :func:`submit.enable_katib` uses it, over one namespace and Katib's webhook."""

    namespace = "team-a"

    def __init__(
        self, *, labelled: bool = False, may_read: bool = True, may_patch: bool = True, lag: int = 0
    ) -> None:
        self.labelled, self.may_read, self.may_patch, self.lag = labelled, may_read, may_patch, lag
        self.calls: list[str] = []

    def served(self, resource: Any) -> bool:
        return True

    def get(self, resource: Any, name: str) -> dict[str, Any]:
        self.calls.append(f"get {name}")
        if not self.may_read:
            raise Forbidden("namespaces is forbidden", status=403)
        labels = {katib.INJECTION_LABEL: "enabled"} if self.labelled else {}
        return {"metadata": {"name": name, "labels": labels}}

    def patch(self, resource: Any, name: str, patch: Any, *, dry_run: bool = False) -> dict[str, Any]:
        self.calls.append(f"patch {name}{' (dry run)' if dry_run else ''}")
        if not self.may_patch:
            raise Forbidden("namespaces is forbidden", status=403)
        assert patch == {"metadata": {"labels": {katib.INJECTION_LABEL: "enabled"}}}
        self.labelled = self.labelled or not dry_run
        return {}

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["query"]["dryRun"] == "All"
        self.calls.append("dry run")
        if not self.labelled or self.lag:
            self.lag = max(self.lag - 1, 0)
            raise Invalid(f'the namespace lacks label "{katib.INJECTION_LABEL}: enabled"', status=400)
        return {}


def enable(kube: NamespaceKube, *, server_dry_run: bool = False) -> list[str]:
    plan = experiment(hp(params=[{"parameterName": "lr", "type": "DOUBLE", "minValue": 0.1, "maxValue": 1}]))
    return submit.enable_katib(kube, plan, server_dry_run=server_dry_run, sleep=lambda _: None)  # type: ignore[arg-type]


def test_a_labelled_namespace_is_left_as_it_is() -> None:
    kube = NamespaceKube(labelled=True)
    assert enable(kube) == [] and kube.calls == ["get team-a"]


def test_kaip_labels_the_namespace_and_waits_for_katib_to_see_it() -> None:
    kube = NamespaceKube(lag=2)
    (said,) = enable(kube)
    assert said.startswith("labelled namespace team-a katib.kubeflow.org/metrics-collector-injection=enabled")
    assert kube.calls == ["get team-a", "patch team-a", "dry run", "dry run", "dry run"]


@pytest.mark.parametrize("may_read", [True, False], ids=["may-read", "may-not-read"])
def test_a_user_who_may_not_label_is_refused_in_one_line(may_read: bool) -> None:
    kube = NamespaceKube(may_read=may_read, may_patch=False)
    with pytest.raises(Forbidden) as refused:
        enable(kube)
    assert "\n" not in refused.value.message and refused.value.exit_code == 6
    assert refused.value.message.endswith(
        "ask a cluster admin to run: kubectl label namespace team-a "
        "katib.kubeflow.org/metrics-collector-injection=enabled"
    )
    assert kube.calls[-1] == "patch team-a" and ("dry run" in kube.calls) is not may_read


def test_a_user_who_may_not_read_namespaces_is_asked_about_by_katib() -> None:
    kube = NamespaceKube(labelled=True, may_read=False, may_patch=False)
    assert enable(kube) == [] and kube.calls == ["get team-a", "dry run"]


def test_a_server_dry_run_labels_nothing() -> None:
    kube = NamespaceKube()
    (said,) = enable(kube, server_dry_run=True)
    assert "which a dry run does not add" in said and kube.calls == ["get team-a", "patch team-a (dry run)"]
    assert not kube.labelled
