"""The Job that runs one operation on one node: pinned to it, tolerating our taint and the cordon.

Pinned by a required node affinity on the node's name (what the DaemonSet controller does), not by
``nodeName``: the scheduler then still checks resources and taints, and the Pod lands on that node
and nowhere else. A Reboot operation asks the host's systemd for a reboot through ``nsenter`` into
PID 1's namespaces and returns at once (``--no-block``), so the Job completes before the node goes down.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

from kaip.kube.objects import annotations_of, conditions_of, labels_of, spec_of
from kaip.remediation.spec import Operation, Rule
from kaip.resources import nodes as node_names
from kaip.resources import remediation as names

REBOOT_COMMAND = (
    "nsenter",
    "--target",
    "1",
    "--mount",
    "--uts",
    "--ipc",
    "--net",
    "--pid",
    "--",
    "systemctl",
    "reboot",
    "--no-block",
)
TTL_SECONDS = 3600


def label_value(text: str) -> str:
    """A label value for ``text``: itself when it fits 63 characters, else a stable shortened form."""
    if len(text) <= 63:
        return text
    return text[:54].rstrip("-.") + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def tolerations() -> list[dict[str, str]]:
    return [
        {"key": node_names.TAINT_REMEDIATION, "operator": "Exists", "effect": "NoSchedule"},
        {"key": node_names.TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"},
    ]


def _pod_spec(op: Operation, node: str) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(dict(spec_of(op.template)))
    if op.type == names.OPERATION_REBOOT:
        spec["hostPID"] = True
        spec["containers"] = [
            {
                "name": "reboot",
                "image": op.image,
                "command": list(REBOOT_COMMAND),
                "securityContext": {"privileged": True},
            }
        ]
    spec["restartPolicy"] = "Never"
    spec["affinity"] = {
        **(spec.get("affinity") or {}),
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
                ]
            }
        },
    }
    spec["tolerations"] = [*tolerations(), *(spec.get("tolerations") or [])]
    for container in spec.get("containers") or []:
        env = [e for e in container.get("env") or [] if e.get("name") != "NODE_NAME"]
        container["env"] = [*env, {"name": "NODE_NAME", "value": node}]
    return spec


def build(*, name: str, namespace: str, node: str, rule: Rule, index: int) -> dict[str, Any]:
    """The Job for operation ``index`` of ``rule`` on ``node``."""
    op = rule.operations[index]
    labels = {
        names.LABEL_COMPONENT: names.COMPONENT_JOB,
        names.LABEL_NODE: label_value(node),
        names.LABEL_RULE: label_value(rule.name),
    }
    pod_labels = {**labels_of(op.template), **labels}
    annotations = {
        **annotations_of(op.template),
        f"{names.GROUP}/node": node,
        f"{names.GROUP}/operation": op.name,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(int(op.timeout.total_seconds()), 1),
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": _pod_spec(op, node),
            },
        },
    }


def state(job: Mapping[str, Any] | None) -> str:
    """``Succeeded``, ``Failed`` or ``Running`` from a Job's conditions (``Missing`` for none)."""
    if job is None:
        return "Missing"
    for cond in conditions_of(job):
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "Succeeded"
        if cond.get("type") == "Failed":
            return "Failed"
    return "Running"
