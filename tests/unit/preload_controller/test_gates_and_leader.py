"""Pods held by the data-preload gate (webhook mutator and controller release), the Lease decision,
and the loader's outcome message."""

from __future__ import annotations

import json
from typing import Any

from kaip.preload.status import LIMIT, Outcome, parse_outcome
from kaip_incluster.admission import jsonpatch
from kaip_incluster.admission.pods import PodContext, mutate_pod
from kaip_incluster.admission.preload_gate import ClaimState, claim_state, preload_gate
from kaip_incluster.controller import gates
from kaip_incluster.leader import LeaseConfig, decide

GATE = {"name": "kaip.dev/data-preload"}


def pod(
    *claims: str, gates_: list[dict[str, str]] | None = None, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "busybox"}],
        "volumes": [
            {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
        ]
        + [{"name": "scratch", "emptyDir": {}}],
    }
    if gates_ is not None:
        spec["schedulingGates"] = gates_
    return {"metadata": {"name": "train", "labels": labels or {}}, "spec": spec}


def pvc(
    name: str, *, preload: bool = True, status: str | None = None, reason: str = "", message: str = ""
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "annotations": {"preload.kaip.dev/source": "s3://bkt/x"} if preload else {},
        }
    }
    if status:
        obj["status"] = {
            "conditions": [{"type": "DataLoaded", "status": status, "reason": reason, "message": message}]
        }
    return obj


# -- the webhook's mutator ---------------------------------------------------------------------------
STATES = {
    "loading": ClaimState(preload=True, loaded=False),
    "loaded": ClaimState(preload=True, loaded=True),
    "plain": ClaimState(preload=False, loaded=False),
}
MUTATOR = preload_gate(lambda namespace, name: STATES.get(name))
CONTEXT = PodContext(namespace="ml")


def test_a_pod_on_unloaded_data_is_gated_once() -> None:
    verdict = mutate_pod(pod("plain", "loading"), CONTEXT, mutators=[MUTATOR])
    assert verdict.allowed
    patched = jsonpatch.apply(pod("plain", "loading"), verdict.patch)
    assert patched["spec"]["schedulingGates"] == [GATE]
    assert any('"loading"' in w for w in verdict.warnings)
    assert mutate_pod(patched, CONTEXT, mutators=[MUTATOR]).patch == []


def test_other_gates_are_kept() -> None:
    kueue = {"name": "kueue.x-k8s.io/admission"}
    verdict = mutate_pod(pod("loading", gates_=[kueue]), CONTEXT, mutators=[MUTATOR])
    assert jsonpatch.apply(pod("loading", gates_=[kueue]), verdict.patch)["spec"]["schedulingGates"] == [
        kueue,
        GATE,
    ]


def test_loaded_ordinary_or_loader_pods_are_not_gated() -> None:
    assert mutate_pod(pod("loaded", "plain"), CONTEXT, mutators=[MUTATOR]).patch == []
    assert mutate_pod(pod(), CONTEXT, mutators=[MUTATOR]).patch == []
    loader = pod("loading", labels={"app.kubernetes.io/component": "kaip-data-loader"})
    assert mutate_pod(loader, CONTEXT, mutators=[MUTATOR]).patch == []


def test_an_unknown_pvc_gates_the_pod_until_the_controller_sees_it() -> None:
    assert mutate_pod(pod("not-yet"), CONTEXT, mutators=[MUTATOR]).patch != []


def test_claim_state_reads_the_annotation_and_the_condition() -> None:
    assert claim_state(pvc("a", status="True")) == ClaimState(preload=True, loaded=True)
    assert claim_state(pvc("a", status="Unknown")) == ClaimState(preload=True, loaded=False)
    assert claim_state(pvc("a", preload=False)) == ClaimState(preload=False, loaded=False)


# -- the controller's release --------------------------------------------------------------------
def test_the_gate_is_removed_only_when_every_preload_pvc_is_loaded() -> None:
    held = pod("a", "b", "plain", gates_=[GATE])
    waiting = gates.decide(
        held,
        {"a": pvc("a", status="True"), "b": pvc("b", status="Unknown"), "plain": pvc("plain", preload=False)},
    )
    assert not waiting.release and waiting.reason == "WaitingForData" and 'PVC "b"' in waiting.message
    ready = gates.decide(
        held,
        {"a": pvc("a", status="True"), "b": pvc("b", status="True"), "plain": pvc("plain", preload=False)},
    )
    assert ready.release and ready.reason == "DataReady"


def test_a_failed_load_says_why_the_pod_will_not_start() -> None:
    decision = gates.decide(
        pod("a", gates_=[GATE]), {"a": pvc("a", status="False", reason="AccessDenied", message="refused")}
    )
    assert not decision.release
    assert (decision.event_type, decision.reason) == ("Warning", "DataLoadFailed")
    assert "AccessDenied: refused" in decision.message


def test_a_missing_pvc_keeps_the_pod_waiting() -> None:
    decision = gates.decide(pod("a", gates_=[GATE]), {"a": None})
    assert not decision.release and "to be created" in decision.message


def test_the_release_patch_removes_only_our_gate_and_checks_it_first() -> None:
    held = pod("a", gates_=[{"name": "other"}, GATE])
    index = gates.gate_index(held)
    assert index == 1
    assert gates.release_patch(index) == [
        {"op": "test", "path": "/spec/schedulingGates/1/name", "value": "kaip.dev/data-preload"},
        {"op": "remove", "path": "/spec/schedulingGates/1"},
    ]


# -- leader election ------------------------------------------------------------------------------
CFG = LeaseConfig(name="kaip-data-loader", namespace="kaip-system", identity="me", lease_seconds=15)


def test_no_lease_is_created_and_our_own_is_renewed() -> None:
    assert decide(None, config=CFG, now=1000.0, expired=False).verb == "create"
    ours = {"spec": {"holderIdentity": "me", "leaseTransitions": 2, "acquireTime": "t0"}}
    renewed = decide(ours, config=CFG, now=1000.0, expired=False)
    assert renewed.verb == "update" and renewed.spec is not None
    assert renewed.spec["acquireTime"] == "t0" and renewed.spec["leaseTransitions"] == 2


def test_a_live_lease_of_another_is_waited_for_and_an_expired_one_taken_over() -> None:
    theirs = {"spec": {"holderIdentity": "other", "leaseTransitions": 2}}
    assert decide(theirs, config=CFG, now=1000.0, expired=False).verb == "wait"
    taken = decide(theirs, config=CFG, now=1000.0, expired=True)
    assert taken.verb == "update" and taken.spec is not None
    assert taken.spec["holderIdentity"] == "me" and taken.spec["leaseTransitions"] == 3


def test_a_released_lease_is_taken_at_once() -> None:
    released = {"spec": {"holderIdentity": "", "leaseTransitions": 1}}
    assert decide(released, config=CFG, now=1000.0, expired=False).verb == "update"


# -- the loader's termination message ---------------------------------------------------------------
def test_the_outcome_round_trips_and_stays_under_the_kubelets_limit() -> None:
    outcome = Outcome(reason="UnsafeKeys", message="k" * 10_000, refused=4)
    text = outcome.to_json()
    assert len(text.encode()) <= LIMIT
    back = parse_outcome(text)
    assert back is not None and back.reason == "UnsafeKeys" and back.refused == 4


def test_a_termination_message_that_is_not_ours_is_ignored() -> None:
    assert parse_outcome("Traceback (most recent call last): ...") is None
    assert parse_outcome(json.dumps(["x"])) is None
    assert parse_outcome("") is None
