"""Latency of the credentials webhooks at 500 AdmissionReviews per second (issue 3, item 6).

Goal: p99 under 10 ms with no errors for Pod mutation and for Secret validation, measured by a
separate load process over HTTPS on loopback (open loop: request i is due at t0 + i/500 s and its
latency counts from that moment, so a stalled server cannot hide behind a slowed-down client), and
the apiserver's own view, apiserver_admission_webhook_admission_duration_seconds, for Pods and Secrets
created through kube-apiserver. Run with `pytest tests/benchmarks/test_webhook_latency.py -s`.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import ssl
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kaip.kube.client import Kube
from kaip.resources import kinds
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.webhooks import Webhook, deploy, undeploy

RATE = 500
WARMUP_SECONDS = 3
SECONDS = 20
CONNECTIONS = 16
AWS = {
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "region": "eu-west-1",
}


def key_json() -> str:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "ml-platform",
            "private_key_id": "abc",
            "private_key": pem.decode(),
            "client_email": "trainer@ml-platform.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def pod(name: str) -> dict[str, Any]:
    """A realistic training Pod: an init container, two containers, some env, asking for both kinds."""
    env = [{"name": f"VAR_{i}", "value": f"value-{i}"} for i in range(20)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "trainer"},
            "annotations": {"kaip.dev/credentials": "s3,gcs"},
        },
        "spec": {
            "serviceAccountName": "default",
            "initContainers": [{"name": "fetch", "image": "registry.example/fetch:1", "env": env[:5]}],
            "containers": [
                {
                    "name": "trainer",
                    "image": "registry.example/trainer:1",
                    "env": env,
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                },
                {"name": "logger", "image": "registry.example/logger:1"},
            ],
        },
    }


def review(uid: str, namespace: str, kind: str, obj: dict[str, Any]) -> bytes:
    request = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": kind.lower() + "s"},
        "operation": "CREATE",
        "namespace": namespace,
        "name": obj["metadata"]["name"],
        "object": obj,
        "userInfo": {"username": "alice"},
        "dryRun": False,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


# -- the load process ---------------------------------------------------------------------------------
async def _drive(url: str, ca_pem: str, bodies: list[bytes], rate: int, warmup: int) -> dict[str, Any]:
    import aiohttp

    context = ssl.create_default_context(cadata=ca_pem)
    connector = aiohttp.TCPConnector(ssl=context, limit=CONNECTIONS, keepalive_timeout=60)
    latencies: list[float] = []
    errors: list[str] = []
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(index: int, due: float) -> None:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with session.post(
                    url, data=bodies[index % len(bodies)], headers={"Content-Type": "application/json"}
                ) as resp:
                    payload = await resp.read()
                    if resp.status != 200 or b'"allowed":true' not in payload:
                        errors.append(f"HTTP {resp.status}: {payload[:120]!r}")
            except Exception as exc:
                errors.append(repr(exc))
            if index >= warmup:
                latencies.append(time.perf_counter() - due)

        total = len(bodies)
        start = time.perf_counter() + 0.2
        tasks = [asyncio.create_task(one(i, start + i / rate)) for i in range(total)]
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed, "sent": total}


def _load(url: str, ca_pem: str, bodies: list[bytes], rate: int, warmup: int, out: Any) -> None:
    out.put(asyncio.run(_drive(url, ca_pem, bodies, rate, warmup)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to tell our cost from the machine's load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(url: str, ca_pem: bytes, bodies: list[bytes]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(
        target=_load, args=(url, ca_pem.decode(), bodies, RATE, RATE * WARMUP_SECONDS, queue)
    )
    process.start()
    result: dict[str, Any] = queue.get(timeout=WARMUP_SECONDS + SECONDS + 120)
    process.join(timeout=30)
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(what: str, result: dict[str, Any], server_cpu: float) -> dict[str, float]:
    lat = result["latencies"]
    figures = {
        "p50": percentile(lat, 0.50) * 1000,
        "p90": percentile(lat, 0.90) * 1000,
        "p99": percentile(lat, 0.99) * 1000,
        "p999": percentile(lat, 0.999) * 1000,
        "max": max(lat) * 1000,
        "mean": statistics.fmean(lat) * 1000,
        "rate": result["sent"] / result["elapsed"],
        "cpu_ms": server_cpu / result["sent"] * 1000,
    }
    load = os.getloadavg()[0]
    print(
        f"\n{what}: {len(lat)} reviews measured at {figures['rate']:.0f}/s offered {RATE}/s, "
        f"errors {len(result['errors'])}; latency ms p50 {figures['p50']:.2f} p90 {figures['p90']:.2f} "
        f"p99 {figures['p99']:.2f} p99.9 {figures['p999']:.2f} max {figures['max']:.2f} mean {figures['mean']:.2f}; "
        f"server CPU {figures['cpu_ms']:.3f} ms per review; machine load average {load:.1f} on {os.cpu_count()} cores"
    )
    return figures


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def webhook(
    control_plane: ControlPlane, admin_kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    hook = deploy(control_plane, admin_kube, tmp_path_factory.mktemp("webhook"))
    try:
        yield hook
    finally:
        undeploy(admin_kube, hook)


@pytest.fixture
def credentials(kube: Kube, webhook: Webhook) -> str:
    kube.create(
        kinds.SECRETS, {"metadata": {"name": "s3"}, "type": "kaip.dev/aws-credentials", "stringData": AWS}
    )
    kube.create(
        kinds.SECRETS,
        {
            "metadata": {"name": "gcs"},
            "type": "kaip.dev/gcp-credentials",
            "stringData": {"key.json": key_json()},
        },
    )
    deadline = time.monotonic() + 10
    while (
        'kaip_webhook_cache_objects{resource="secrets"} 2.0' not in webhook.get("/metrics")[1]
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    return kube.namespace


# -- the benchmarks -------------------------------------------------------------------------------------
def test_pod_mutation_p99_under_10ms_at_500_per_second(webhook: Webhook, credentials: str) -> None:
    count = RATE * (WARMUP_SECONDS + SECONDS)
    bodies = [review(f"uid-{i}", credentials, "Pod", pod(f"trainer-{i}")) for i in range(200)]
    cpu = cpu_seconds(webhook.server.proc.pid)
    result = run_load(webhook.url + "/mutate/pods", webhook.ca_pem, bodies * (count // len(bodies)))
    cpu = cpu_seconds(webhook.server.proc.pid) - cpu
    figures = report(
        "Pod mutation (/mutate/pods, 2 KB Pod, AWS + GCP injected into 3 containers)", result, cpu
    )
    assert result["errors"] == []
    assert figures["p99"] < 10.0
    assert figures["rate"] > RATE * 0.95
    assert '"patchOps":' in webhook.log()


def test_secret_validation_p99_under_10ms_at_500_per_second(webhook: Webhook, credentials: str) -> None:
    count = RATE * (WARMUP_SECONDS + SECONDS)
    gcp = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gcs"},
        "type": "kaip.dev/gcp-credentials",
        "stringData": {"key.json": key_json()},
    }
    aws = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s3"},
        "type": "kaip.dev/aws-credentials",
        "stringData": AWS,
    }
    bodies = [review(f"uid-{i}", credentials, "Secret", gcp if i % 2 else aws) for i in range(200)]
    cpu = cpu_seconds(webhook.server.proc.pid)
    result = run_load(webhook.url + "/validate/secrets", webhook.ca_pem, bodies * (count // len(bodies)))
    cpu = cpu_seconds(webhook.server.proc.pid) - cpu
    figures = report(
        "Secret validation (/validate/secrets, half GCP key files with a 2048-bit key, half AWS)", result, cpu
    )
    assert result["errors"] == []
    assert figures["p99"] < 10.0
    assert figures["rate"] > RATE * 0.95


# -- the apiserver's view -------------------------------------------------------------------------------
_BUCKET = re.compile(
    r"^apiserver_admission_webhook_admission_duration_seconds_(bucket|sum|count)\{([^}]*)\} (\S+)$", re.M
)


def apiserver_histogram(admin: Kube, webhook_name: str) -> dict[str, float]:
    text = _metrics_text(admin)
    figures: dict[str, float] = {}
    for kind, labels, value in _BUCKET.findall(text):
        if f'name="{webhook_name}"' not in labels or 'rejected="false"' not in labels:
            continue
        if kind == "bucket":
            le = re.search(r'le="([^"]+)"', labels)
            assert le is not None
            figures[f"le_{le.group(1)}"] = figures.get(f"le_{le.group(1)}", 0.0) + float(value)
        else:
            figures[kind] = figures.get(kind, 0.0) + float(value)
    return figures


def _metrics_text(admin: Kube) -> str:
    return admin.request_text("/metrics", timeout=30)


def _through_apiserver(admin: Kube, webhook_name: str, create: Any, count: int) -> dict[str, float]:
    before = apiserver_histogram(admin, webhook_name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(count)))
    after = apiserver_histogram(admin, webhook_name)
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    n = delta.get("count", 0.0)
    assert n >= count
    print(
        f"\napiserver_admission_webhook_admission_duration_seconds for {webhook_name}: {n:.0f} calls, "
        f"mean {delta['sum'] / n * 1000:.2f} ms, within 5 ms {delta['le_0.005'] / n:.1%}, "
        f"within 25 ms {delta['le_0.025'] / n:.1%}, within 100 ms {delta['le_0.1'] / n:.1%}"
    )
    return {"n": n, "mean_ms": delta["sum"] / n * 1000, "le_25ms": delta["le_0.025"] / n}


def own_time(webhook: Webhook, name: str, prefix: str) -> None:
    """The webhook's own time for the reviews the apiserver sent (its log's ``ms``), to set beside
    the apiserver's figure: the difference is the round trip and the apiserver's side of the call."""
    times = [
        float(m.group(1))
        for m in re.finditer(rf'"webhook":"{name}".*?"name":"{prefix}-\d+".*?"ms":([0-9.]+)', webhook.log())
    ]
    if times:
        print(
            f"{name}: the webhook's own time for these {len(times)} reviews: mean {statistics.fmean(times):.2f} ms, "
            f"p99 {percentile(times, 0.99):.2f} ms"
        )


def test_apiserver_measured_latency(webhook: Webhook, credentials: str, admin_kube: Kube, kube: Kube) -> None:
    pods = _through_apiserver(
        admin_kube, "pods.credentials.kaip.dev", lambda i: kube.create(kinds.PODS, pod(f"p-{i}")), 400
    )
    own_time(webhook, "mutate-pods", "p")
    secret = {"type": "kaip.dev/aws-credentials", "stringData": AWS}
    secrets = _through_apiserver(
        admin_kube,
        "secrets.credentials.kaip.dev",
        lambda i: kube.create(kinds.SECRETS, {"metadata": {"name": f"s-{i}"}, **secret}),
        400,
    )
    own_time(webhook, "validate-secrets", "s")
    # The issue asks for these figures, not for a bound: they include the apiserver's own work on a
    # machine it shares with the load. Every call was counted.
    for figures in (pods, secrets):
        assert figures["n"] >= 400
