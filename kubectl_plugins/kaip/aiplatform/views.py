"""What `jobs list` and `jobs describe` show: gcloud's Job view of a Kubeflow job (with a tuning job's
trainingOutput), and its filter and sort rules. The summary tables of `describe --summarize` are
:mod:`kaip.aiplatform.summary`. Pure."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kaip.aiplatform import failures, queueing, states, trainjobs
from kaip.errors import UsageError, shorten
from kaip.kube.objects import (
    annotations_of,
    conditions_of,
    labels_of,
    metadata,
    name_of,
    namespace_of,
    owner_of,
    spec_of,
    status_of,
)
from kaip.resources import kubeflow as kf
from kaip.resources import trainer
from kaip.resources.timestamps import parse


@dataclass(frozen=True)
class JobView:
    """One job as gcloud shows it, with where it lives on the cluster."""

    job_id: str
    name: str
    namespace: str
    kind: str
    state: states.JobState
    create_time: str
    start_time: str
    end_time: str
    labels: Mapping[str, str]
    training_input: Mapping[str, Any]
    #: Why a FAILED job failed: its failed replicas, from its Pods.
    failure: failures.Failure | None = None
    #: gcloud's TrainingOutput of a hyperparameter tuning job (its Trials), else empty.
    training_output: Mapping[str, Any] = field(default_factory=dict)
    #: Its queue (Kueue) and gang (PodGroup) state.
    admission: queueing.Admission = field(default_factory=queueing.Admission)

    def reason_line(self) -> str:
        """The REASON column of `jobs list -o wide`: one line, cut to fit."""
        text = self.failure.short() if self.failure else self.state.reason
        return shorten(text, failures.SHORT_CHARS)

    def document(self) -> dict[str, Any]:
        """gcloud's Job resource fields (-o json|yaml), plus where the job lives."""
        doc: dict[str, Any] = {
            "jobId": self.job_id,
            "state": self.state.state,
            "createTime": self.create_time,
        }
        if self.start_time:
            doc["startTime"] = self.start_time
        if self.end_time:
            doc["endTime"] = self.end_time
        if self.state.state == states.FAILED or self.state.state.startswith("CANCEL"):
            doc["errorMessage"] = self.state.reason
        elif self.state.reason:
            doc["stateReason"] = self.state.reason
        user_labels = {k: v for k, v in self.labels.items() if "/" not in k}
        if user_labels:
            doc["labels"] = user_labels
        if self.training_input:
            doc["trainingInput"] = dict(self.training_input)
        if self.training_output:
            doc["trainingOutput"] = dict(self.training_output)
        doc["kubernetes"] = {"kind": self.kind, "name": self.name, "namespace": self.namespace}
        if self.failure:
            doc["kubernetes"]["failure"] = self.failure.document()
        if self.admission.document():
            doc["kubernetes"]["scheduling"] = self.admission.document()
        return doc


def _input(obj: Mapping[str, Any]) -> dict[str, Any]:
    text = annotations_of(obj).get(kf.ANNOTATION_TRAINING_INPUT)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _end_time(obj: Mapping[str, Any]) -> str:
    status = status_of(obj)
    if status.get("completionTime"):
        return str(status["completionTime"])
    for cond in conditions_of(obj):
        if cond.get("type") in (kf.SUCCEEDED, kf.FAILED, trainer.COMPLETE) and cond.get("status") == "True":
            return str(cond.get("lastTransitionTime") or "")
    return ""


def experiment_state(exp: Mapping[str, Any]) -> states.JobState:
    if states.condition(exp, kf.SUCCEEDED):
        return states.JobState(states.SUCCEEDED)
    failed = states.condition(exp, kf.FAILED)
    if failed:
        return states.JobState(states.FAILED, str(failed.get("message") or ""))
    if states.condition(exp, kf.RUNNING):
        running = int(status_of(exp).get("trialsRunning") or 0)
        if running:
            return states.JobState(states.RUNNING, f"{running} trial(s) running")
        return states.JobState(states.PREPARING, "waiting for trials to start")
    return states.JobState(states.QUEUED, "waiting for Katib")


