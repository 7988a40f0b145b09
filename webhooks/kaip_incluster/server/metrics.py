"""Prometheus metrics of the webhook server, in a registry of its own (one per server)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Millisecond-scale buckets (in seconds, Prometheus' base unit): the target is p99 < 10 ms, and the
#: apiserver's own histogram starts at 5 ms, so the interesting range is 0.25 ms to 100 ms.
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.duration = Histogram(
            "kaip_webhook_request_duration_seconds",
            "Time to answer an AdmissionReview, by webhook and outcome (allowed, denied, invalid, error).",
            ["webhook", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.patched = Counter(
            "kaip_webhook_pods_mutated_total", "Pods that received a non-empty patch.", registry=r
        )
        self.warnings = Counter(
            "kaip_webhook_warnings_total",
            "Warnings returned to clients, by webhook.",
            ["webhook"],
            registry=r,
        )
        self.lookups = Counter(
            "kaip_webhook_cache_misses_total",
            "Lookups answered by a direct API request instead of the cache, by resource.",
            ["resource"],
            registry=r,
        )
        self.cache_objects = Gauge(
            "kaip_webhook_cache_objects", "Objects held by each watch cache.", ["resource"], registry=r
        )
        self.ready = Gauge(
            "kaip_webhook_ready", "1 once the caches are synced and TLS is loaded.", registry=r
        )
        self.cert_expiry = Gauge(
            "kaip_webhook_certificate_expiry_timestamp_seconds",
            "When the serving certificate expires (Unix time).",
            registry=r,
        )
        self.cert_reloads = Counter(
            "kaip_webhook_certificate_reloads_total", "Serving certificates loaded after start.", registry=r
        )
