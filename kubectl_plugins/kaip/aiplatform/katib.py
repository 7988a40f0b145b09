"""gcloud's ``trainingInput.hyperparameters`` -> a Katib Experiment (kubeflow.org/v1beta1) whose trials
are the job kind built for the same input, so unchanged AI Platform tuning code runs.

The trial's program gets each value as ``--NAME=VALUE`` (as AI Platform passes them) and
``CLOUD_ML_TRIAL_ID``; what ``cloudml-hypertune`` writes to ``/tmp/hypertune/output.metrics`` (JSON
lines) is read by Katib's File collector in JSON format. Pure.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping
from typing import Any

from kaip.errors import UsageError
from kaip.resources import kubeflow as kf

DEFAULT_METRIC_TAG = "training/hptuning/metric"
HYPERTUNE_FILE = "/tmp/hypertune/output.metrics"  # noqa: S108 - the path cloudml-hypertune writes
ALGORITHMS = {
    "ALGORITHM_UNSPECIFIED": "bayesianoptimization",
    "GRID_SEARCH": "grid",
    "RANDOM_SEARCH": "random",
    "POPULATION_BASED_TRAINING": "pbt",
}
TYPES = {"DOUBLE": "double", "INTEGER": "int", "CATEGORICAL": "categorical", "DISCRETE": "discrete"}
SCALES = {"NONE": None, "UNIT_LINEAR_SCALE": "uniform", "UNIT_LOG_SCALE": "logUniform"}
KNOWN = frozenset(
    {"goal", "hyperparameterMetricTag", "maxTrials", "maxParallelTrials", "maxFailedTrials",
     "enableTrialEarlyStopping", "algorithm", "params", "resumePreviousJobId"}
)  # fmt: skip
KNOWN_PARAM = frozenset(
    {"parameterName", "type", "minValue", "maxValue", "categoricalValues", "discreteValues", "scaleType"}
)
_SUCCEEDED = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
_FAILED = 'status.conditions.#(type=="Failed")#|#(status=="True")#'


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"hyperparameters: {what} must be a number, got {value!r}") from None


def _text(value: float | int | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _parameter(p: Mapping[str, Any], *, grid: bool, warnings: list[str]) -> tuple[dict[str, Any], int | None]:
    """One gcloud ParameterSpec as a Katib ParameterSpec, and its number of grid points."""
    unknown = sorted(set(p) - KNOWN_PARAM)
    name = str(p.get("parameterName") or "")
    if unknown:
        raise UsageError(f"hyperparameters.params[{name or '?'}]: {unknown[0]} is not a ParameterSpec field")
    if not name:
        raise UsageError("hyperparameters.params: every parameter needs a parameterName")
    ptype = str(p.get("type") or "")
    if ptype not in TYPES:
        raise UsageError(f"hyperparameter {name}: type must be one of {', '.join(TYPES)}, got {ptype!r}")
    if grid and ptype == "DOUBLE":
        raise UsageError(f"hyperparameter {name}: GRID_SEARCH takes only INTEGER, CATEGORICAL and DISCRETE")
    space: dict[str, Any] = {}
    points: int | None = None
    if ptype in ("DOUBLE", "INTEGER"):
        low = _number(p.get("minValue"), f"{name}.minValue")
        high = _number(p.get("maxValue"), f"{name}.maxValue")
        if low > high:
            raise UsageError(f"hyperparameter {name}: minValue {low} is above maxValue {high}")
        as_int = ptype == "INTEGER"
        space = {"min": _text(int(low) if as_int else low), "max": _text(int(high) if as_int else high)}
        if as_int and grid:
            space["step"] = "1"
            points = int(high) - int(low) + 1
    else:
        key = "categoricalValues" if ptype == "CATEGORICAL" else "discreteValues"
        values = list(p.get(key) or [])
        if not values:
            raise UsageError(f"hyperparameter {name}: {ptype} needs {key}")
        if ptype == "DISCRETE":
            numbers = [_number(v, f"{name}.discreteValues") for v in values]
            if any(b <= a for a, b in itertools.pairwise(numbers)):
                raise UsageError(f"hyperparameter {name}: discreteValues must be strictly increasing")
            values = numbers
        space = {"list": [_text(v) for v in values]}
        points = len(values)
    scale = str(p.get("scaleType") or "NONE")
    if scale == "UNIT_REVERSE_LOG_SCALE":
        warnings.append(
            f"hyperparameter {name}: UNIT_REVERSE_LOG_SCALE has no Katib equivalent; searched uniformly"
        )
        scale = "UNIT_LINEAR_SCALE"
    if scale not in SCALES:
        raise UsageError(f"hyperparameter {name}: scaleType {scale!r} is not known")
    if SCALES[scale] and ptype in ("DOUBLE", "INTEGER"):
        if SCALES[scale] == "logUniform" and float(space["min"]) <= 0:
            raise UsageError(f"hyperparameter {name}: UNIT_LOG_SCALE needs a strictly positive minValue")
        space["distribution"] = SCALES[scale]
    return {"name": name, "parameterType": TYPES[ptype], "feasibleSpace": space}, points


def trial_parameter_name(name: str) -> str:
    """Katib's ``${trialParameters.X}`` placeholder for a gcloud parameter name (``learning-rate``)."""
    return re.sub(r"[^A-Za-z0-9]", "_", name)


