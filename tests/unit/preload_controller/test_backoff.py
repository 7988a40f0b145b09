"""The requeue policy both controllers share, and how each loop uses it.

The policy (kaip_incluster.requeue) is pure: its clock and random source are injected, so every
delay here is exact. The loops are driven against fakes of our own ``Kube`` seam (see their
docstrings): a real API server is in tests/integration/preload/test_controller_retries.py.
"""

from __future__ import annotations

import builtins
import itertools
from typing import TYPE_CHECKING, Any, cast

import pytest

from kaip.errors import KaipError, UnreachableError
from kaip.kube.errors import Conflict, Forbidden, Invalid, NotFound, ServerError
from kaip.resources import kinds
from kaip.resources import nodes as node_names
from kaip.resources import preload as preload_names
from kaip.resources import remediation as remediation_names
from kaip.resources.kinds import Resource
from kaip_incluster.controller.loop import Controller
from kaip_incluster.controller.loop import Settings as LoaderSettings
from kaip_incluster.controller.workqueue import Key
from kaip_incluster.remediation.loop import Reconciler
from kaip_incluster.remediation.loop import Settings as RemediationSettings
from kaip_incluster.requeue import (
    REASON_BACKOFF,
    REASON_FAILED,
    Backoff,
    RequeuePolicy,
    metrics_text,
)

if TYPE_CHECKING:
    from kaip.kube.client import Kube


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def forbidden(text: str = "jobs.batch is forbidden") -> Forbidden:
    return Forbidden(f"Error from server (Forbidden): {text}", status=403, reason="Forbidden")


def unavailable() -> ServerError:
    return ServerError("Error from server (ServiceUnavailable): try later", status=503)


