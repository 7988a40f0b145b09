"""The controller's decisions for a PVC, on plain dicts: what it does, and that it does it once."""

from __future__ import annotations

import json
from typing import Any

from kaip.preload import jobs
from kaip.preload.contract import read_request
from kaip.preload.status import Condition
from kaip_incluster.controller.reconcile import (
    CreateJob,
    DeleteJob,
    Emit,
    EnsureAccess,
    Observed,
    RecordDigest,
    SetCondition,
    reconcile,
)

CONFIG = jobs.LoaderConfig()


def pvc(*, condition: tuple[str, str, str] | None = None, **annotations: str) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": "data",
            "namespace": "ml",
            "uid": "u-1",
            "annotations": {f"preload.kaip.dev/{k.replace('_', '-')}": v for k, v in annotations.items()},
        },
        "status": {},
    }
    if condition:
        status, reason, message = condition
        obj["status"]["conditions"] = [
            {"type": "DataLoaded", "status": status, "reason": reason, "message": message}
        ]
    return obj


def job_for(claim: dict[str, Any], *, state: str | None = None, reason: str = "") -> dict[str, Any]:
    request = read_request(claim)
    assert request is not None
    job = jobs.loader_job(claim, request, config=CONFIG)
    job["metadata"]["uid"] = "job-uid"
    if state:
        job["status"] = {"conditions": [{"type": state, "status": "True", "reason": reason, "message": "m"}]}
    return job


def loader_pod(exit_code: int, message: str, finished: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "message": message, "finishedAt": finished}
    return {"status": {"containerStatuses": [{"name": "loader", "state": {"terminated": terminated}}]}}


def conditions(actions: list[Any]) -> list[Condition]:
    return [a.condition for a in actions if isinstance(a, SetCondition)]


def events(actions: list[Any]) -> list[tuple[str, str]]:
    return [(a.type, a.reason) for a in actions if isinstance(a, Emit)]


def test_a_new_pvc_gets_its_job_its_access_a_pending_condition_and_an_event() -> None:
    claim = pvc(source="s3://bkt/set")
    actions = reconcile(Observed(pvc=claim), config=CONFIG)
    (create,) = [a for a in actions if isinstance(a, CreateJob)]
    assert create.manifest["metadata"]["name"] == job_for(claim)["metadata"]["name"]
    assert any(isinstance(a, EnsureAccess) for a in actions)
    (cond,) = conditions(actions)
    assert (cond.status, cond.reason) == ("Unknown", "Pending")
    assert events(actions) == [("Normal", "LoadStarted")]


def test_an_existing_job_is_never_made_twice_and_progress_is_left_to_the_loader() -> None:
    claim = pvc(source="s3://bkt/set", condition=("Unknown", "Loading", "3/10 objects, 30/100 bytes"))
    actions = reconcile(Observed(pvc=claim, jobs=[job_for(claim)]), config=CONFIG)
    assert actions == []


def test_a_forged_true_while_the_job_runs_is_set_back_to_unknown() -> None:
    claim = pvc(source="s3://bkt/set", condition=("True", "Succeeded", "forged"))
    actions = reconcile(Observed(pvc=claim, jobs=[job_for(claim)]), config=CONFIG)
    assert [(c.status, c.reason) for c in conditions(actions)] == [("Unknown", "Pending")]


def test_a_completed_job_makes_the_condition_true_and_records_the_digest_once() -> None:
    claim = pvc(source="s3://bkt/set", condition=("Unknown", "Loading", "9/10 objects, 90/100 bytes"))
    outcome = {
        "reason": "Succeeded",
        "message": "10/10 objects, 100/100 bytes; 10 copied",
        "digest": "sha256:ab",
    }
    seen = Observed(
        pvc=claim, jobs=[job_for(claim, state="Complete")], pods=[loader_pod(0, json.dumps(outcome))]
    )
    actions = reconcile(seen, config=CONFIG)
    (cond,) = conditions(actions)
    assert (cond.status, cond.reason, cond.message) == ("True", "Succeeded", outcome["message"])
    assert RecordDigest("sha256:ab") in actions
    assert events(actions) == [("Normal", "Loaded")]

    claim["metadata"]["annotations"]["preload.kaip.dev/loaded-digest"] = "sha256:ab"
    claim["status"]["conditions"] = [
        {"type": "DataLoaded", "status": "True", "reason": "Succeeded", "message": outcome["message"]}
    ]
    assert reconcile(seen, config=CONFIG) == []