def _primary_pod_labels(kind: kf.JobKind) -> dict[str, str]:
    if kind is kf.JAXJOB:
        return {kf.LABEL_REPLICA_TYPE: "worker", kf.LABEL_REPLICA_INDEX: "0"}
    if kind is kf.MPIJOB:
        return {kf.LABEL_REPLICA_TYPE: "launcher"}
    return {kf.LABEL_JOB_ROLE: "master"}


def experiment(job: Mapping[str, Any], hp: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The Experiment whose trials run ``job`` with each trial's values, and warnings for the user."""
    unknown = sorted(set(hp) - KNOWN)
    if unknown:
        raise UsageError(f"hyperparameters.{unknown[0]} is not a HyperparameterSpec field")
    if hp.get("resumePreviousJobId"):
        raise UsageError(
            "hyperparameters.resumePreviousJobId: Katib cannot resume another job's study; remove it"
        )
    kind = kf.BY_KIND[str(job["kind"])]
    algorithm = str(hp.get("algorithm") or "ALGORITHM_UNSPECIFIED")
    if algorithm not in ALGORITHMS:
        raise UsageError(
            f"hyperparameters.algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}"
        )
    grid = algorithm == "GRID_SEARCH"
    warnings: list[str] = []
    params, points = [], 1
    for p in hp.get("params") or []:
        param, n = _parameter(p, grid=grid, warnings=warnings)
        params.append(param)
        points *= n or 1
    if not params:
        raise UsageError("hyperparameters.params: at least one parameter is needed")
    names = [p["name"] for p in params]
    if len(set(names)) != len(names):
        raise UsageError("hyperparameters.params: parameter names must be unique")
    max_trials = int(hp.get("maxTrials") or 1)
    if grid and max_trials > points:
        warnings.append(f"GRID_SEARCH has {points} points: maxTrials {max_trials} lowered to {points}")
        max_trials = points
    goal = str(hp.get("goal") or "MAXIMIZE").upper()
    if goal not in ("MAXIMIZE", "MINIMIZE"):
        raise UsageError(f"hyperparameters.goal must be MAXIMIZE or MINIMIZE, got {goal!r}")
    tag = str(hp.get("hyperparameterMetricTag") or DEFAULT_METRIC_TAG)
    spec: dict[str, Any] = {
        "objective": {
            "type": goal.lower(),
            "objectiveMetricName": tag,
            # AI Platform judges a trial by the last value it reported.
            "metricStrategies": [{"name": tag, "value": "latest"}],
        },
        "algorithm": {"algorithmName": ALGORITHMS[algorithm]},
        "parameters": params,
        "maxTrialCount": max_trials,
        "parallelTrialCount": int(hp.get("maxParallelTrials") or 1),
        "metricsCollectorSpec": {
            "source": {"fileSystemPath": {"path": HYPERTUNE_FILE, "kind": "File", "format": "JSON"}},
            "collector": {"kind": "File"},
        },
        "trialTemplate": _trial_template(job, kind, names, tag),
    }
    if int(hp.get("maxFailedTrials") or 0) > 0:
        spec["maxFailedTrialCount"] = int(hp["maxFailedTrials"])
    if hp.get("enableTrialEarlyStopping"):
        spec["earlyStopping"] = {"algorithmName": "medianstop"}
    meta = job["metadata"]
    metadata: dict[str, Any] = {
        "name": meta["name"],
        "labels": dict(meta.get("labels") or {}),
        "annotations": dict(meta.get("annotations") or {}),
    }
    if meta.get("namespace"):
        metadata["namespace"] = meta["namespace"]
    obj = {
        "apiVersion": kf.EXPERIMENTS.api_version,
        "kind": kf.EXPERIMENTS.kind,
        "metadata": metadata,
        "spec": spec,
    }
    return obj, warnings


def _trial_template(job: Mapping[str, Any], kind: kf.JobKind, names: list[str], tag: str) -> dict[str, Any]:
    trial_spec = {"apiVersion": job["apiVersion"], "kind": job["kind"], "spec": copy.deepcopy(job["spec"])}
    hp_args = [f"--{n}=${{trialParameters.{trial_parameter_name(n)}}}" for n in names]
    env = [
        {"name": "CLOUD_ML_TRIAL_ID", "value": "${trialSpec.Name}"},
        {"name": "CLOUD_ML_HP_METRIC_FILE", "value": HYPERTUNE_FILE},
        {"name": "CLOUD_ML_HP_METRIC_TAG", "value": tag},
    ]
    for replica in trial_spec["spec"][kind.replica_key].values():
        for container in replica["template"]["spec"]["containers"]:
            if kind is kf.MPIJOB and "command" not in container and "args" not in container:
                continue  # an MPI worker runs its image's SSH server
            container["args"] = [*container.get("args", []), *hp_args]
            container["env"] = [*container.get("env", []), *env]
    return {
        "primaryContainerName": kind.container,
        "primaryPodLabels": _primary_pod_labels(kind),
        "successCondition": _SUCCEEDED,
        "failureCondition": _FAILED,
        "retain": True,
        "trialParameters": [
            {"name": trial_parameter_name(n), "description": f"gcloud parameter {n}", "reference": n}
            for n in names
        ],
        "trialSpec": trial_spec,
    }
