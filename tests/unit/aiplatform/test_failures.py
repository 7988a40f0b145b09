"""Why a Kubeflow job FAILED, from the job and its Pods: the replica, its exit code, its termination
message, what `jobs list -o wide` and `jobs describe` show of it."""

from __future__ import annotations

from typing import Any

from kaip.aiplatform import failures, jobs, summary, views
from kaip.aiplatform.failures import LogTail

FAILED_AT = "2026-01-02T03:10:00Z"
CONDITION = "TFJob ns/mnist has failed because 1 Worker replica(s) failed."


def job(*, failed: bool = True, clean_pod_policy: str | None = None) -> dict[str, Any]:
    conditions = [{"type": "Created", "status": "True"}]
    if failed:
        conditions.append(
            {
                "type": "Failed",
                "status": "True",
                "reason": "TFJobFailed",
                "message": CONDITION,
                "lastTransitionTime": FAILED_AT,
            }
        )
    else:
        conditions.append({"type": "Running", "status": "True"})
    spec: dict[str, Any] = {"tfReplicaSpecs": {"Master": {"replicas": 1}, "Worker": {"replicas": 2}}}
    if clean_pod_policy:
        spec["runPolicy"] = {"cleanPodPolicy": clean_pod_policy}
    return {
        "kind": "TFJob",
        "metadata": {"name": "mnist", "namespace": "ns", "creationTimestamp": "2026-01-02T03:00:00Z"},
        "spec": spec,
        "status": {"conditions": conditions},
    }


def ended(
    code: int, *, reason: str = "Error", message: str = "", at: str = "2026-01-02T03:09:58Z"
) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": code, "reason": reason, "finishedAt": at}
    if message:
        term["message"] = message
    return term


def pod(
    rtype: str,
    index: int,
    *,
    phase: str = "Failed",
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    init: dict[str, Any] | None = None,
    pod_status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "tensorflow", "state": state or {"running": {}}, "restartCount": 0}
    if last:
        cs["lastState"] = {"terminated": last}
        cs["restartCount"] = 1
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [cs], **(pod_status or {})}
    if init:
        status["initContainerStatuses"] = [{"name": "kaip-wait-for-peers", "state": {"terminated": init}}]
    labels = {
        "training.kubeflow.org/job-name": "mnist",
        "training.kubeflow.org/replica-type": rtype,
        "training.kubeflow.org/replica-index": str(index),
    }
    return {
        "metadata": {"name": f"mnist-{rtype}-{index}", "labels": labels},
        "spec": {"nodeName": "n1"},
        "status": status,
    }


def failure_of(j: dict[str, Any], pods: list[dict[str, Any]]) -> failures.Failure:
    found = views.view(j, pods).failure
    assert found is not None
    return found


def test_the_failed_worker_its_exit_code_and_termination_message() -> None:
    pods = [
        pod("master", 0, phase="Running"),
        pod("worker", 0, phase="Running"),
        pod("worker", 1, state={"terminated": ended(3, message="ValueError: bad shape (3, 4)\nmore detail")}),
    ]
    view = views.view(job(), pods)
    doc = view.document()
    assert doc["state"] == "FAILED"
    assert doc["errorMessage"] == (
        "The replica worker-replica-1 (Pod mnist-worker-1, container tensorflow) exited with code 3 (Error): "
        "ValueError: bad shape (3, 4)"
    )
    assert doc["kubernetes"]["failure"] == {
        "condition": CONDITION,
        "failedReplicas": [
            {
                "task": "worker-replica-1",
                "replica": "worker-1",
                "pod": "mnist-worker-1",
                "container": "tensorflow",
                "exitCode": 3,
                "reason": "Error",
                "terminationMessage": "ValueError: bad shape (3, 4)\nmore detail",
                "finishedAt": "2026-01-02T03:09:58Z",
            }
        ],
    }
    assert view.reason_line() == "worker-1 exit 3: ValueError: bad shape (3, 4)"


def test_a_python_traceback_is_summed_up_by_its_last_line() -> None:
    trace = "Traceback (most recent call last):\n  File \"task.py\", line 3, in <module>\nKeyError: 'label'\n"
    f = failure_of(job(), [pod("master", 0, state={"terminated": ended(1, message=trace)})])
    assert f.short() == "master-0 exit 1: KeyError: 'label'"


def test_the_wide_column_is_one_line_cut_to_fit() -> None:
    message = "RuntimeError: " + "x" * 300
    view = views.view(job(), [pod("worker", 0, state={"terminated": ended(1, message=message)})])
    line = view.reason_line()
    assert len(line) == failures.SHORT_CHARS and line.startswith("worker-0 exit 1: RuntimeError: xxx")
    assert line.endswith("…") and "\n" not in line


def test_the_replica_that_failed_first_leads_and_those_the_operator_stopped_after_it_follow() -> None:
    killed = ended(137, reason="Error", at="2026-01-02T03:10:05Z")  # after the job had failed
    pods = [
        pod("master", 0, state={"terminated": killed}),
        pod("worker", 0, state={"terminated": killed}),
        pod("worker", 1, state={"terminated": ended(2, message="disk full", at="2026-01-02T03:09:59Z")}),
    ]
    f = failure_of(job(), pods)
    assert [r.task for r in f.replicas] == ["worker-replica-1", "master-replica-0", "worker-replica-0"]
    assert f.summary().endswith("exited with code 2 (Error): disk full; 2 other replica(s) failed too")


