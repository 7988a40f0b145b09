"""The per-node step machine: from what is observed now to the next status and the actions to take.

Pure, as the rest of the remediation decisions in :mod:`kaip.remediation` are; it lives here because
only the controller runs it (the CLI reads the status it writes, through :mod:`kaip.remediation.views`).

Phases (:mod:`kaip.resources.remediation`): Pending -> Draining -> Operating -> Verifying ->
Succeeded, with Failed, Resolved, DryRun and Unhandled as the other ends. The whole state is the
NodeRemediation's status, so a restarted controller continues where the last one stopped; every
action is idempotent (a Job's name is derived from the episode, operation and attempt) so doing one
twice after a crash changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from kaip.kube.objects import api_time
from kaip.remediation.matching import present
from kaip.remediation.spec import Rule
from kaip.remediation.state import (
    JOB_FAILED,
    JOB_MISSING,
    JOB_SUCCEEDED,
    Action,
    Cordon,
    Decision,
    DeleteJob,
    Emit,
    Evict,
    Mark,
    Notify,
    Release,
    RequestSlot,
    RunJob,
    Situation,
    State,
    Uncordon,
    job_name,
)
from kaip.resources import nodes as node_names
from kaip.resources import remediation as names
from kaip.resources import timestamps

HISTORY_LIMIT = 40


# -- the machine -------------------------------------------------------------------------------------
def decide(s: Situation) -> Decision:
    if s.state.phase in names.ACTIVE_PHASES:
        return _active(s)
    return _idle(s)


def _log(state: State, s: Situation, phase: str, message: str, **changes: Any) -> State:
    entry = {"time": s.stamp, "phase": phase, "message": message}
    history = (*state.history, entry)[-HISTORY_LIMIT:]
    since = s.stamp if phase != state.phase else state.phase_since
    return replace(state, phase=phase, phase_since=since, message=message, history=history, **changes)


def _idle(s: Situation) -> Decision:
    st, req = s.state, s.request
    if req is not None and req.manual and req.requested_at and req.requested_at != st.handled_request:
        rule = s.rules.get(req.rule)
        if rule is None:
            msg = f"RemediationRule {req.rule} does not exist"
            new = _log(
                State(detected_at=s.stamp, handled_request=req.requested_at, history=st.history),
                s,
                names.FAILED,
                msg,
                rule=req.rule,
            )
            return Decision(replace(new, manual=True), (Emit(names.REASON_FAILED, msg, warning=True),))
        hit = present(rule, s.node)
        cond = str(hit[0]) if hit else f"{rule.conditions[0]}"
        since = hit[1] if hit else ""
        return _start(s, rule, cond, since, manual=True, dry_run=req.dry_run or rule.dry_run or s.dry_run)
    m = s.match
    if m is not None and m.held:
        rule = s.rules[m.rule]
        dry = rule.dry_run or s.dry_run
        new_occurrence = (m.condition, m.since) != (st.condition, st.condition_since)
        # A plan made in dry-run is carried out once dry-run is switched off.
        if new_occurrence or (st.phase == names.DRY_RUN and not dry and not st.manual):
            return _start(s, rule, m.condition, m.since, manual=False, dry_run=dry)
    for ctype, since in s.unknown:
        if (f"{ctype}=True", since) == (st.condition, st.condition_since):
            break
        seen = s.node.messages.get(ctype)
        msg = f"{ctype}=True on node {s.node.name}" + (f" ({seen})" if seen else "")
        msg += "; no RemediationRule handles it"
        new = _log(
            State(detected_at=s.stamp, handled_request=st.handled_request, history=st.history),
            s,
            names.UNHANDLED,
            msg,
            condition=f"{ctype}=True",
            condition_since=since,
        )
        return Decision(
            replace(new, notified=True),
            (Emit(names.REASON_UNHANDLED, msg, warning=True), Notify("unhandled", ctype, msg)),
        )
    if st.phase in (names.FAILED, names.UNHANDLED) and not _still(s, st.condition):
        return _hand_back(s, names.RESOLVED, f"{st.condition} cleared; node handed back")
    actions: list[Action] = []
    if s.slot and st.phase != names.FAILED:
        actions.append(Release())  # a crash between the status write and the release left it
    return Decision(st, tuple(actions))


def _still(s: Situation, condition: str) -> bool:
    ctype, _, status = condition.partition("=")
    return s.node.conditions.get(ctype, ("", ""))[0] == (status or "True")


def _start(s: Situation, rule: Rule, cond: str, since: str, *, manual: bool, dry_run: bool) -> Decision:
    handled = s.request.requested_at if manual and s.request is not None else s.state.handled_request
    base = State(
        rule=rule.name,
        condition=cond,
        condition_since=since,
        detected_at=s.stamp,
        manual=manual,
        handled_request=handled,
        history=s.state.history,
    )
    who = "by hand" if manual else f"{cond} since {since or 'unknown'}"
    if dry_run:
        plan = _plan(s, rule, cond)
        st = base
        for line in plan:
            st = _log(st, s, names.DRY_RUN, line)
        return Decision(st, (Emit(names.REASON_DRY_RUN, "; ".join(plan)),))
    msg = f"rule {rule.name} matched ({who}); waiting for the disruption budget"
    st = _log(base, s, names.PENDING, msg)
    return Decision(st, (Mark(names.PENDING), Emit(names.REASON_DETECTED, msg)))


def _plan(s: Situation, rule: Rule, cond: str) -> list[str]:
    lines = [f"dry-run: rule {rule.name} matched {cond}; would take a disruption budget slot and cordon"]
    if rule.drain:
        shown = ", ".join(s.pods[:5]) + (", ..." if len(s.pods) > 5 else "")
        lines.append(
            f"would evict {len(s.pods)} Pods respecting their PodDisruptionBudgets"
            + (f": {shown}" if s.pods else "")
        )
    for op in rule.operations:
        lines.append(
            f"would run operation {op.name} ({op.type}, timeout {_dur(op.timeout)}) on {s.node.name}"
        )
    lines.append(f"would uncordon when {cond} clears")
    return lines


def _dur(delta: timedelta) -> str:
    return timestamps.human_duration(delta.total_seconds())


def _gate(s: Situation) -> str:
    if s.tripped:
        return "held: the circuit breaker is tripped"
    if s.paused:
        return "held: remediation is paused"
    return ""


def _hold(s: Situation, message: str) -> Decision:
    return Decision(replace(s.state, message=message))


def _hand_back(s: Situation, phase: str, message: str) -> Decision:
    st = s.state
    actions: list[Action] = []
    if s.node.cordoned_by_us or node_names.TAINT_REMEDIATION in s.node.taints:
        actions.append(Uncordon(keep_unschedulable=st.was_unschedulable))
    actions.append(Mark(""))
    if s.slot:
        actions.append(Release())
    reason = names.REASON_SUCCEEDED if phase == names.SUCCEEDED else names.REASON_RESOLVED
    actions.append(Emit(reason, message))
    if st.notified:
        actions.append(Notify("resolved", st.condition.partition("=")[0], message))
    return Decision(_log(st, s, phase, message, job="", retry_at=""), tuple(actions))


def _active(s: Situation) -> Decision:
    st = s.state
    rule = s.rules.get(st.rule)
    if rule is None:
        msg = f"RemediationRule {st.rule} was deleted during the remediation; node left as it is"
        return _fail(s, msg)
    cleared = not _still(s, st.condition)
    if st.phase == names.PENDING:
        if cleared and not st.manual:
            return _hand_back(s, names.RESOLVED, f"{st.condition} cleared before any step")
        if s.slot:
            return _cordon(s, rule)
        gate = _gate(s)
        return _hold(s, gate) if gate else Decision(st, (RequestSlot(),))
    if st.phase == names.DRAINING:
        if cleared and not st.manual:
            return _hand_back(s, names.RESOLVED, f"{st.condition} cleared while draining")
        return _drain(s, rule)
    if st.phase == names.OPERATING:
        return _operating(s, rule)
    # Verifying
    if cleared:
        return _hand_back(s, names.SUCCEEDED, f"{st.condition} cleared after {_op_name(rule, st.operation)}")
    retry_at = timestamps.parse(st.retry_at)
    if retry_at is not None:
        if s.now < retry_at:
            return _hold(s, st.message)
        gate = _gate(s)
        return (
            _hold(s, gate)
            if gate
            else _run(s, rule, 0, st.attempt + 1, f"retry {st.attempt + 1} of {rule.retry_limit}")
        )
    if _expired(
        s, st.operation_started, rule.operations[st.operation].timeout if rule.operations else timedelta(0)
    ):
        return _escalate(s, rule, f"{st.condition} still present after {_op_name(rule, st.operation)}")
    return _hold(s, f"waiting for {st.condition} to clear")


def _op_name(rule: Rule, index: int) -> str:
    return f"operation {rule.operations[index].name}" if index < len(rule.operations) else "draining"


def _expired(s: Situation, since: str, limit: timedelta) -> bool:
    start = timestamps.parse(since)
    return start is not None and s.now - start > limit


def _cordon(s: Situation, rule: Rule) -> Decision:
    node = s.node
    was = node.unschedulable and not node.cordoned_by_us
    msg = f"cordoned node {node.name} (rule {rule.name})"
    st = replace(s.state, was_unschedulable=was)
    if rule.drain:
        new = _log(st, s, names.DRAINING, msg + "; draining")
        return Decision(new, (Cordon(), Mark(names.DRAINING), Emit(names.REASON_CORDONED, msg)))
    decision = _next_after_drain(replace(s, state=st), rule, msg)
    return Decision(decision.state, (Cordon(), Emit(names.REASON_CORDONED, msg), *decision.actions))


def _drain(s: Situation, rule: Rule) -> Decision:
    st = s.state
    actions: list[Action] = [] if s.node.cordoned_by_us else [Cordon()]
    gate = _gate(s)
    if gate:
        return Decision(replace(st, message=gate), tuple(actions))
    if not s.pods:
        return _with(actions, _next_after_drain(s, rule, f"node {s.node.name} drained"))
    if _expired(s, st.phase_since, rule.drain_timeout):
        msg = f"drain timed out after {_dur(rule.drain_timeout)} with {len(s.pods)} Pods left"
        if rule.continue_after_drain_timeout:
            return _with(actions, _next_after_drain(s, rule, msg + "; continuing (onTimeout: Continue)"))
        return _with(actions, _fail(s, msg))
    return Decision(replace(st, message=f"evicting {len(s.pods)} Pods"), (*actions, Evict(s.pods)))


def _with(actions: Sequence[Action], decision: Decision) -> Decision:
    return Decision(decision.state, (*actions, *decision.actions))


def _next_after_drain(s: Situation, rule: Rule, message: str) -> Decision:
    if rule.operations:
        return _run(
            replace(s, state=_log(s.state, s, s.state.phase or names.DRAINING, message)), rule, 0, 0, message
        )
    st = _log(
        s.state,
        s,
        names.VERIFYING,
        message + f"; waiting for {s.state.condition} to clear",
        operation_started=s.stamp,
    )
    return Decision(st, (Mark(names.VERIFYING),))


def _run(s: Situation, rule: Rule, index: int, attempt: int, why: str) -> Decision:
    op = rule.operations[index]
    name = job_name(s.node.name, s.state, index, attempt)
    msg = f"running operation {op.name} ({op.type}) as Job {name}: {why}"
    st = _log(
        s.state,
        s,
        names.OPERATING,
        msg,
        operation=index,
        attempt=attempt,
        job=name,
        retry_at="",
        operation_started=s.stamp,
    )
    return Decision(
        st, (Mark(names.OPERATING), RunJob(name, rule.name, index), Emit(names.REASON_OPERATION, msg))
    )


def _operating(s: Situation, rule: Rule) -> Decision:
    st = s.state
    op = rule.operations[st.operation]
    if s.job == JOB_SUCCEEDED:
        msg = f"operation {op.name} completed; waiting up to {_dur(op.timeout)} for {st.condition} to clear"
        return Decision(_log(st, s, names.VERIFYING, msg), (Mark(names.VERIFYING),))
    if s.job == JOB_FAILED:
        return _escalate(s, rule, f"operation {op.name} failed (Job {st.job})")
    if s.job == JOB_MISSING:
        return _escalate(s, rule, f"Job {st.job} of operation {op.name} disappeared")
    if _expired(s, st.operation_started, op.timeout):
        decision = _escalate(s, rule, f"operation {op.name} timed out after {_dur(op.timeout)}")
        return Decision(decision.state, (DeleteJob(st.job), *decision.actions))
    return _hold(s, f"operation {op.name} running (Job {st.job})")


def _escalate(s: Situation, rule: Rule, why: str) -> Decision:
    st = s.state
    gate = _gate(s)
    if gate:
        return _hold(s, f"{why}; {gate}")
    if st.operation + 1 < len(rule.operations):
        nxt = rule.operations[st.operation + 1]
        decision = _run(s, rule, st.operation + 1, st.attempt, f"{why}; escalating to {nxt.name}")
        return Decision(
            decision.state,
            (
                Emit(names.REASON_ESCALATED, why + f"; escalating to {nxt.name}", warning=True),
                *decision.actions,
            ),
        )
    if st.attempt < rule.retry_limit:
        wait = rule.retry_backoff * (2**st.attempt)
        at = api_time(s.now + wait)
        msg = f"{why}; retry {st.attempt + 1} of {rule.retry_limit} in {_dur(wait)} unless {st.condition} clears"
        new = _log(st, s, names.VERIFYING, msg, retry_at=at)
        return Decision(new, (Mark(names.VERIFYING), Emit(names.REASON_RETRY, msg, warning=True)))
    return _fail(s, f"{why}; no operation or retry left")


def _fail(s: Situation, why: str) -> Decision:
    st = _log(
        s.state, s, names.FAILED, why + "; node stays cordoned until the condition clears", notified=True
    )
    ctype = s.state.condition.partition("=")[0]
    seen = s.node.messages.get(ctype)
    notice = f"{st.message} ({ctype}: {seen})" if seen else st.message
    return Decision(
        st,
        (
            Mark(names.FAILED),
            Emit(names.REASON_FAILED, st.message, warning=True),
            Notify("failed", ctype, notice),
        ),
    )
