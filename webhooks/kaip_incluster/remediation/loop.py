"""One round of the controller: read the API state, let the step machine decide per node, act, record.

Each round reads the API state afresh (:mod:`.world`): no decision rests on memory of an earlier
round, so a new leader (or the same process after a crash) continues from exactly what the API
holds. Order within a round: first every
node's step (which also asks for budget slots), then slots nobody holds any more are given back,
then the circuit breaker, then the admissions in detection order, each a compare-and-swap on the
RemediationConfig.

The one thing kept between rounds is the back-off of nodes whose step failed
(:mod:`kaip_incluster.requeue`; lost with the process, so a new leader tries every node once): a
temporary error (409, 5xx, unreachable) skips the node's step for a growing delay (0.25-0.5 s,
doubling, capped at 5 min, reset on success; at least a round); a permanent one (403, 404, 422)
until the Node, its NodeRemediation or its operation Job changes (another resourceVersion). Each is
counted in :attr:`Reconciler.backoff` and told by a Warning Event on the Node (``RetryBackoff``
once a temporary error repeats, ``ReconcileFailed`` for a permanent one) when the reason changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kaip.errors import KaipError, shorten
from kaip.kube import events
from kaip.kube.errors import Conflict, NotFound
from kaip.kube.objects import api_time, uid_of, version_of
from kaip.remediation import breaker, jobs, matching
from kaip.remediation import state as acts
from kaip.remediation.state import Decision, Situation, State
from kaip.resources import nodes as node_names
from kaip.resources import remediation as names
from kaip.resources import timestamps
from kaip_incluster.remediation import actuator, machine, slots
from kaip_incluster.remediation.notify import Notice, Notifier
from kaip_incluster.remediation.world import World, read_world
from kaip_incluster.requeue import Backoff, RequeuePolicy

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    namespace: str = "kaip-remediation"  # where operation Jobs run
    event_namespace: str = "default"  # Events about Nodes (kubectl describe node reads them there)
    identity: str = names.COMPONENT
    #: Problem conditions reported as "unhandled" when no rule handles them (RemediationConfig may override).
    unknown_conditions: tuple[str, ...] = node_names.SEED_CONDITIONS
    requeue: RequeuePolicy = field(default_factory=RequeuePolicy)  # after a node's step fails


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        settings: Settings,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        backoff: Backoff[str] | None = None,
    ) -> None:
        self.kube, self.settings, self.clock = kube, settings, clock
        self.notifier = notifier or Notifier(kube)
        #: Per node; its counters are the ``kaip_remediation_*`` retry metrics (requeue.metrics_text).
        self.backoff: Backoff[str] = backoff or Backoff(settings.requeue)
        self._told: dict[str, tuple[str, str]] = {}  # node -> last (Event reason, error class) told

    # -- reading -------------------------------------------------------------------------------------
    def read(self) -> World:
        return read_world(
            self.kube,
            job_namespace=self.settings.namespace,
            default_unknown=self.settings.unknown_conditions,
            now=self.clock(),
        )

    # -- one round -----------------------------------------------------------------------------------
    def tick(self) -> World:
        world = self.read()
        for line in world.invalid:
            log.warning("ignored: %s", line)
        wants: list[tuple[str, str, str]] = []  # (detectedAt, node, rule)
        for name in sorted(set(world.facts) | set(world.remediations)):
            version = self.versions(world, name)
            if self.backoff.held(name, version=version):
                continue
            try:
                wanted = self.step(world, name)
            except KaipError as exc:
                self.failed(world, name, exc, version=version)
                continue
            self.backoff.forget(name)
            self._told.pop(name, None)
            if wanted:
                wants.append(wanted)
        known = set(world.facts) | set(world.remediations)
        self.backoff.retain(known)
        for gone in set(self._told) - known:
            del self._told[gone]
        self.release_stale(world)
        self.check_breaker(world)
        self.admit(world, sorted(wants))
        return world

    @staticmethod
    def versions(world: World, name: str) -> str:
        """What a node's step reads, as resourceVersions: a change lets a held node run again."""
        parts = []
        for obj in (world.nodes.get(name), world.remediations.get(name)):
            parts.append(version_of(obj))
        job = State.from_status((world.remediations.get(name) or {}).get("status")).job
        found = world.jobs.get(job) if job else None
        parts.append(version_of(found))
        return "/".join(parts)

    def failed(self, world: World, name: str, exc: KaipError, *, version: str) -> None:
        """Hold the node for its back-off (or until it changes) and tell it once per reason."""
        delay = self.backoff.next_delay(name, exc, version=version)
        failures = self.backoff.failures(name)
        if delay is None:
            log.warning("node %s: %s (not tried again until it changes)", name, shorten(exc.message))
        else:
            log.warning("node %s: %s (try %d, next in %.1fs)", name, shorten(exc.message), failures, delay)
        notice = self.settings.requeue.notice(
            exc, delay=delay, failures=failures, what="Node, its NodeRemediation or its Job"
        )
        node = world.nodes.get(name)
        if notice is None or node is None:
            return
        told = (notice[0], type(exc).__name__)
        if self._told.get(name) == told:
            return
        self._told[name] = told
        self.event(world, name, uid_of(node), notice[0], notice[1], warning=True)

    def release_stale(self, world: World) -> None:
        """Slots whose node is gone, or whose NodeRemediation was deleted or has ended, go back."""
        for node in sorted(world.holders):
            obj = world.remediations.get(node)
            phase = ((obj or {}).get("status") or {}).get("phase", "")
            if node in world.facts and obj is not None and phase in (*names.ACTIVE_PHASES, names.FAILED):
                continue
            try:
                world.config = slots.release(self.kube, world.config, node=node)
                log.info("released the budget slot of %s (no remediation holds it)", node)
            except KaipError as exc:
                log.warning("slot of %s: %s", node, exc.message)

    def situation(self, world: World, name: str) -> Situation | None:
        facts = world.facts.get(name)
        obj = world.remediations.get(name)
        if facts is None:
            return None  # the node is gone; its record stays for the history
        state = State.from_status((obj or {}).get("status"))
        request = acts.read_request(obj) if obj else None
        rules = list(world.rules.values())
        match = matching.match(rules, facts, now=world.now)
        unknown = matching.unknown_problems(rules, facts, watched=world.cfg.unknown_conditions)
        if obj is None and (match is None or not match.held) and not unknown:
            return None  # healthy node without a record: nothing to write
        rule_name = state.rule if state.phase in names.ACTIVE_PHASES else (match.rule if match else "")
        if request is not None and request.manual and state.phase not in names.ACTIVE_PHASES:
            rule_name = request.rule
        rule = world.rules.get(rule_name)
        paused = world.cfg.paused or bool(rule and rule.paused)
        pods: tuple[str, ...] = ()
        if state.phase == names.DRAINING or (rule is not None and rule.dry_run) or world.cfg.dry_run:
            pods = tuple(
                f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                for p in actuator.evictable_pods(self.kube, name)
            )
        job = acts.JOB_NONE
        if state.phase == names.OPERATING and state.job:
            job = jobs.state(world.jobs.get(state.job))
        return Situation(
            now=world.now,
            node=facts,
            state=state,
            request=request,
            rules=world.rules,
            match=match,
            unknown=unknown,
            slot=name in world.holders,
            paused=paused,
            tripped=world.breaker.tripped,
            dry_run=world.cfg.dry_run,
            pods=pods,
            job=job,
        )

    def step(self, world: World, name: str) -> tuple[str, str, str] | None:
        sit = self.situation(world, name)
        if sit is None:
            return None
        decision = machine.decide(sit)
        wanted, note = self.act(world, sit, decision)
        new = replace(decision.state, message=f"{decision.state.message}; {note}") if note else decision.state
        self.record(world, name, sit.state, new)
        if wanted:
            return (decision.state.detected_at, name, decision.state.rule)
        return None

    # -- acting --------------------------------------------------------------------------------------
    def act(self, world: World, sit: Situation, decision: Decision) -> tuple[bool, str]:
        """Carry the actions out; returns (wants a budget slot, a note for the status message)."""
        kube, node, wants_slot, note = self.kube, sit.node.name, False, ""
        uid = uid_of(world.nodes[node])
        for action in decision.actions:
            if isinstance(action, acts.Cordon):
                actuator.cordon(kube, node)
            elif isinstance(action, acts.Uncordon):
                actuator.uncordon(kube, node, keep_unschedulable=action.keep_unschedulable)
            elif isinstance(action, acts.Mark):
                if sit.node.marker != action.phase:
                    actuator.mark(kube, node, action.phase)
            elif isinstance(action, acts.RequestSlot):
                wants_slot = True
            elif isinstance(action, acts.Release):
                world.config = slots.release(kube, world.config, node=node)
            elif isinstance(action, acts.Evict):
                note = self.evict(world, sit, action, uid)
            elif isinstance(action, acts.RunJob):
                rule = world.rules[action.rule]
                actuator.run_job(
                    kube,
                    jobs.build(
                        name=action.name,
                        namespace=self.settings.namespace,
                        node=node,
                        rule=rule,
                        index=action.operation,
                    ),
                )
            elif isinstance(action, acts.DeleteJob):
                actuator.delete_job(kube, self.settings.namespace, action.name)
            elif isinstance(action, acts.Emit):
                self.event(world, node, uid, action.reason, action.message, warning=action.warning)
            elif isinstance(action, acts.Notify):
                self.notifier.send(
                    world.cfg,
                    Notice(
                        kind=action.kind,
                        node=node,
                        condition=action.condition,
                        message=action.message,
                        rule=decision.state.rule,
                        phase=decision.state.phase,
                        history=tuple(decision.state.history[-10:]),
                        at=api_time(world.now),
                    ),
                )
        return wants_slot, note

    def evict(self, world: World, sit: Situation, action: acts.Evict, uid: str) -> str:
        result = actuator.evict(self.kube, action.pods)
        if not result.blocked:
            return ""
        shown = ", ".join(result.blocked[:5])
        msg = f"eviction of {len(result.blocked)} Pods refused by their PodDisruptionBudgets: {shown}"
        # One Event per change of the blocked set, not one per round.
        if msg not in sit.state.message:
            self.event(world, sit.node.name, uid, names.REASON_EVICTION_BLOCKED, msg, warning=True)
        return msg

    def event(self, world: World, node: str, uid: str, reason: str, message: str, *, warning: bool) -> None:
        """An Event on the Node, where ``kubectl describe node`` shows it."""
        involved = {"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}
        self.post(world, involved, reason, message, warning=warning)

    def post(
        self, world: World, involved: dict[str, Any], reason: str, message: str, *, warning: bool
    ) -> None:
        events.post(
            self.kube,
            events.build(
                {k: v for k, v in involved.items() if v},
                reason=reason,
                message=message,
                warning=warning,
                component=names.COMPONENT,
                instance=self.settings.identity,
                namespace=self.settings.event_namespace,
                now=api_time(world.now),
            ),
            field_manager=names.COMPONENT,
        )

    # -- recording -----------------------------------------------------------------------------------
    def record(self, world: World, name: str, old: State, new: State) -> None:
        if new == old and name in world.remediations:
            return
        obj = world.remediations.get(name)
        if obj is None:
            body = {
                "apiVersion": names.REMEDIATIONS.api_version,
                "kind": names.REMEDIATIONS.kind,
                "metadata": {"name": name},
                "spec": {"nodeName": name, "rule": new.rule},
            }
            try:
                obj = self.kube.create(names.REMEDIATIONS, body, field_manager=names.COMPONENT)
            except Conflict:
                return  # someone created it meanwhile; decide again next round
        write = {**obj, "status": new.to_status()}
        try:
            world.remediations[name] = self.kube.replace(names.REMEDIATIONS, write, subresource="status")
        except (Conflict, NotFound):
            log.info("noderemediation %s changed meanwhile; deciding again next round", name)

    # -- the breaker and the budget ------------------------------------------------------------------
    def check_breaker(self, world: World) -> None:
        pool = [f for f in world.facts.values() if matching.in_pool(list(world.rules.values()), f)]
        pool_names = {f.name for f in pool}
        detections = []
        for name, obj in world.remediations.items():
            st = State.from_status(obj.get("status"))
            if name not in pool_names or st.phase in (names.DRY_RUN, names.UNHANDLED, ""):
                continue
            when = timestamps.parse(st.detected_at)
            if when is not None:
                detections.append(when)
        current = world.breaker
        new = breaker.evaluate(
            current,
            detections=detections,
            pool=len(pool),
            threshold=world.cfg.breaker_threshold,
            window=world.cfg.breaker_window,
            now=world.now,
            stamp=api_time(world.now),
        )
        if new == current:
            return

        def change(status: dict[str, Any]) -> dict[str, Any] | None:
            if breaker.read(status).tripped:
                return None
            return {**status, "circuitBreaker": new.as_status()}

        written = slots.swap_status(self.kube, world.config, change)
        if written is None:
            return
        world.config = written
        log.warning("circuit breaker tripped: %s", new.reason)
        config = {
            "apiVersion": names.CONFIGS.api_version,
            "kind": names.CONFIGS.kind,
            "name": names.CONFIG_NAME,
            "uid": uid_of(world.config),
        }
        self.post(world, config, names.REASON_BREAKER, new.reason, warning=True)
        self.notifier.send(
            world.cfg,
            Notice(kind="breaker", node="", condition="", message=new.reason, at=api_time(world.now)),
        )

    def admit(self, world: World, wants: Sequence[tuple[str, str, str]]) -> None:
        if not wants or world.breaker.tripped or world.cfg.paused:
            return
        facts = list(world.facts.values())
        for _detected, node, rule in wants:
            if world.rules.get(rule) is not None and world.rules[rule].paused:
                continue
            try:
                world.config, verdict = slots.admit(
                    self.kube,
                    world.config,
                    node=node,
                    rule=rule,
                    stamp=api_time(world.now),
                    budgets=world.budgets,
                    nodes=facts,
                )
            except KaipError as exc:
                log.warning("admission of %s: %s", node, exc.message)
                continue
            if verdict.allowed:
                log.info("node %s admitted for remediation", node)
                continue
            self.note_wait(world, node, verdict.reason)

    def note_wait(self, world: World, node: str, reason: str) -> None:
        obj = world.remediations.get(node)
        if obj is None:
            return
        st = State.from_status(obj.get("status"))
        message = f"waiting: {reason}"
        if st.message == message:
            return
        self.record(world, node, st, replace(st, message=message))