def view(
    obj: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    *,
    trials: Sequence[Mapping[str, Any]] | None = None,
    workloads: Sequence[Mapping[str, Any]] = (),
    podgroups: Sequence[Mapping[str, Any]] = (),
) -> JobView:
    """The job as gcloud shows it; an Experiment's ``trials``, when given, fill its trainingOutput;
    Kueue's ``workloads`` and the ``podgroups`` of the namespace say where it stands in its queue and gang."""
    labels = labels_of(obj)
    kind = str(obj.get("kind"))
    failure = None
    if kind == kf.EXPERIMENTS.kind:
        state = experiment_state(obj)
    else:
        state = states.job_state(obj, pods)
        if state.state == states.FAILED:
            failure = failures.failure(obj, pods, task_of=functools.partial(_task_of, kind))
            state = states.JobState(states.FAILED, failure.summary() if failure else state.reason)
    admission = queueing.admission(obj, workloads=workloads, podgroups=podgroups)
    if state.state == states.QUEUED and admission.queued_reason():
        state = states.JobState(states.QUEUED, admission.queued_reason())
    return JobView(
        job_id=str(labels.get(kf.LABEL_JOB_ID) or name_of(obj)),
        name=name_of(obj),
        namespace=namespace_of(obj),
        kind=kind,
        state=state,
        create_time=str(metadata(obj).get("creationTimestamp") or ""),
        start_time=str(status_of(obj).get("startTime") or ""),
        end_time=_end_time(obj),
        labels=labels,
        training_input=_input(obj),
        failure=failure,
        training_output=training_output(obj, trials) if trials is not None else {},
        admission=admission,
    )


# -- trainingOutput of a hyperparameter tuning job (an Experiment and its Trials) ------------------
#: The metric cloudml-hypertune writes beside the objective, read as the trial's training step when
#: the Experiment collects it.
STEP_METRIC = "global_step"
_TRIAL_STATES = (  # the first true Trial condition decides (Katib v1beta1 trial conditions)
    ("EarlyStopped", states.SUCCEEDED),
    (kf.SUCCEEDED, states.SUCCEEDED),
    ("MetricsUnavailable", states.FAILED),
    (kf.FAILED, states.FAILED),
    ("Killed", states.CANCELLED),
    (kf.RUNNING, states.RUNNING),
)


def _trial_state(trial: Mapping[str, Any]) -> str:
    for ctype, state in _TRIAL_STATES:
        if states.condition(trial, ctype):
            return state
    return states.QUEUED


def _observed(trial: Mapping[str, Any], name: str, strategy: str) -> str | None:
    """A metric's value as Katib observed it for the trial, by the Experiment's strategy for it."""
    metrics = (status_of(trial).get("observation") or {}).get("metrics") or []
    for metric in metrics:
        if metric.get("name") == name:
            value = metric.get({"min": "min", "max": "max"}.get(strategy, "latest"))
            return None if value in (None, "", "unavailable") else str(value)
    return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def trial_output(trial: Mapping[str, Any], *, metric: str, strategy: str = "latest") -> dict[str, Any]:
    """One Trial as gcloud's HyperparameterOutput (int64 fields as strings, as the API sends them)."""
    spec, status = spec_of(trial), status_of(trial)
    out: dict[str, Any] = {
        # The id the program saw: kaip sets CLOUD_ML_TRIAL_ID to the Trial's name.
        "trialId": name_of(trial),
        "hyperparameters": {
            str(a.get("name")): str(a.get("value")) for a in spec.get("parameterAssignments") or []
        },
    }
    if status.get("startTime"):
        out["startTime"] = str(status["startTime"])
    if status.get("completionTime"):
        out["endTime"] = str(status["completionTime"])
    out["state"] = _trial_state(trial)
    objective = _number(_observed(trial, metric, strategy))
    if objective is not None:
        final: dict[str, Any] = {}
        step = _number(_observed(trial, STEP_METRIC, "latest"))
        if step is not None:
            final["trainingStep"] = str(int(step))
        final["objectiveValue"] = objective
        out["finalMetric"] = final
    if states.condition(trial, "EarlyStopped"):
        out["isTrialStoppedEarly"] = True
    return out