def test_a_container_that_restarted_since_is_reported_from_its_last_state_and_read_with_previous() -> None:
    p = pod("worker", 0, phase="Running", last=ended(137, reason="OOMKilled"))
    f = failure_of(job(), [p])
    (replica,) = f.replicas
    assert replica.previous and replica.outcome() == "exit 137 (OOMKilled)"
    assert failures.log_query(replica) == {
        "container": "tensorflow",
        "tailLines": "20",
        "limitBytes": str(64 * 1024),
        "previous": "true",
    }
    # A replica that failed for good goes before one that failed once and started again.
    final = pod("worker", 1, state={"terminated": ended(1, at="2026-01-02T03:09:59Z")})
    assert failure_of(job(), [p, final]).replicas[0].task == "worker-replica-1"


def test_an_init_container_that_failed_is_named() -> None:
    p = pod(
        "worker",
        0,
        state={"waiting": {"reason": "PodInitializing"}},
        init=ended(1, message="master never came up"),
    )
    (replica,) = failure_of(job(), [p]).replicas
    assert (replica.container, replica.exit_code, replica.headline()) == (
        "kaip-wait-for-peers",
        1,
        "master never came up",
    )


def test_an_evicted_pod_has_no_exit_code_but_its_reason() -> None:
    p = pod(
        "worker",
        0,
        state={"waiting": {"reason": "ContainerCreating"}},
        pod_status={"reason": "Evicted", "message": "The node was low on resource: memory."},
    )
    f = failure_of(job(), [p])
    assert f.short() == "worker-0 Evicted: The node was low on resource: memory."
    assert f.replicas[0].document()["reason"] == "Evicted" and "exitCode" not in f.replicas[0].document()


def test_pods_deleted_by_clean_pod_policy_leave_the_condition_and_say_so() -> None:
    view = views.view(job(clean_pod_policy="All"), [])
    doc = view.document()
    assert doc["errorMessage"] == CONDITION
    assert doc["kubernetes"]["failure"] == {
        "condition": CONDITION,
        "note": "the job's Pods are gone (runPolicy.cleanPodPolicy: All): no exit code, termination message "
        "or log to show",
    }
    assert view.reason_line() == CONDITION and view.failure is not None
    assert "Note: the job's Pods are gone (runPolicy.cleanPodPolicy: All)" in summary.failure_text(
        view.failure
    )


def test_a_job_that_has_not_failed_has_no_failure() -> None:
    view = views.view(job(failed=False), [pod("worker", 0, phase="Running", last=ended(137))])
    assert view.failure is None and "failure" not in view.document()["kubernetes"]


def test_the_log_tail_is_bounded() -> None:
    text = "".join(f"line {i}\n" for i in range(50)) + "y" * 2000 + "\n"
    tail = failures.log_tail(text)
    assert len(tail.lines) == failures.LOG_TAIL_LINES and tail.lines[0] == "line 31"
    assert len(tail.lines[-1]) == failures.LOG_LINE_CHARS and tail.lines[-1].endswith("…")
    assert failures.log_tail("") == LogTail(unavailable="the container wrote no log")


def test_describe_shows_the_failed_replicas_and_the_log_tail_or_why_not() -> None:
    pods = [pod("worker", 1, state={"terminated": ended(3, message="ValueError: bad shape")})]
    view = views.view(job(), pods)
    assert view.failure is not None
    titles = {
        title: rows for title, _, rows in summary.summary_sections(view, jobs.replica_rows(job(), pods))
    }
    assert titles["Replicas"] == [["worker-replica-1", "Failed", "exit 3 (Error): ValueError: bad shape"]]
    assert titles["Failed Replicas"] == [
        ["worker-replica-1", "mnist-worker-1", "tensorflow", "exit 3 (Error)", "ValueError: bad shape"]
    ]

    with_logs = view.failure.with_logs(LogTail(lines=("step 10 loss nan", "ValueError: bad shape")))
    assert summary.failure_text(with_logs) == (
        "Last 2 log lines of worker-replica-1 (Pod mnist-worker-1, container tensorflow):\n"
        "  step 10 loss nan\n  ValueError: bad shape"
    )
    assert with_logs.document()["failedReplicas"][0]["lastLogLines"] == [
        "step 10 loss nan",
        "ValueError: bad shape",
    ]

    gone = view.failure.with_logs(
        LogTail(unavailable='Error from server (NotFound): pods "mnist-worker-1" not found')
    )
    assert summary.failure_text(gone) == (
        "Log of worker-replica-1 (Pod mnist-worker-1, container tensorflow): logs not available: "
        'Error from server (NotFound): pods "mnist-worker-1" not found'
    )
    assert gone.document()["failedReplicas"][0]["logsNotAvailable"].startswith("Error from server (NotFound)")
