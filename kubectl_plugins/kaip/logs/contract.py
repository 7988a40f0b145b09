"""The stream labels kaip reads from Loki, as the usual Alloy Kubernetes pipeline sets them.

Alloy's ``discovery.kubernetes`` only discovers (its labels are ``__meta_kubernetes_*`` and are
dropped unless relabelled); the common ``discovery.relabel`` rules of Alloy's and Grafana's
Kubernetes examples (the k8s-monitoring chart, the promtail conversion) keep these, and
``manifests/logging/alloy.yaml`` sets exactly them:

========== ============================================ =====================================
label      Pod logs                                     node journal (kernel, kubelet, runtime)
========== ============================================ =====================================
namespace  ``__meta_kubernetes_namespace``              —
pod        ``__meta_kubernetes_pod_name``               —
container  ``__meta_kubernetes_pod_container_name``     —
node_name  ``__meta_kubernetes_pod_node_name``          ``__journal__hostname``
job        ``<namespace>/<container>`` (Alloy's habit)  ``node/journal``
unit       —                                            ``__journal__systemd_unit``
transport  —                                            ``__journal__transport`` (``kernel``)
========== ============================================ =====================================

``job`` is Alloy's, not Kubeflow's: a training job's lines are found by ``namespace`` and by the
names its operator gives its Pods (``<job>-<replica type>-<index>``), which outlive the Pods.
"""

from __future__ import annotations

import re

from kaip.logs.loki import selector

NAMESPACE = "namespace"
POD = "pod"
CONTAINER = "container"
NODE = "node_name"
JOB = "job"
UNIT = "unit"
TRANSPORT = "transport"
JOURNAL_JOB = "node/journal"

#: The systemd units of a node's own logs shown by ``node-health describe --logs``.
NODE_UNITS = (
    "kubelet.service",
    "containerd.service",
    "crio.service",
    "docker.service",
    "node-problem-detector.service",
)

REPLICA_TYPES = ("master", "chief", "worker", "ps", "evaluator", "launcher")


def job_pods_pattern(job_name: str) -> str:
    """A regex (RE2, as LogQL's ``=~``) for the Pod names of a Kubeflow job's replicas."""
    return re.escape(job_name).replace("\\-", "-") + "-(" + "|".join(REPLICA_TYPES) + ")(-[0-9]+|-[a-z0-9]+)?"


def job_query(namespace: str, job_name: str, container: str = "") -> str:
    matchers = [(NAMESPACE, "=", namespace), (POD, "=~", job_pods_pattern(job_name))]
    if container:
        matchers.append((CONTAINER, "=", container))
    return selector(matchers)


def node_query(node: str) -> str:
    """The node's journal: kernel lines (no unit) and the units in :data:`NODE_UNITS`."""
    units = "|".join(re.escape(u) for u in NODE_UNITS) + "|"
    return selector([(NODE, "=", node), (JOB, "=", JOURNAL_JOB), (UNIT, "=~", units)])
