"""What `jobs describe --summarize` prints: gcloud's summary boxes of a job (overview, training input,
replicas, a tuning job's trials, failed replicas, why) and, for a failed job, its first failed
replica's last log lines. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kaip.aiplatform import failures
from kaip.aiplatform.views import JobView, local_time
from kaip.errors import shorten


def summary_sections(
    v: JobView, replicas: Sequence[tuple[str, str, str]]
) -> list[tuple[str, list[str], list[list[str]]]]:
    """gcloud's boxes of ``describe --summarize``: (title, headers, rows)."""
    overview = [
        [v.job_id, v.state.state, local_time(v.create_time), local_time(v.start_time), local_time(v.end_time)]
    ]
    ti = v.training_input
    inputs = [
        [
            str(ti.get("scaleTier", "")),
            str(ti.get("masterType", "")),
            str(ti.get("workerCount", 0)),
            str(ti.get("runtimeVersion", "")),
            str(ti.get("pythonModule", "") or (ti.get("masterConfig") or {}).get("imageUri", "")),
        ]
    ]
    sections = [
        ("Job Overview", ["job_id", "state", "create_time", "start_time", "end_time"], overview),
        (
            "Training Input Summary",
            ["scale_tier", "master_type", "worker_count", "runtime_version", "module_or_image"],
            inputs,
        ),
    ]
    if replicas:
        sections.append(("Replicas", ["task", "phase", "reason"], [list(r) for r in replicas]))
    if v.admission.queue or v.admission.gang:
        row = [v.admission.queue_cell(), v.admission.cluster_queue or "-", v.admission.gang_cell()]
        sections.append(("Scheduling", ["queue", "cluster_queue", "gang"], [row]))
    if v.training_output:
        sections += _tuning_sections(v.training_output)
    if v.failure and v.failure.replicas:
        rows = [
            [r.task, r.pod, r.container or "-", r.outcome(), shorten(r.headline(), 100) or "-"]
            for r in v.failure.replicas
        ]
        sections.append(("Failed Replicas", ["task", "pod", "container", "ended", "message"], rows))
    if v.state.reason:
        sections.append(("Why", ["state", "reason"], [[v.state.state, v.state.reason]]))
    return sections


def _tuning_sections(out: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """A tuning job's boxes: the counts, then its trials best first."""
    summary = [[str(out.get("completedTrialCount", "0")), str(out.get("hyperparameterMetricTag", ""))]]
    rows = []
    for trial in out.get("trials") or []:
        final = trial.get("finalMetric") or {}
        value = final.get("objectiveValue")
        params = ", ".join(f"{k}={v}" for k, v in (trial.get("hyperparameters") or {}).items())
        rows.append(
            [
                str(trial["trialId"]),
                str(trial["state"]),
                "" if value is None else f"{value:g}",
                str(final.get("trainingStep", "")),
                params,
            ]
        )
    return [
        ("Training Output Summary", ["completed_trial_count", "hyperparameter_metric_tag"], summary),
        (
            "Trials (best first)",
            ["trial_id", "state", "objective_value", "training_step", "hyperparameters"],
            rows,
        ),
    ]


def failure_text(failure: failures.Failure) -> str:
    """What follows the tables of a failed job: the first failed replica's last log lines, a note."""
    parts = []
    first = failure.replicas[0] if failure.replicas else None
    if first is not None and first.logs is not None:
        logs = first.logs
        where = f"{first.task} (Pod {first.pod}" + (
            f", container {first.container}" if first.container else ""
        )
        where += ", its run before the last restart)" if first.previous else ")"
        if logs.unavailable:
            parts.append(f"Log of {where}: logs not available: {logs.unavailable}")
        else:
            body = "\n".join(f"  {line}" for line in logs.lines)
            parts.append(f"Last {len(logs.lines)} log lines of {where}:\n{body}")
    stored = failure.stored
    if first is None and stored is not None and not stored.unavailable:
        body = "\n".join(f"  {line}" for line in stored.lines)
        parts.append(f"Last {len(stored.lines)} log lines of the job, from Loki:\n{body}")
    if failure.note:
        parts.append(f"Note: {failure.note}")
    return "\n\n".join(parts)
