"""The controllers' process shell (kaip_incluster.process): its pure parts, and both mains' flags.

The shell itself (signals, the HTTP server, the Lease thread) runs in the controllers' integration
tests (tests/integration/preload/test_controller.py, tests/integration/remediation/).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import pytest

from kaip_incluster import process
from kaip_incluster.controller.main import parse_args as controller_args
from kaip_incluster.remediation.main import parse_args as remediator_args


def work(*, ready: bool = True, metrics: str | None = "m 1\n") -> process.Work:
    return process.Work(
        run=lambda stop: None,
        ready=lambda: (ready, "ok\n" if ready else "watches not synced\n"),
        metrics=(lambda: metrics) if metrics is not None else None,
    )


def test_healthz_answers_ok_while_alive_and_503_once_the_work_has_ended() -> None:
    assert process.route("/healthz", work(), alive=True) == process.Answer(200, "ok\n")
    assert process.route("/healthz", work(), alive=False) == process.Answer(503, "stopping\n")


def test_readyz_is_what_the_work_says() -> None:
    assert process.route("/readyz", work(ready=True), alive=True) == process.Answer(200, "ok\n")
    assert process.route("/readyz", work(ready=False), alive=True) == process.Answer(
        503, "watches not synced\n"
    )


def test_metrics_are_prometheus_text_and_only_where_the_work_has_them() -> None:
    answer = process.route("/metrics", work(), alive=True)
    assert answer == process.Answer(200, "m 1\n", "text/plain; version=0.0.4")
    assert process.route("/metrics?x=1", work(), alive=True).code == 200
    assert process.route("/metrics", work(metrics=None), alive=True).code == 404
    assert process.route("/", work(), alive=True).code == 404


def test_a_family_has_one_type_line_and_its_samples_sorted_by_label() -> None:
    assert process.family("kaip_x_total", "counter", 3) == "# TYPE kaip_x_total counter\nkaip_x_total 3\n"
    text = process.family("kaip_x_failed_total", "counter", {"ServerError": 2, "Conflict": 1})
    assert text == (
        "# TYPE kaip_x_failed_total counter\n"
        'kaip_x_failed_total{reason="Conflict"} 1\n'
        'kaip_x_failed_total{reason="ServerError"} 2\n'
    )
    assert process.family("k", "gauge", {}, label="kind") == "# TYPE k gauge\n"
    assert process.family("k", "gauge", {'a"b\\': 1}) == '# TYPE k gauge\nk{reason="a\\"b\\\\"} 1\n'


def test_the_lease_comes_from_the_shared_flags() -> None:
    args = controller_args(
        [
            "--lease-namespace=ns",
            "--identity=me",
            "--lease-duration=4",
            "--renew-deadline=3",
            "--retry-period=0.5",
        ]
    )
    lease = process.lease_config(args, args.lease_namespace)
    assert (lease.name, lease.namespace, lease.identity) == ("kaip-data-loader", "ns", "me")
    assert (lease.lease_seconds, lease.renew_deadline, lease.retry_period) == (4.0, 3.0, 0.5)


@pytest.mark.parametrize(
    ("parse", "lease_name"), [(controller_args, "kaip-data-loader"), (remediator_args, "kaip-remediator")]
)
def test_both_mains_take_the_shared_flags_with_their_own_lease(
    parse: Callable[[list[str]], argparse.Namespace], lease_name: str
) -> None:
    args = parse([])
    assert args.lease_name == lease_name
    assert args.kubeconfig is None and args.health_port == 8080
    assert (args.lease_duration, args.renew_deadline, args.retry_period) == (15.0, 10.0, 2.0)
    assert parse(["--health-port=0", "--kubeconfig=k"]).health_port == 0


def test_the_identity_is_the_pod_name_else_host_and_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "kaip-remediator-7d9f-x2")
    assert process.default_identity() == "kaip-remediator-7d9f-x2"
    monkeypatch.delenv("POD_NAME")
    assert process.default_identity().endswith(f"-{os.getpid()}")


def test_each_main_keeps_its_own_namespace_flag() -> None:
    assert controller_args(["--lease-namespace=a", "--watch-namespace=b"]).lease_namespace == "a"
    parsed = remediator_args(["--namespace=r", "--event-namespace=e", "--interval=0.3"])
    assert (parsed.namespace, parsed.event_namespace, parsed.interval) == ("r", "e", 0.3)
