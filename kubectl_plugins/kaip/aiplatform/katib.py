"""gcloud's ``trainingInput.hyperparameters`` -> a Katib Experiment (kubeflow.org/v1beta1) whose trials
are the job kind built for the same input, so unchanged AI Platform tuning code runs.

The trial's program gets each value as ``--NAME=VALUE`` (as AI Platform passes them) and
``CLOUD_ML_TRIAL_ID``; what ``cloudml-hypertune`` writes to ``/tmp/hypertune/output.metrics`` (JSON
lines) is read by Katib's File collector in JSON format. Pure.

Katib's Pod webhook rewrites the primary container of a trial's primary Pod (katib v0.19.0
``pkg/webhook/v1beta1/pod/utils.go`` ``wrapWorkerContainer``): it takes ``command + args`` (the
image's entrypoint when there is no command), drops a leading ``sh -c`` / ``bash -c``, joins the rest
with spaces, unquoted, appends ``&& echo completed > /tmp/hypertune/$$$$.pid`` (kubelet turns ``$$$$``
into ``$$``, the shell into its PID), and runs that one string as ``sh -c``. The File collector then fails the
trial unless the file named by the shell's PID says ``completed`` (``pkg/metricscollector/v1beta1/
common/pns.go``). A job's ``sh -c SCRIPT MODULE ARGS`` with ``exec python`` cannot survive that: the
module would be ``$0`` of the new shell (``sh``) and ``exec`` never comes back to write the marker.
So a trial's module command is rendered with the module and every argument written into the script,
shell-quoted, and python run as the shell's child (:func:`manifests.inline_module_command`): joined
or not, the same words reach the program, and the shell lives on to write the marker and to return
the program's exit code. The trial values sit in that script single-quoted, so values with a quote,
backslash or control character are refused (a ``"`` or ``\\`` would also break Katib's own
substitution, done in the template's JSON text).

Katib admits Experiments, and injects its collector, only in namespaces labelled
:data:`INJECTION_LABEL` ``=enabled`` (``pkg/webhook/v1beta1/experiment/validation_webhook.go``).
"""

from __future__ import annotations

import copy
import itertools
import re
import shlex
from collections.abc import Mapping
from typing import Any

from kaip.aiplatform.manifests import inline_module_command
from kaip.errors import UsageError
from kaip.kube.objects import annotations_of, labels_of, name_of, namespace_of
from kaip.resources import kubeflow as kf

DEFAULT_METRIC_TAG = "training/hptuning/metric"
#: The trial parameter that carries the trial's name into CLOUD_ML_TRIAL_ID.
TRIAL_NAME_PARAMETER = "kaipTrialName"
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
#: Katib refuses longer Experiment names (validator.go, ValidateExperiment).
MAX_EXPERIMENT_NAME = 40
INJECTION_LABEL = "katib.kubeflow.org/metrics-collector-injection"
_UNSAFE_VALUE = re.compile(r"['\"\\\x00-\x1f\x7f]")
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
        unsafe = next((v for v in values if _UNSAFE_VALUE.search(str(v))), None)
        if unsafe is not None:
            raise UsageError(
                f"hyperparameter {name}: value {str(unsafe)!r} has a quote, backslash or control "
                "character, which Katib cannot pass to a trial's command line"
            )
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
    if kind.framework == kf.MPIJOB.framework:  # v1 labels the replica type, v2beta1 the job role
        return {kind.role_label: "launcher"}
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
    kind = kf.kind_of(job)
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
    placeholders = [trial_parameter_name(n) for n in names]
    if len(set(placeholders)) != len(placeholders):
        raise UsageError(
            "hyperparameters.params: parameter names must differ in more than '-', '_' and '.' "
            f"(Katib's placeholders: {', '.join(placeholders)})"
        )
    if len(name_of(job)) > MAX_EXPERIMENT_NAME:
        raise UsageError(
            f"JOB {name_of(job)!r} is too long for hyperparameter tuning: Katib takes "
            f"Experiment names of at most {MAX_EXPERIMENT_NAME} characters"
        )
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
        "trialTemplate": _trial_template(job, kind, names, tag, warnings),
    }
    if int(hp.get("maxFailedTrials") or 0) > 0:
        spec["maxFailedTrialCount"] = int(hp["maxFailedTrials"])
    if hp.get("enableTrialEarlyStopping"):
        spec["earlyStopping"] = {"algorithmName": "medianstop"}
    metadata: dict[str, Any] = {
        "name": name_of(job),
        "labels": dict(labels_of(job)),
        "annotations": dict(annotations_of(job)),
    }
    if namespace_of(job):
        metadata["namespace"] = namespace_of(job)
    obj = {
        "apiVersion": kf.EXPERIMENTS.api_version,
        "kind": kf.EXPERIMENTS.kind,
        "metadata": metadata,
        "spec": spec,
    }
    return obj, warnings


