"""The step machine walked through whole remediations on a small in-memory node (no network).

``Sim`` plays the cluster: it applies the machine's actions to a node record (cordon, taint, label),
remembers the Jobs created and lets a test decide how each Job ends and when the condition clears.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from kaip.remediation import matching, spec
from kaip.remediation import state as acts
from kaip.remediation.state import Situation, State
from kaip.resources import remediation as names
from kaip_incluster.remediation import machine

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)
SINCE = "2026-11-22T07:50:00Z"


def rule(**overrides: Any) -> spec.Rule:
    raw: dict[str, Any] = {
        "metadata": {"name": "gpu-page"},
        "spec": {
            "conditions": [{"type": "GPUPendingPage", "duration": "5m"}],
            "drain": {"timeout": "2m"},
            "operations": [
                {
                    "name": "reset-gpu",
                    "type": "Job",
                    "timeout": "3m",
                    "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
                },
                {"name": "reboot", "type": "Reboot", "timeout": "10m"},
            ],
            "retry": {"limit": 1, "backoff": "1m"},
        },
    }
    raw["spec"].update(overrides)
    return spec.parse_rule(raw)


@dataclass
class Sim:
    rule: spec.Rule
    now: datetime = T0
    condition: str = "True"
    unschedulable: bool = False
    taints: tuple[str, ...] = ()
    label: str = ""
    state: State = field(default_factory=State)
    slot: bool = False
    pods: tuple[str, ...] = ()
    jobs: dict[str, str] = field(default_factory=dict)  # name -> Running/Succeeded/Failed
    job_order: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    evictions: list[str] = field(default_factory=list)
    paused: bool = False
    tripped: bool = False

    def node(self) -> matching.NodeFacts:
        return matching.NodeFacts(
            "gpu-7",
            labels={},
            unschedulable=self.unschedulable,
            taints=self.taints,
            conditions={"GPUPendingPage": (self.condition, SINCE)},
            marker=self.label,
        )

    def step(self, *, after: timedelta = timedelta(seconds=5)) -> acts.Decision:
        self.now += after
        node = self.node()
        job = acts.JOB_NONE
        if self.state.phase == names.OPERATING and self.state.job:
            job = self.jobs.get(self.state.job, acts.JOB_MISSING)
        sit = Situation(
            now=self.now,
            node=node,
            state=self.state,
            rules={self.rule.name: self.rule},
            match=matching.match([self.rule], node, now=self.now),
            slot=self.slot,
            paused=self.paused,
            tripped=self.tripped,
            pods=self.pods,
            job=job,
        )
        decision = machine.decide(sit)
        for action in decision.actions:
            self.apply(action)
        self.state = decision.state
        return decision

    def apply(self, action: acts.Action) -> None:
        if isinstance(action, acts.Cordon):
            self.unschedulable, self.taints = True, ("kaip.dev/remediation",)
        elif isinstance(action, acts.Uncordon):
            self.unschedulable, self.taints = action.keep_unschedulable, ()
        elif isinstance(action, acts.Mark):
            self.label = action.phase
        elif isinstance(action, acts.RequestSlot):
            self.slot = True  # the budget allows it in these walks
        elif isinstance(action, acts.Release):
            self.slot = False
        elif isinstance(action, acts.Evict):
            self.evictions.extend(action.pods)
        elif isinstance(action, acts.RunJob):
            self.jobs.setdefault(action.name, "Running")
            self.job_order.append(action.name)
        elif isinstance(action, acts.Emit):
            self.events.append(action.reason)
        elif isinstance(action, acts.Notify):
            self.notices.append(action.kind)

    def until(self, phase: str, *, limit: int = 20) -> None:
        for _ in range(limit):
            if self.state.phase == phase:
                return
            self.step()
        raise AssertionError(f"never reached {phase}; at {self.state.phase}: {self.state.message}")

    def finish_job(self, outcome: str) -> None:
        self.jobs[self.state.job] = outcome


def test_nothing_happens_before_the_condition_has_held_its_duration() -> None:
    sim = Sim(rule(), now=datetime(2026, 11, 22, 7, 52, tzinfo=timezone.utc))
    sim.step()
    assert sim.state.phase == ""
    assert not sim.unschedulable


def test_a_full_remediation_cordons_drains_runs_the_job_and_hands_the_node_back() -> None:
    sim = Sim(rule(), pods=("team/trainer-0", "team/trainer-1"))
    sim.step()
    assert sim.state.phase == names.PENDING
    assert sim.label == "Pending"
    assert not sim.unschedulable, "nothing is cordoned before a budget slot is taken"
    sim.step()  # asks for a slot (granted by Sim)
    sim.step()
    assert sim.state.phase == names.DRAINING
    assert sim.unschedulable and sim.label == "Draining"
    sim.step()
    assert sim.evictions == ["team/trainer-0", "team/trainer-1"]
    sim.pods = ()
    sim.step()
    assert sim.state.phase == names.OPERATING
    assert sim.label == "Operating"
    first_job = sim.state.job
    sim.finish_job("Succeeded")
    sim.step()
    assert sim.state.phase == names.VERIFYING
    sim.condition = "False"
    sim.step()
    assert sim.state.phase == names.SUCCEEDED
    assert not sim.unschedulable and sim.taints == () and sim.label == ""
    assert not sim.slot, "the budget slot is given back"
    assert sim.job_order == [first_job]
    assert [h["phase"] for h in sim.state.history][:3] == ["Pending", "Draining", "Draining"]
    assert sim.events[-1] == names.REASON_SUCCEEDED


def test_a_failed_job_escalates_to_the_next_operation_then_retries_with_backoff_then_fails() -> None:
    sim = Sim(rule())
    sim.until(names.OPERATING)
    sim.finish_job("Failed")
    sim.step()
    assert sim.state.phase == names.OPERATING
    assert sim.state.operation == 1, "escalated to the reboot"
    assert names.REASON_ESCALATED in sim.events
    sim.finish_job("Succeeded")
    sim.step()
    assert sim.state.phase == names.VERIFYING
    sim.step(after=timedelta(minutes=11))  # the reboot's timeout passes, condition still there
    assert sim.state.phase == names.VERIFYING
    assert sim.state.retry_at, "a retry is scheduled"
    sim.step(after=timedelta(seconds=30))
    assert sim.state.attempt == 0, "backoff of 1m not over yet"
    sim.step(after=timedelta(seconds=40))
    assert (sim.state.phase, sim.state.operation, sim.state.attempt) == (names.OPERATING, 0, 1)
    sim.finish_job("Failed")
    sim.step()
    sim.finish_job("Failed")
    sim.step()
    assert sim.state.phase == names.FAILED
    assert sim.notices == ["failed"]
    assert sim.unschedulable and sim.label == "Failed", "a failed node stays out of service"
    assert len(set(sim.job_order)) == 4, "each operation and attempt has its own Job"
    # Someone repairs it by hand: the node comes back and the notice is resolved.
    sim.condition = "False"
    sim.step()
    assert sim.state.phase == names.RESOLVED
    assert not sim.unschedulable and sim.label == ""
    assert sim.notices == ["failed", "resolved"]


def test_a_job_that_runs_past_its_timeout_is_deleted_and_escalated() -> None:
    sim = Sim(rule())
    sim.until(names.OPERATING)
    first = sim.state.job
    decision = sim.step(after=timedelta(minutes=4))
    assert acts.DeleteJob(first) in decision.actions
    assert sim.state.operation == 1


def test_drain_timeout_fails_by_default_and_continues_when_asked() -> None:
    sim = Sim(rule(), pods=("team/guarded",))
    sim.until(names.DRAINING)
    sim.step()
    sim.step(after=timedelta(minutes=3))
    assert sim.state.phase == names.FAILED
    assert "drain timed out" in sim.state.message
    cont = Sim(rule(drain={"timeout": "2m", "onTimeout": "Continue"}), pods=("team/guarded",))
    cont.until(names.DRAINING)
    cont.step(after=timedelta(minutes=3))
    assert cont.state.phase == names.OPERATING


def test_the_condition_clearing_while_pending_leaves_the_node_untouched() -> None:
    sim = Sim(rule())
    sim.step()
    sim.condition = "False"
    sim.step()
    assert sim.state.phase == names.RESOLVED
    assert not sim.unschedulable and sim.label == ""


def test_pause_and_a_tripped_breaker_hold_a_remediation_where_it_is() -> None:
    sim = Sim(rule(), paused=True)
    sim.step()
    sim.step()
    sim.step()
    assert sim.state.phase == names.PENDING and not sim.slot
    assert "paused" in sim.state.message
    sim.paused = False
    sim.until(names.DRAINING)
    sim.tripped = True
    sim.pods = ("team/a",)
    sim.step()
    assert sim.evictions == [], "no eviction while the breaker is tripped"
    assert sim.state.phase == names.DRAINING


def test_dry_run_records_a_plan_and_touches_nothing() -> None:
    sim = Sim(rule(dryRun=True), pods=("team/a",))
    decision = sim.step()
    assert sim.state.phase == names.DRY_RUN
    assert not sim.unschedulable and sim.label == "" and not sim.jobs
    plan = " ".join(h["message"] for h in sim.state.history)
    assert "would evict 1 Pods" in plan and "reset-gpu" in plan and "reboot" in plan
    assert [type(a) for a in decision.actions] == [acts.Emit]
    sim.step()
    assert sim.state.phase == names.DRY_RUN, "the same occurrence is planned once"
    sim.rule = rule()  # dry-run switched off: the plan is carried out
    sim.step()
    assert sim.state.phase == names.PENDING


def test_a_restart_in_the_middle_recreates_the_same_job_name() -> None:
    sim = Sim(rule())
    sim.until(names.DRAINING)
    before = sim.state
    first = sim.step()
    # The controller died before writing the status: the next one decides again from `before`.
    sim.state = before
    second = sim.step(after=timedelta(0))
    names_first = [a.name for a in first.actions if isinstance(a, acts.RunJob)]
    names_second = [a.name for a in second.actions if isinstance(a, acts.RunJob)]
    assert names_first == names_second != []


def test_an_unhandled_condition_is_notified_once_and_resolved_when_it_clears() -> None:
    node = matching.NodeFacts("gpu-3", conditions={"DStateProcess": ("True", SINCE)})
    sit = Situation(now=T0, node=node, unknown=[("DStateProcess", SINCE)])
    first = machine.decide(sit)
    assert first.state.phase == names.UNHANDLED
    assert [a.kind for a in first.actions if isinstance(a, acts.Notify)] == ["unhandled"]
    again = machine.decide(replace(sit, state=first.state))
    assert not [a for a in again.actions if isinstance(a, acts.Notify)]
    cleared = matching.NodeFacts("gpu-3", conditions={"DStateProcess": ("False", T0.isoformat())})
    done = machine.decide(replace(sit, node=cleared, unknown=[], state=first.state))
    assert done.state.phase == names.RESOLVED
    assert [a.kind for a in done.actions if isinstance(a, acts.Notify)] == ["resolved"]


def test_a_manual_request_runs_without_the_condition_and_succeeds_when_the_job_is_done() -> None:
    sim = Sim(rule(), condition="False")
    request = acts.Request(node="gpu-7", rule="gpu-page", manual=True, requested_at="2026-11-22T08:00:01Z")
    sim.now = T0
    node = sim.node()
    decision = machine.decide(
        Situation(now=T0 + timedelta(seconds=2), node=node, request=request, rules={"gpu-page": sim.rule})
    )
    assert decision.state.phase == names.PENDING and decision.state.manual
    sim.state = decision.state
    sim.until(names.OPERATING)
    sim.finish_job("Succeeded")
    sim.step()
    sim.step()
    assert sim.state.phase == names.SUCCEEDED


def test_status_round_trips_through_the_api_shape() -> None:
    sim = Sim(rule())
    sim.until(names.OPERATING)
    assert State.from_status(sim.state.to_status()) == sim.state