def test_a_failed_job_gives_the_loaders_reason_and_the_way_to_retry() -> None:
    claim = pvc(source="s3://bkt/set", condition=("Unknown", "Loading", "0/0 objects, 0/0 bytes"))
    outcome = {"reason": "SourceNotFound", "message": "no objects under s3://bkt/set/"}
    seen = Observed(
        pvc=claim,
        jobs=[job_for(claim, state="Failed", reason="PodFailurePolicy")],
        pods=[loader_pod(3, json.dumps(outcome))],
    )
    actions = reconcile(seen, config=CONFIG)
    (cond,) = conditions(actions)
    assert (cond.status, cond.reason) == ("False", "SourceNotFound")
    assert "no objects under s3://bkt/set/" in cond.message
    assert "kubectl pvc-preload retry data" in cond.message
    assert events(actions) == [("Warning", "SourceNotFound")]
    assert not any(isinstance(a, CreateJob) for a in actions)


def test_a_job_that_failed_without_our_message_reports_the_jobs_reason() -> None:
    claim = pvc(source="s3://bkt/set")
    seen = Observed(
        pvc=claim,
        jobs=[job_for(claim, state="Failed", reason="DeadlineExceeded")],
        pods=[loader_pod(137, "OOMKilled")],
    )
    (cond,) = conditions(reconcile(seen, config=CONFIG))
    assert (cond.status, cond.reason) == ("False", "LoadFailed")
    assert "DeadlineExceeded" in cond.message


def test_a_missing_credentials_secret_is_reported_while_the_pod_cannot_start() -> None:
    claim = pvc(source="s3://bkt/set", credentials="gone", condition=("Unknown", "Pending", "waiting"))
    pod = {
        "status": {
            "containerStatuses": [
                {
                    "name": "loader",
                    "state": {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": 'secret "gone" not found',
                        }
                    },
                }
            ]
        }
    }
    (cond,) = conditions(reconcile(Observed(pvc=claim, jobs=[job_for(claim)], pods=[pod]), config=CONFIG))
    assert (cond.status, cond.reason) == ("False", "CredentialsNotFound")
    assert 'secret "gone" not found' in cond.message


def test_a_changed_source_replaces_the_job() -> None:
    old = pvc(source="s3://bkt/old")
    stale = job_for(old, state="Complete")
    claim = pvc(source="s3://bkt/new", condition=("True", "Succeeded", "old data"))
    actions = reconcile(Observed(pvc=claim, jobs=[stale]), config=CONFIG)
    assert DeleteJob(stale["metadata"]["name"], "job-uid") in actions
    (create,) = [a for a in actions if isinstance(a, CreateJob)]
    assert create.manifest["metadata"]["name"] != stale["metadata"]["name"]
    assert [(c.status, c.reason) for c in conditions(actions)] == [("Unknown", "Pending")]


def test_a_bad_annotation_is_reported_once_and_not_retried() -> None:
    claim = pvc(source="ftp://x/y")
    actions = reconcile(Observed(pvc=claim), config=CONFIG)
    (cond,) = conditions(actions)
    assert (cond.status, cond.reason) == ("False", "InvalidSource")
    assert "preload.kaip.dev/source" in cond.message
    assert events(actions) == [("Warning", "InvalidSource")]
    assert not any(isinstance(a, CreateJob) for a in actions)

    claim["status"]["conditions"] = [
        {"type": "DataLoaded", "status": "False", "reason": cond.reason, "message": cond.message}
    ]
    assert reconcile(Observed(pvc=claim), config=CONFIG) == []


def test_removing_the_annotation_stops_a_running_load() -> None:
    running = job_for(pvc(source="s3://bkt/x"))
    assert reconcile(Observed(pvc=pvc(), jobs=[running]), config=CONFIG) == [
        DeleteJob(running["metadata"]["name"], "job-uid")
    ]


def test_a_pvc_being_deleted_is_left_alone() -> None:
    claim = pvc(source="s3://bkt/x")
    claim["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert reconcile(Observed(pvc=claim), config=CONFIG) == []
