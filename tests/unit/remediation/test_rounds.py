"""The remediator's round loop (kaip_incluster.remediation.main.Rounds): a failed round is tried again
on the shared back-off (kaip_incluster.requeue), and ``/metrics`` counts rounds, failures and retries.

The random source is injected, so each delay is exact: ``rng() == 0`` gives the low end of the equal
jitter (half the ceiling), ``rng() == 1`` the ceiling.
"""

from __future__ import annotations

import threading

from kaip.errors import KaipError
from kaip.kube.errors import Conflict, Forbidden, ServerError
from kaip_incluster.remediation.main import ROUND_REQUEUE, Rounds, metrics
from kaip_incluster.requeue import Backoff


class Ticks:
    """A round that raises the queued errors, one per call, then succeeds."""

    def __init__(self, *errors: KaipError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


def unavailable() -> ServerError:
    return ServerError("Error from server (ServiceUnavailable): try later", status=503)


def forbidden() -> Forbidden:
    return Forbidden("Error from server (Forbidden): nodes is forbidden", status=403, reason="Forbidden")


def test_a_round_that_succeeds_waits_the_interval() -> None:
    rounds = Rounds(Ticks(), interval=5.0, rng=lambda: 0.0)
    assert [rounds.once() for _ in range(3)] == [5.0, 5.0, 5.0]
    assert rounds.counts() == (3, {})


def test_failed_rounds_are_tried_again_on_a_doubling_capped_delay_then_the_interval() -> None:
    rounds = Rounds(Ticks(*[unavailable() for _ in range(10)]), interval=5.0, rng=lambda: 0.0)
    delays = [rounds.once() for _ in range(11)]
    # Half of 0.5 * 2**(n-1), capped at 60 s; the eleventh round succeeds: back to the interval.
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 5.0]
    assert rounds.counts() == (11, {"ServerError": 10})
    assert rounds.backoff.tallies() == ({"ServerError": 10}, {})
    assert rounds.backoff.counts() == (0, 0)  # forgotten on success


def test_the_jitter_stays_within_the_ceiling() -> None:
    rounds = Rounds(Ticks(*[unavailable() for _ in range(9)]), interval=5.0, rng=lambda: 1.0)
    assert [rounds.once() for _ in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert ROUND_REQUEUE.cap == 60.0


def test_a_success_starts_the_schedule_over() -> None:
    ticks = Ticks(unavailable(), unavailable())
    rounds = Rounds(ticks, interval=5.0, rng=lambda: 0.0)
    assert [rounds.once() for _ in range(3)] == [0.25, 0.5, 5.0]
    ticks.errors = [Conflict("lost a race", status=409)]
    assert rounds.once() == 0.25
    assert rounds.counts() == (4, {"ServerError": 2, "Conflict": 1})


def test_a_permanent_error_is_tried_again_on_the_same_schedule_and_counted_apart() -> None:
    rounds = Rounds(Ticks(forbidden(), forbidden(), forbidden()), interval=5.0, rng=lambda: 0.0)
    assert [rounds.once() for _ in range(4)] == [0.25, 0.5, 1.0, 5.0]
    assert rounds.backoff.tallies() == ({}, {"Forbidden": 3})
    assert rounds.counts() == (4, {"Forbidden": 3})


def test_only_the_leader_runs_rounds() -> None:
    ticks = Ticks()
    rounds = Rounds(ticks, interval=0.01, rng=lambda: 0.0)
    stop, leading = threading.Event(), threading.Event()

    def tick_then_stop() -> None:
        ticks()
        stop.set()

    rounds.tick = tick_then_stop
    elected = threading.Timer(0.05, leading.set)
    elected.start()
    rounds.run(stop, leading=leading)  # ends after the first round once leading
    elected.join()
    assert ticks.calls == 1 and rounds.counts() == (1, {})


def test_metrics_name_rounds_failures_retries_and_leadership() -> None:
    rounds = Rounds(Ticks(unavailable(), forbidden()), interval=5.0, rng=lambda: 0.0)
    for _ in range(3):
        rounds.once()
    nodes: Backoff[str] = Backoff(rng=lambda: 0.0)
    nodes.next_delay("gpu-1", Conflict("lost a race", status=409))
    text = metrics(rounds, nodes, leading=True)
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert samples["kaip_remediation_rounds_total"] == "3"
    assert samples['kaip_remediation_rounds_failed_total{reason="ServerError"}'] == "1"
    assert samples['kaip_remediation_rounds_failed_total{reason="Forbidden"}'] == "1"
    assert samples['kaip_remediation_round_retries_total{reason="ServerError"}'] == "1"
    assert samples['kaip_remediation_round_permanent_errors_total{reason="Forbidden"}'] == "1"
    assert samples['kaip_remediation_round_backoff_keys{kind="temporary"}'] == "0"
    assert samples['kaip_remediation_retries_total{reason="Conflict"}'] == "1"
    assert samples['kaip_remediation_backoff_keys{kind="temporary"}'] == "1"
    assert samples["kaip_remediation_leader"] == "1"
    assert "kaip_remediation_leader 0" in metrics(rounds, nodes, leading=False)
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names))  # one TYPE line per family