def _trial_template(
    job: Mapping[str, Any], kind: kf.JobKind, names: list[str], tag: str, warnings: list[str]
) -> dict[str, Any]:
    trial_spec = {"apiVersion": job["apiVersion"], "kind": job["kind"], "spec": copy.deepcopy(job["spec"])}
    hp_args = [f"--{n}=${{trialParameters.{trial_parameter_name(n)}}}" for n in names]
    if TRIAL_NAME_PARAMETER in {trial_parameter_name(n) for n in names}:
        raise UsageError(
            f"hyperparameters.params: the name {TRIAL_NAME_PARAMETER!r} is kaip's own; rename it"
        )
    env = [
        # Katib fills in ${trialSpec.*} only as a trial parameter's reference (its manifest generator).
        {"name": "CLOUD_ML_TRIAL_ID", "value": f"${{trialParameters.{TRIAL_NAME_PARAMETER}}}"},
        {"name": "CLOUD_ML_HP_METRIC_FILE", "value": HYPERTUNE_FILE},
        {"name": "CLOUD_ML_HP_METRIC_TAG", "value": tag},
    ]
    for replica in trial_spec["spec"][kind.replica_key].values():
        for container in replica["template"]["spec"]["containers"]:
            if kind.framework == "mpi" and "command" not in container and "args" not in container:
                continue  # an MPI worker runs what its operator gives it (sshd; v1: sleep)
            args = [*container.get("args", []), *hp_args]
            inline = inline_module_command(container.get("command") or (), args)
            if inline is not None:
                container["command"] = inline
                container.pop("args", None)
            else:
                container["args"] = args
                if container["name"] == kind.container:
                    _warn_joined(container, warnings)
            container["env"] = [*container.get("env", []), *env]
    return {
        "primaryContainerName": kind.container,
        "primaryPodLabels": _primary_pod_labels(kind),
        "successCondition": _SUCCEEDED,
        "failureCondition": _FAILED,
        "retain": True,
        "trialParameters": [
            *(
                {"name": trial_parameter_name(n), "description": f"gcloud parameter {n}", "reference": n}
                for n in names
            ),
            {
                "name": TRIAL_NAME_PARAMETER,
                "description": "the trial's name",
                "reference": "${trialSpec.Name}",
            },
        ],
        "trialSpec": trial_spec,
    }


def _warn_joined(container: Mapping[str, Any], warnings: list[str]) -> None:
    """What Katib's rewrite does to a primary container that is not kaip's module command."""
    if "command" not in container:
        text = (
            "the trials run the image's entrypoint: Katib's Pod webhook reads it from the image "
            "registry, which the Katib controller must reach; --module-name avoids that"
        )
    elif any(shlex.quote(str(a)) != str(a) for a in container.get("args") or () if "${" not in str(a)):
        text = (
            "Katib's Pod webhook joins the trial container's command and arguments with spaces into "
            "one shell line: arguments with spaces, quotes or shell characters are split or changed"
        )
    else:
        return
    if text not in warnings:
        warnings.append(text)


# -- the namespace label Katib requires ----------------------------------------------------------
def injection_enabled(namespace: Mapping[str, Any]) -> bool:
    """Whether a Namespace object carries the label that Katib's webhooks require."""
    return labels_of(namespace).get(INJECTION_LABEL) == "enabled"


def label_patch() -> dict[str, Any]:
    """The merge patch that enables Katib in a namespace."""
    return {"metadata": {"labels": {INJECTION_LABEL: "enabled"}}}


def label_command(namespace: str) -> str:
    return f"kubectl label namespace {shlex.quote(namespace)} {INJECTION_LABEL}=enabled"


def refused_for_label(message: str) -> bool:
    """Whether an admission refusal is Katib's "the namespace lacks label" (validation_webhook.go)."""
    return INJECTION_LABEL in message or "lacks label" in message


def dry_run_note(namespace: str | None) -> str:
    """What a client dry run says instead of looking at the namespace."""
    ns = namespace or "NAMESPACE"
    return (
        f"Katib runs Experiments only in namespaces labelled {INJECTION_LABEL}=enabled; kaip adds the "
        f"label when you may, else an admin runs: {label_command(ns)}"
    )
