"""Merging live and stored lines (kaip.logs.merge), the settings' precedence (kaip.logs.config.resolve),
and task names from Pod names (kaip.aiplatform.logs.task_of_pod)."""

from __future__ import annotations

import pytest

from kaip.aiplatform.logs import task_of_pod
from kaip.logs import contract
from kaip.logs.config import Overrides, configmap_ref, resolve
from kaip.logs.merge import Seen, by_time, format_stamp, parse_stamp, split_stamped

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def test_stamps_round_trip_at_nanoseconds() -> None:
    assert parse_stamp("2026-01-01T00:00:00Z") == T0
    assert parse_stamp("2026-01-01T00:00:00.000000001Z") == T0 + 1
    assert parse_stamp("2026-01-01T00:00:00.5Z") == T0 + 500_000_000
    assert parse_stamp("2026-01-01T01:00:00.25+01:00") == T0 + 250_000_000
    assert format_stamp(T0 + 123) == "2026-01-01T00:00:00.000000123Z"
    assert parse_stamp(format_stamp(T0 + 987_654_321)) == T0 + 987_654_321
    assert split_stamped("2026-01-01T00:00:00.000000007Z hello world\n") == (T0 + 7, "hello world")
    assert split_stamped("no stamp here") == (None, "no stamp here")


def test_seen_prints_each_line_once_whichever_side_comes_first() -> None:
    seen = Seen()
    stored = [(T0, "a"), (T0 + 1, "b"), (T0 + 1, "c")]
    live = [(T0, "a"), (T0 + 1, "b"), (T0 + 1, "c"), (T0 + 1, "d"), (T0 + 2, "e")]
    printed = [line for ts, line in stored if seen.admit("p", "c", ts, line)]
    printed += [line for ts, line in live if seen.admit("p", "c", ts, line)]
    assert printed == ["a", "b", "c", "d", "e"]
    # Another container's stream is its own.
    assert seen.admit("p", "sidecar", T0, "a")
    assert seen.last("p", "c") == T0 + 2


def test_by_time_merges_sorted_streams() -> None:
    a = iter([(1, "a1"), (5, "a5")])
    b = iter([(2, "b2"), (5, "b5"), (9, "b9")])
    assert [x for _, x in by_time([a, b])] == ["a1", "b2", "a5", "b5", "b9"]


def test_flag_beats_environment_beats_configmap() -> None:
    data = {"url": "http://cm:3100", "tenant": "cm-tenant"}
    env = {"KAIP_LOKI_URL": "http://env:3100", "KAIP_LOKI_TENANT": "env-tenant"}
    assert resolve({}, {}) is None
    s = resolve(data, {})
    assert s is not None and (s.url, s.tenant) == ("http://cm:3100", "cm-tenant")
    s = resolve(data, env)
    assert s is not None and (s.url, s.tenant) == ("http://env:3100", "env-tenant")
    s = resolve(data, env, Overrides(url="http://flag:3100/", tenant="flag-tenant"))
    assert s is not None and (s.url, s.tenant) == ("http://flag:3100", "flag-tenant")


def test_tenant_named_by_the_namespace_beats_the_fixed_one() -> None:
    data = {
        "url": "http://loki",
        "tenant": "shared",
        "tenantLabel": "kaip.dev/log-tenant",
        "nodeTenant": "ops",
    }
    s = resolve(data, {}, namespace_labels={"kaip.dev/log-tenant": "team-a"})
    assert s is not None and s.tenant == "team-a"
    s = resolve(data, {}, namespace_labels={})
    assert s is not None and s.tenant == "shared"
    s = resolve(
        {**data, "tenantAnnotation": "logs/tenant"}, {}, namespace_annotations={"logs/tenant": "team-b"}
    )
    assert s is not None and s.tenant == "team-b"
    s = resolve(data, {}, namespace_labels={"kaip.dev/log-tenant": "team-a"}, nodes=True)
    assert s is not None and s.tenant == "ops"


def test_credentials_come_from_the_secret_or_environment_and_are_never_printed() -> None:
    s = resolve({"url": "http://loki"}, {}, secret={"token": "s3cr3t\n"})
    assert s is not None and s.token == "s3cr3t" and "s3cr3t" not in repr(s)
    s = resolve({"url": "http://loki"}, {}, secret={"username": "u", "password": "p4ss"})
    assert s is not None and s.basic_auth == ("u", "p4ss") and "p4ss" not in repr(s)
    s = resolve({"url": "http://loki"}, {"KAIP_LOKI_TOKEN": "envtok"}, secret={"token": "s3cr3t"})
    assert s is not None and s.token == "envtok"


def test_configmap_can_be_moved_by_environment() -> None:
    assert configmap_ref({}) == ("kaip-system", "kaip-logging")
    assert configmap_ref({"KAIP_LOGGING_CONFIGMAP": "logging/kaip"}) == ("logging", "kaip")


@pytest.mark.parametrize(
    ("pod", "kind", "task"),
    [
        ("mnist-1-master-0", "PyTorchJob", "master-replica-0"),
        ("mnist-1-worker-3", "PyTorchJob", "worker-replica-3"),
        ("mnist-1-ps-1", "TFJob", "ps-replica-1"),
        ("mnist-1-chief-0", "TFJob", "master-replica-0"),
        ("mnist-1-worker-0", "JAXJob", "master-replica-0"),
        ("mnist-1-worker-2", "JAXJob", "worker-replica-1"),
        ("mnist-1-launcher-x7k2p", "MPIJob", "master-replica-0"),
    ],
)
def test_task_of_pod(pod: str, kind: str, task: str) -> None:
    assert task_of_pod(pod, "mnist-1", kind) == task


def test_job_query_selects_the_replicas_only() -> None:
    import re

    q = contract.job_query("team-a", "mnist-1", "pytorch")
    assert q.startswith('{namespace="team-a", pod=~"') and q.endswith('container="pytorch"}')
    pattern = contract.job_pods_pattern("mnist-1")
    assert re.fullmatch(pattern, "mnist-1-worker-3")
    assert re.fullmatch(pattern, "mnist-1-launcher-x7k2p")
    assert not re.fullmatch(pattern, "mnist-10-worker-3")