def training_output(exp: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """gcloud's TrainingOutput of a hyperparameter tuning job from its Experiment and Trials: the
    trials best first (by ``finalMetric.objectiveValue`` and the goal; trials without a value last,
    by name), ``completedTrialCount`` the succeeded ones."""
    objective = spec_of(exp).get("objective") or {}
    metric = str(objective.get("objectiveMetricName") or "")
    strategies = {str(s.get("name")): str(s.get("value")) for s in objective.get("metricStrategies") or []}
    maximize = str(objective.get("type") or "maximize").lower() == "maximize"
    outs = [trial_output(t, metric=metric, strategy=strategies.get(metric, "latest")) for t in trials]

    def rank(out: Mapping[str, Any]) -> tuple[int, float, str]:
        value = (out.get("finalMetric") or {}).get("objectiveValue")
        if value is None:
            return (1, 0.0, out["trialId"])
        return (0, -value if maximize else value, out["trialId"])

    outs.sort(key=rank)
    doc: dict[str, Any] = {
        "completedTrialCount": str(sum(1 for o in outs if o["state"] == states.SUCCEEDED)),
        "trials": outs,
        "isHyperparameterTuningJob": True,
    }
    if metric:
        doc["hyperparameterMetricTag"] = metric
    return doc


def _task_of(kind: str, pod: Mapping[str, Any]) -> str:
    return task_name(pod, kind)


def is_trial_job(obj: Mapping[str, Any]) -> bool:
    """A job that a Katib Trial owns is shown through its Experiment, not on its own."""
    return owner_of(obj, kf.TRIALS.kind) is not None


@functools.lru_cache(maxsize=4096)
def local_time(stamp: str) -> str:
    """gcloud's ``createTime.date(tz=LOCAL)`` (jobs created in the same second share the work)."""
    when = parse(stamp)
    return when.astimezone().isoformat(timespec="seconds")[:19] if when else ""


# -- --filter and --sort-by (the subset of gcloud's projections that job lists use) ---------------
_TERM = re.compile(r"^(?P<key>[A-Za-z_][\w.\-/]*)\s*(?P<op>!=|=|:|<|>)\s*(?P<value>.*)$")
_KEYS = {"state": "state", "status": "state", "jobid": "jobId", "job_id": "jobId", "createtime": "createTime"}


def _field(v: JobView, key: str) -> str:
    if key.startswith("labels."):
        return str(v.labels.get(key[len("labels.") :], ""))
    name = _KEYS.get(key.lower())
    if name == "state":
        return v.state.state
    if name == "jobId":
        return v.job_id
    if name == "createTime":
        return v.create_time
    if key.startswith("trainingInput."):
        value: Any = v.training_input
        for part in key.split(".")[1:]:
            value = value.get(part) if isinstance(value, Mapping) else None
        return "" if value is None else str(value)
    raise UsageError(
        f"--filter/--sort-by: unknown key {key!r} (state, jobId, createTime, labels.KEY, trainingInput.FIELD)"
    )


def compile_filter(expr: str | None) -> Callable[[JobView], bool]:
    """``state=RUNNING AND labels.team:vision``: terms joined by AND (or spaces), each ``KEY OP VALUE``
    with OP one of ``=``, ``!=``, ``:`` (contains, case-insensitive), ``<``, ``>``."""
    if not expr or not expr.strip():
        return lambda _v: True
    terms = []
    for raw in re.split(r"\s+AND\s+|\s+(?=[A-Za-z_][\w.\-/]*\s*(?:!=|=|:|<|>))", expr.strip()):
        match = _TERM.match(raw.strip())
        if not match:
            raise UsageError(f"--filter: cannot read {raw!r} (expected KEY=VALUE, KEY:VALUE, KEY!=VALUE)")
        terms.append((match["key"], match["op"], match["value"].strip().strip("'\"")))

    def test(v: JobView) -> bool:
        for key, op, want in terms:
            have = _field(v, key)
            ok = {
                "=": have.lower() == want.lower(),
                "!=": have.lower() != want.lower(),
                ":": want.lower() in have.lower(),
                "<": have < want,
                ">": have > want,
            }[op]
            if not ok:
                return False
        return True

    for key, _, _ in terms:  # unknown keys fail now, not on the first row
        _field(JobView("", "", "", "", states.JobState(""), "", "", "", {}, {}), key)
    return test


def sort_views(views: list[JobView], sort_by: Sequence[str]) -> list[JobView]:
    """gcloud's ``--sort-by=~createTime,jobId`` (``~`` reverses); newest first by default."""
    keys = list(sort_by) or ["~createTime"]
    for key in reversed(keys):
        reverse = key.startswith("~")
        name = key.lstrip("~")
        views = sorted(views, key=functools.partial(_sort_key, name), reverse=reverse)
    return views


def _sort_key(name: str, v: JobView) -> str:
    return _field(v, name)


def now_text() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S")


def task_name(pod: Mapping[str, Any], kind: str) -> str:
    """gcloud's task name of a replica's Pod: ``master-replica-0``, ``worker-replica-2``, ``ps-replica-0``."""
    if kind == trainjobs.KIND:
        return trainjobs.task_name(pod)
    labels = labels_of(pod)
    # mpi-operator (MPIJob v2beta1) labels only the job role: launcher or worker.
    rtype = str(labels.get(kf.LABEL_REPLICA_TYPE) or labels.get(kf.LABEL_JOB_ROLE) or "").lower()
    try:
        index = int(labels.get(kf.LABEL_REPLICA_INDEX, 0))
    except ValueError:
        index = 0
    if kind == kf.JAXJOB.resource.kind and rtype == "worker":
        return "master-replica-0" if index == 0 else f"worker-replica-{index - 1}"
    role = {"master": "master", "chief": "master", "launcher": "master", "ps": "ps"}.get(
        rtype, rtype or "task"
    )
    return f"{role}-replica-{index}"
