"""trainingInput.hyperparameters -> Katib Experiment, with AI Platform's sample hptuning_config.yaml."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kaip.aiplatform import katib, submit, training
from kaip.aiplatform.catalog import BUILTIN, Catalog
from kaip.aiplatform.manifests import ClusterOptions
from kaip.errors import UsageError

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
    assert c["args"] == [
        "--train-steps",
        "1000",
        "--first-layer-size=${trialParameters.first_layer_size}",
        "--num-layers=${trialParameters.num_layers}",
        "--scale-factor=${trialParameters.scale_factor}",
    ]
    assert {"name": "CLOUD_ML_TRIAL_ID", "value": "${trialSpec.Name}"} in c["env"]


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
        assert replica["template"]["spec"]["containers"][0]["args"][-1] == "--lr=${trialParameters.lr}"


def test_trial_parameter_names() -> None:
    assert katib.trial_parameter_name("learning-rate") == "learning_rate"
    assert katib.trial_parameter_name("lr") == "lr"
