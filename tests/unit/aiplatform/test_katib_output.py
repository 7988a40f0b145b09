"""gcloud's trainingOutput of a hyperparameter tuning job, from a Katib Experiment and its Trials."""

from __future__ import annotations

from typing import Any

from kaip.aiplatform import summary, views
from kaip.resources import kubeflow as kf


def experiment(goal: str = "maximize", strategy: str = "latest") -> dict[str, Any]:
    return {
        "kind": kf.EXPERIMENTS.kind,
        "metadata": {"name": "census-hp", "namespace": "ml", "labels": {kf.LABEL_JOB_ID: "census_hp"}},
        "spec": {
            "objective": {
                "type": goal,
                "objectiveMetricName": "accuracy",
                "metricStrategies": [{"name": "accuracy", "value": strategy}],
            }
        },
        "status": {"conditions": [{"type": "Succeeded", "status": "True"}]},
    }


def trial(
    name: str,
    *,
    lr: str,
    latest: str | None = None,
    conditions: tuple[str, ...] = ("Created", "Running", "Succeeded"),
    step: str | None = None,
    low: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "startTime": "2026-01-01T00:00:00Z",
        "conditions": [
            {"type": c, "status": "True" if i == len(conditions) - 1 else "False"}
            for i, c in enumerate(conditions)
        ],
    }
    if conditions[-1] in ("Succeeded", "Failed", "EarlyStopped"):
        status["completionTime"] = "2026-01-01T00:01:00Z"
    metrics = []
    if latest is not None:
        metrics.append({"name": "accuracy", "latest": latest, "min": low or latest, "max": latest})
    if step is not None:
        metrics.append({"name": views.STEP_METRIC, "latest": step, "min": "0", "max": step})
    if metrics:
        status["observation"] = {"metrics": metrics}
    return {
        "metadata": {"name": name},
        "spec": {
            "parameterAssignments": [{"name": "learning-rate", "value": lr}, {"name": "layers", "value": "3"}]
        },
        "status": status,
    }


def test_trials_are_gcloud_hyperparameter_outputs_best_first() -> None:
    trials = [
        trial("census-hp-a", lr="0.01", latest="0.80"),
        trial("census-hp-b", lr="0.03", latest="0.95", step="100"),
        trial("census-hp-c", lr="0.09", latest="0.70"),
    ]
    out = views.training_output(experiment(), trials)
    assert out["completedTrialCount"] == "3"  # int64: a string, as the API sends it
    assert out["hyperparameterMetricTag"] == "accuracy" and out["isHyperparameterTuningJob"] is True
    assert [t["trialId"] for t in out["trials"]] == ["census-hp-b", "census-hp-a", "census-hp-c"]
    assert out["trials"][0] == {
        "trialId": "census-hp-b",
        "hyperparameters": {"learning-rate": "0.03", "layers": "3"},
        "startTime": "2026-01-01T00:00:00Z",
        "endTime": "2026-01-01T00:01:00Z",
        "state": "SUCCEEDED",
        "finalMetric": {"trainingStep": "100", "objectiveValue": 0.95},
    }
    assert "trainingStep" not in out["trials"][1]["finalMetric"]  # no global_step collected


def test_minimize_puts_the_lowest_first_and_the_strategy_picks_the_value() -> None:
    trials = [trial("t-a", lr="1", latest="0.5", low="0.1"), trial("t-b", lr="2", latest="0.3")]
    assert [t["trialId"] for t in views.training_output(experiment("minimize"), trials)["trials"]] == [
        "t-b",
        "t-a",
    ]
    by_min = views.training_output(experiment("minimize", strategy="min"), trials)["trials"]
    assert [(t["trialId"], t["finalMetric"]["objectiveValue"]) for t in by_min] == [
        ("t-a", 0.1),
        ("t-b", 0.3),
    ]


def test_trials_without_a_value_come_last_with_their_states() -> None:
    trials = [
        trial("t-run", lr="1", conditions=("Created", "Running")),
        trial("t-fail", lr="2", conditions=("Created", "Running", "Failed")),
        trial(
            "t-nometric",
            lr="3",
            latest="unavailable",
            conditions=("Created", "Running", "MetricsUnavailable"),
        ),
        trial("t-early", lr="4", latest="0.2", conditions=("Created", "Running", "EarlyStopped")),
        trial("t-new", lr="5", conditions=("Created",)),
        trial("t-ok", lr="6", latest="0.9"),
    ]
    out = views.training_output(experiment(), trials)
    got = [(t["trialId"], t["state"], "finalMetric" in t) for t in out["trials"]]
    assert got == [
        ("t-ok", "SUCCEEDED", True),
        ("t-early", "SUCCEEDED", True),
        ("t-fail", "FAILED", False),
        ("t-new", "QUEUED", False),
        ("t-nometric", "FAILED", False),
        ("t-run", "RUNNING", False),
    ]
    assert out["trials"][1]["isTrialStoppedEarly"] is True
    assert out["completedTrialCount"] == "2"


def test_describe_shows_training_output_after_training_input_and_list_does_not() -> None:
    exp = experiment()
    with_trials = views.view(exp, [], trials=[trial("t-a", lr="0.1", latest="0.5")])
    doc = with_trials.document()
    assert list(doc).index("trainingOutput") == list(doc).index("kubernetes") - 1
    assert doc["trainingOutput"]["trials"][0]["trialId"] == "t-a"
    assert "trainingOutput" not in views.view(exp, []).document()  # `jobs list` reads no Trials
    assert views.view(exp, []).state == with_trials.state


def test_summarize_has_the_trials_table_best_first() -> None:
    v = views.view(
        experiment(), [], trials=[trial("t-a", lr="0.1", latest="0.5"), trial("t-b", lr="0.2", latest="0.75")]
    )
    sections = {title: (headers, rows) for title, headers, rows in summary.summary_sections(v, [])}
    assert sections["Training Output Summary"][1] == [["2", "accuracy"]]
    headers, rows = sections["Trials (best first)"]
    assert headers == ["trial_id", "state", "objective_value", "training_step", "hyperparameters"]
    assert rows == [
        ["t-b", "SUCCEEDED", "0.75", "", "learning-rate=0.2, layers=3"],
        ["t-a", "SUCCEEDED", "0.5", "", "learning-rate=0.1, layers=3"],
    ]