# -- the policy -------------------------------------------------------------------------------------
def test_a_temporary_error_backs_off_doubling_per_key_up_to_the_cap() -> None:
    backoff: Backoff[str] = Backoff(RequeuePolicy(base=0.5, factor=2, cap=5), rng=lambda: 1.0)
    delays = [backoff.next_delay("a", unavailable()) for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.next_delay("b", unavailable()) == 0.5  # per key
    assert backoff.failures("a") == 6 and backoff.failures("b") == 1


def test_the_delay_never_overflows_however_many_failures() -> None:
    assert RequeuePolicy(cap=300).ceiling(100_000) == 300


@pytest.mark.parametrize("draw", [0.0, 0.3, 0.999])
def test_equal_jitter_stays_within_half_and_all_of_the_delay(draw: float) -> None:
    policy = RequeuePolicy(base=1, factor=2, cap=60)
    for failures in range(1, 10):
        top = policy.ceiling(failures)
        assert top / 2 <= policy.delay(failures, rng=lambda: draw) <= top


def test_full_jitter_stays_within_zero_and_the_delay() -> None:
    policy = RequeuePolicy(base=1, factor=2, cap=60, jitter="full")
    assert policy.delay(3, rng=lambda: 0.0) == 0.0
    assert policy.delay(3, rng=lambda: 0.5) == 2.0
    assert policy.delay(10, rng=lambda: 0.999) <= 60


def test_success_resets_the_back_off() -> None:
    backoff: Backoff[str] = Backoff(RequeuePolicy(base=0.5), rng=lambda: 1.0)
    for _ in range(4):
        backoff.next_delay("a", Conflict("lost a race", status=409))
    backoff.forget("a")
    assert backoff.failures("a") == 0
    assert backoff.next_delay("a", Conflict("lost a race", status=409)) == 0.5


@pytest.mark.parametrize(
    "error", [forbidden(), Invalid("refused", status=422), NotFound("gone", status=404), KaipError("no")]
)
def test_a_permanent_error_gives_no_delay_and_holds_the_key(error: KaipError) -> None:
    clock = Clock()
    backoff: Backoff[str] = Backoff(clock=clock)
    assert backoff.next_delay("a", error, version="7") is None
    clock.now += 3600
    assert backoff.held("a", version="7")
    assert backoff.held("a")  # a resync that does not know the version changes nothing
    assert backoff.counts() == (0, 1)


def test_an_object_change_clears_a_held_key() -> None:
    backoff: Backoff[str] = Backoff()
    backoff.next_delay("a", forbidden(), version="7")
    assert not backoff.held("a", version="8")  # the resync saw another resourceVersion
    assert backoff.failures("a") == 0 and not backoff.held("a", version="7")
    backoff.next_delay("b", forbidden(), version="7")
    backoff.forget("b")  # a watch event
    assert not backoff.held("b")


def test_a_temporary_key_is_held_only_until_its_delay_is_over() -> None:
    clock = Clock()
    backoff: Backoff[str] = Backoff(RequeuePolicy(base=2), rng=lambda: 1.0, clock=clock)
    assert backoff.next_delay("a", UnreachableError("connection refused"), version="1") == 2
    assert backoff.held("a", version="1")
    assert backoff.counts() == (1, 0)
    clock.now += 2.5
    assert not backoff.held("a", version="1")
    assert backoff.failures("a") == 1  # the count goes on until a success


def test_retain_forgets_keys_of_objects_that_are_gone() -> None:
    backoff: Backoff[str] = Backoff()
    backoff.next_delay("a", forbidden())
    backoff.next_delay("b", unavailable())
    backoff.retain({"b"})
    assert backoff.counts() == (1, 0)


def test_metrics_count_retries_and_held_errors_by_reason() -> None:
    backoff: Backoff[str] = Backoff()
    backoff.next_delay("a", unavailable())
    backoff.next_delay("a", unavailable())
    backoff.next_delay("b", forbidden())
    text = metrics_text("kaip_preload", backoff)
    assert (
        '# TYPE kaip_preload_retries_total counter\nkaip_preload_retries_total{reason="ServerError"} 2\n'
        in text
    )
    assert 'kaip_preload_permanent_errors_total{reason="Forbidden"} 1\n' in text
    assert 'kaip_preload_backoff_keys{kind="temporary"} 1\n' in text
    assert 'kaip_preload_backoff_keys{kind="permanent"} 1\n' in text


def test_a_notice_names_the_class_and_the_next_attempt_and_waits_for_a_repeat() -> None:
    policy = RequeuePolicy(report_after=3)
    assert policy.notice(unavailable(), delay=1.0, failures=2, what="PVC") is None
    reason, message = cast("tuple[str, str]", policy.notice(unavailable(), delay=2.0, failures=3, what="PVC"))
    assert reason == REASON_BACKOFF
    assert message.startswith("ServerError: ") and "next attempt in 2.0s" in message
    reason, message = cast(
        "tuple[str, str]", policy.notice(forbidden("x" * 5000), delay=None, failures=1, what="PVC")
    )
    assert reason == REASON_FAILED and message.endswith("not tried again until the PVC changes")
    assert len(message) < 400  # the server's text is cut short


# -- the data-loader controller's loop --------------------------------------------------------------
class FakeLoaderKube:
    """A fake of our own ``Kube`` seam for the data-loader loop: one namespace of PVCs, Jobs and
    Events in memory; ``fail_jobs`` is raised by every Job create. Unit tests only."""

    def __init__(self) -> None:
        self.pvcs: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.fail_jobs: KaipError | None = None
        self.job_creates = 0
        self._versions = itertools.count(100)

    def add_pvc(self, name: str) -> dict[str, Any]:
        self.pvcs[name] = {
            "metadata": {
                "name": name,
                "namespace": "ml",
                "uid": f"uid-{name}",
                "resourceVersion": str(next(self._versions)),
                "annotations": {preload_names.ANNOTATION_SOURCE: "s3://bucket/data"},
            },
            "spec": {"accessModes": ["ReadWriteOnce"]},
        }
        return self.pvcs[name]

    def get(self, resource: Resource, name: str, **_: Any) -> dict[str, Any]:
        found = self.pvcs.get(name) if resource is kinds.PVCS else self.jobs.get(name)
        if found is None:
            raise NotFound(f"{name} not found", status=404, details={"name": name})
        return {**found, "metadata": dict(found["metadata"])}

    def list(self, resource: Resource, **_: Any) -> dict[str, Any]:
        return {"items": list(self.jobs.values()) if resource is kinds.JOBS else []}

    def create(self, resource: Resource, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        if resource is kinds.EVENTS:
            self.events.append(obj)
        elif resource is kinds.JOBS:
            self.job_creates += 1
            if self.fail_jobs is not None:
                raise self.fail_jobs
            self.jobs[obj["metadata"]["name"]] = obj
        return obj

    def patch(self, resource: Resource, name: str, patch: dict[str, Any], **_: Any) -> dict[str, Any]:
        pvc = self.pvcs[name]
        if "status" in patch:
            pvc["status"] = patch["status"]
        pvc["metadata"]["resourceVersion"] = str(next(self._versions))
        return pvc

    def delete(self, resource: Resource, name: str, **_: Any) -> None:
        self.jobs.pop(name, None)

    def reasons(self) -> builtins.list[str]:
        return [e["reason"] for e in self.events if e["type"] == "Warning"]


@pytest.fixture
def loader() -> tuple[Controller, FakeLoaderKube]:
    kube = FakeLoaderKube()
    kube.add_pvc("data")
    # A tiny base so that requeued keys come back within the test; rng=1: the delay is exact.
    backoff: Backoff[Key] = Backoff(RequeuePolicy(base=0.01, cap=0.04), rng=lambda: 1.0)
    return Controller(cast("Kube", kube), LoaderSettings(), backoff=backoff), kube


KEY: Key = ("pvc", "ml", "data")


def taken(controller: Controller, *, timeout: float) -> Key | None:
    """The next key, as a worker takes it (and is done with it before it works: one worker here)."""
    key = controller.queue.get(timeout=timeout)
    if key is not None:
        controller.queue.done(key)
    return key


def test_a_forbidden_job_is_not_retried_until_the_pvc_changes(
    loader: tuple[Controller, FakeLoaderKube],
) -> None:
    controller, kube = loader
    kube.fail_jobs = forbidden('jobs.batch "kaip-load-data" is forbidden: exceeded quota')
    controller.work(KEY)
    assert kube.job_creates == 1
    assert taken(controller, timeout=0.2) is None  # not requeued
    assert kube.reasons() == [REASON_FAILED]
    assert "not tried again until the PVC changes" in kube.events[-1]["message"]
    assert kube.events[-1]["involvedObject"]["uid"] == "uid-data"

    # The resync sees the PVC as the failed attempt left it (its own condition write included
    # or not, the version moved once): at most one more attempt, then nothing.
    controller._on_pvc("RESYNC", kube.pvcs["data"])
    while (key := taken(controller, timeout=0.05)) is not None:
        controller.work(key)
    tries = kube.job_creates
    for _ in range(3):
        controller._on_pvc("RESYNC", kube.pvcs["data"])
        assert taken(controller, timeout=0.05) is None
    assert kube.job_creates == tries
    assert kube.reasons() == [REASON_FAILED]  # told once, not once per attempt
    assert 'kaip_preload_permanent_errors_total{reason="Forbidden"}' in controller.metrics.text()
    assert 'kaip_preload_backoff_keys{kind="permanent"} 1' in controller.metrics.text()

    # A change of the PVC (a watch event) runs it at once; the quota is gone by now.
    kube.fail_jobs = None
    kube.pvcs["data"]["metadata"]["resourceVersion"] = "999"
    controller._on_pvc("MODIFIED", kube.pvcs["data"])
    assert taken(controller, timeout=0.05) == KEY
    controller.work(KEY)
    assert len(kube.jobs) == 1
    assert 'kaip_preload_backoff_keys{kind="permanent"} 0' in controller.metrics.text()


def test_a_resync_with_a_new_resource_version_runs_a_held_key(
    loader: tuple[Controller, FakeLoaderKube],
) -> None:
    controller, kube = loader
    kube.fail_jobs = forbidden()
    controller.work(KEY)
    controller._on_pvc("RESYNC", {**kube.pvcs["data"], "metadata": {**kube.pvcs["data"]["metadata"]}})
    taken(controller, timeout=0.05)  # the one extra look after its own status write
    controller.work(KEY)
    pvc = kube.pvcs["data"]
    controller._on_pvc("RESYNC", pvc)
    assert taken(controller, timeout=0.05) is None
    pvc["metadata"]["resourceVersion"] = "12345"  # someone edited it while the watch was broken
    controller._on_pvc("RESYNC", pvc)
    assert taken(controller, timeout=0.05) == KEY


def test_a_server_error_is_retried_with_growing_delays_and_told_once(
    loader: tuple[Controller, FakeLoaderKube],
) -> None:
    controller, kube = loader
    kube.fail_jobs = unavailable()
    controller.work(KEY)
    for _ in range(4):
        key = taken(controller, timeout=1.0)  # comes back by itself after its back-off
        assert key == KEY
        controller.work(key)
    assert kube.job_creates == 5
    assert controller.backoff.failures(KEY) == 5
    # One Event from the third failure in a row on; the same reason is not told again.
    assert kube.reasons() == [REASON_BACKOFF]
    assert kube.events[-1]["message"].startswith("ServerError: ")
    assert "failed 3 times in a row, next attempt in 0.0s" in kube.events[-1]["message"]
    assert 'kaip_preload_retries_total{reason="ServerError"} 5' in controller.metrics.text()

    # A resync does not cut a back-off short.
    controller.backoff = Backoff(RequeuePolicy(base=60), rng=lambda: 1.0)
    controller.metrics.backoff = controller.backoff
    controller.work(taken(controller, timeout=1.0) or KEY)
    controller._on_pvc("RESYNC", kube.pvcs["data"])
    assert taken(controller, timeout=0.05) is None

    # Success forgets the key: the next failure starts over and would be told again.
    kube.fail_jobs = None
    controller.work(KEY)
    assert controller.backoff.failures(KEY) == 0 and len(kube.jobs) == 1
    assert controller._told == {}


def test_another_reason_is_told_again(loader: tuple[Controller, FakeLoaderKube]) -> None:
    controller, kube = loader
    kube.fail_jobs = unavailable()
    for _ in range(3):
        controller.work(KEY)
    kube.fail_jobs = forbidden()
    controller.work(KEY)
    assert kube.reasons() == [REASON_BACKOFF, REASON_FAILED]


# -- the remediation controller's loop --------------------------------------------------------------
class FakeRemediationKube:
    """A fake of our own ``Kube`` seam for the remediation rounds: Nodes, NodeRemediations and
    Events in memory, the RemediationConfig empty; ``fail_records`` is raised by every
    NodeRemediation create. Unit tests only."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.remediations: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.fail_records: KaipError | None = None
        self.record_creates = 0
        self.config = {
            "apiVersion": remediation_names.CONFIGS.api_version,
            "kind": remediation_names.CONFIGS.kind,
            "metadata": {"name": remediation_names.CONFIG_NAME, "uid": "cfg", "resourceVersion": "1"},
            "spec": {},
        }

    def add_problem_node(self, name: str) -> dict[str, Any]:
        """A node with a problem condition no rule handles: its round writes an Unhandled record."""
        self.nodes[name] = {
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"},
            "spec": {},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {
                        "type": node_names.GPU_IS_LOST,
                        "status": "True",
                        "lastTransitionTime": "2024-01-01T00:00:00Z",
                    },
                ]
            },
        }
        return self.nodes[name]

    def get(self, resource: Resource, name: str, **_: Any) -> dict[str, Any]:
        if resource is remediation_names.CONFIGS:
            return self.config
        if resource is kinds.NODES and name in self.nodes:
            return self.nodes[name]
        raise NotFound(f"{name} not found", status=404, details={"name": name})

    def list_all(self, resource: Resource, **_: Any) -> list[dict[str, Any]]:
        if resource is kinds.NODES:
            return list(self.nodes.values())
        if resource is remediation_names.REMEDIATIONS:
            return list(self.remediations.values())
        return []

    def create(self, resource: Resource, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        if resource is kinds.EVENTS:
            self.events.append(obj)
            return obj
        if resource is remediation_names.REMEDIATIONS:
            self.record_creates += 1
            if self.fail_records is not None:
                raise self.fail_records
            made = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}}
            self.remediations[obj["metadata"]["name"]] = made
            return made
        return obj

    def replace(self, resource: Resource, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.remediations[obj["metadata"]["name"]] = obj
        return obj

    def patch(self, resource: Resource, name: str, patch: dict[str, Any], **_: Any) -> dict[str, Any]:
        return self.nodes.get(name) or {}

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.events if e["reason"] in (REASON_BACKOFF, REASON_FAILED)]


def remediator(kube: FakeRemediationKube, clock: Clock) -> Reconciler:
    backoff: Backoff[str] = Backoff(RequeuePolicy(base=10, cap=40), rng=lambda: 1.0, clock=clock)
    return Reconciler(cast("Kube", kube), RemediationSettings(), backoff=backoff)


def test_a_node_whose_step_is_forbidden_is_skipped_until_it_changes() -> None:
    kube, clock = FakeRemediationKube(), Clock()
    kube.add_problem_node("gpu-1")
    kube.fail_records = forbidden("noderemediations is forbidden")
    reconciler = remediator(kube, clock)
    reconciler.tick()
    assert kube.record_creates == 1, "the fake no longer reaches the NodeRemediation create"
    assert kube.reasons() == [REASON_FAILED]
    for _ in range(5):
        clock.now += 600
        reconciler.tick()
    assert kube.record_creates == 1
    assert kube.reasons() == [REASON_FAILED]
    assert kube.events[-1]["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Node",
        "name": "gpu-1",
        "uid": "uid-gpu-1",
    }

    kube.fail_records = None
    kube.nodes["gpu-1"]["metadata"]["resourceVersion"] = "2"  # the Node changed
    reconciler.tick()
    assert kube.record_creates == 2 and "gpu-1" in kube.remediations
    assert reconciler.backoff.counts() == (0, 0)


def test_a_node_whose_step_meets_a_server_error_waits_its_back_off() -> None:
    kube, clock = FakeRemediationKube(), Clock()
    kube.add_problem_node("gpu-1")
    kube.fail_records = unavailable()
    reconciler = remediator(kube, clock)
    tried = []
    for _ in range(8):  # rounds 5 s apart, as --interval's default
        reconciler.tick()
        tried.append(kube.record_creates)
        clock.now += 5
    # Delays 10, 20, 40 s: tried at 0, 10, 30 s, then not before 70 s.
    assert tried == [1, 1, 2, 2, 2, 2, 3, 3]
    assert kube.reasons() == [REASON_BACKOFF]  # told at the third failure in a row
    clock.now += 60
    reconciler.tick()
    assert kube.record_creates == 4 and kube.reasons() == [REASON_BACKOFF]  # not again
    retries, _ = reconciler.backoff.tallies()
    assert retries == {"ServerError": 4}

    kube.fail_records = None
    clock.now += 600
    reconciler.tick()
    assert "gpu-1" in kube.remediations and reconciler.backoff.failures("gpu-1") == 0
