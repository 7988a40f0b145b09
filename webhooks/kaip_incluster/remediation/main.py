"""``kaip-remediator``: the round loop of the remediation controller in the process shell.

Every replica campaigns for the Lease (:mod:`kaip_incluster.process`); only the holder runs rounds,
one every ``--interval`` seconds. A replica that loses the Lease exits (code 1) and is restarted by
its Deployment. Since all state is in the API, a replica killed at any point (even with SIGKILL)
leaves nothing that the next leader cannot continue.

A round that fails as a whole (it could not read the API state, or write the breaker) is tried again
on the shared back-off (:mod:`kaip_incluster.requeue`): ``base * factor**(n-1)`` seconds after its
``n``-th failure in a row, jittered and capped at :data:`ROUND_REQUEUE`'s one minute, instead of
after the interval; the first round that succeeds goes back to the interval. A round has no object
whose change could be watched for, so a permanent error (403, 404) is tried again on the same
schedule, counted apart. ``/metrics`` (Prometheus text):

* ``kaip_remediation_rounds_total``: rounds run; ``kaip_remediation_rounds_failed_total{reason}``:
  rounds that failed, by error class;
* ``kaip_remediation_round_retries_total{reason}`` (temporary errors) and
  ``kaip_remediation_round_permanent_errors_total{reason}``: the round back-off's counters;
  ``kaip_remediation_round_backoff_keys{kind}``: 1 while rounds are in back-off;
* ``kaip_remediation_retries_total{reason}``, ``kaip_remediation_permanent_errors_total{reason}``,
  ``kaip_remediation_backoff_keys{kind}``: the per-node back-off of the rounds' steps;
* ``kaip_remediation_leader``: 1 while this replica holds the Lease.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kaip.errors import KaipError, shorten
from kaip_incluster import process
from kaip_incluster.remediation.loop import Reconciler, Settings
from kaip_incluster.requeue import Backoff, RequeuePolicy, metrics_text, reason_of

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger("kaip.remediator")

PROG = "kaip-remediator"
#: After a failed round: 0.25-0.5 s, doubling, at most a minute (broken nodes wait while it waits).
ROUND_REQUEUE = RequeuePolicy(cap=60.0)
ROUND = "round"  # the one key of the round back-off


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    process.add_flags(parser, lease_name="kaip-remediator", health="/healthz /readyz /metrics")
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "kaip-remediation"),
        help="namespace of the Lease and of the operation Jobs",
    )
    parser.add_argument("--event-namespace", default="default", help="namespace of the Events about Nodes")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    return parser.parse_args(list(argv))


class Rounds:
    """Runs ``tick`` every ``interval`` while leading; a failed round is tried again on the back-off."""

    def __init__(
        self,
        tick: Callable[[], object],
        *,
        interval: float,
        policy: RequeuePolicy = ROUND_REQUEUE,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tick, self.interval, self._rng = tick, interval, rng
        self.backoff: Backoff[str] = Backoff(policy, rng=rng, clock=clock)
        self._lock = threading.Lock()
        self.rounds = 0
        self.failed: Counter[str] = Counter()  # by error class

    def once(self) -> float:
        """Run one round; the seconds until the next."""
        with self._lock:
            self.rounds += 1
        try:
            self.tick()
        except KaipError as exc:
            return self._failed(exc)
        if self.backoff.failures(ROUND):
            log.info("round succeeded after %d failures in a row", self.backoff.failures(ROUND))
            self.backoff.forget(ROUND)
        return self.interval

    def _failed(self, exc: KaipError) -> float:
        reason = reason_of(exc)
        with self._lock:
            self.failed[reason] += 1
        delay = self.backoff.next_delay(ROUND, exc)
        failures = self.backoff.failures(ROUND)
        if delay is None:  # permanent: nothing to watch for a change, so the same schedule
            delay = self.backoff.policy.delay(failures, rng=self._rng)
        log.warning(
            "round failed (try %d, next in %.1fs): %s: %s", failures, delay, reason, shorten(exc.message)
        )
        return delay

    def run(self, stop: threading.Event, *, leading: threading.Event) -> None:
        while not stop.is_set():
            stop.wait(self.once() if leading.is_set() else self.interval)

    def counts(self) -> tuple[int, dict[str, int]]:
        with self._lock:
            return self.rounds, dict(self.failed)


def metrics(rounds: Rounds, nodes: Backoff[str], *, leading: bool) -> str:
    """The remediator's ``/metrics`` (the module's docstring lists them)."""
    run, failed = rounds.counts()
    return "".join(
        [
            process.family("kaip_remediation_rounds_total", "counter", run),
            process.family("kaip_remediation_rounds_failed_total", "counter", failed),
            metrics_text("kaip_remediation_round", rounds.backoff),
            metrics_text("kaip_remediation", nodes),
            process.family("kaip_remediation_leader", "gauge", int(leading)),
        ]
    )


def main(argv: Sequence[str]) -> int:
    process.setup_logging()
    args = parse_args(argv)
    settings = Settings(
        namespace=args.namespace, event_namespace=args.event_namespace, identity=args.identity
    )

    def build(kube: Kube, shell: process.Process) -> process.Work:
        reconciler = Reconciler(kube, settings)
        rounds = Rounds(reconciler.tick, interval=args.interval)
        leading = shell.leading
        return process.Work(
            run=lambda stop: rounds.run(stop, leading=leading),
            ready=lambda: (True, "leader\n" if leading.is_set() else "standby\n"),
            metrics=lambda: metrics(rounds, reconciler.backoff, leading=leading.is_set()),
        )

    return process.run(PROG, args, lease_namespace=args.namespace, build=build)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
