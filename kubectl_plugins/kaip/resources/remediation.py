"""Public names of node remediation (part 4 of the product): the ``remediation.kaip.dev`` API.

Cluster-scoped kinds (CRDs in ``manifests/remediation/crds/``):

* ``RemediationRule``: which condition (type, status, minimum duration) on which nodes (label
  selector) is repaired by which steps (cordon, drain, operations run as Jobs pinned to the node,
  uncordon when the condition clears), with escalation after timeouts and retries with backoff.
* ``NodeDisruptionBudget``: how many of the nodes a label selector picks may be disrupted at once
  (``maxUnavailable``: a number or a percent).
* ``NodeRemediation``: one per node, named after it; its status is the step machine's state and
  history. ``kubectl node-health remediate`` creates one by hand.
* ``RemediationConfig``: the singleton :data:`CONFIG_NAME`: pause, dry-run, the circuit breaker and
  the notifier; its status holds the breaker state and the budget slots (the one object every
  admission is compare-and-swapped on, so a budget holds under concurrent failures and restarts).

The node marker (label and taint) that ``kubectl node-health`` shows is defined in
:mod:`kaip.resources.nodes`.
"""

from __future__ import annotations

from kaip import __version__
from kaip.resources.kinds import Resource

GROUP = "remediation.kaip.dev"
VERSION = "v1alpha1"

# The tagged remote kustomization works without a clone (docs/install.md); the folder only in one.
INSTALL_HINT = (
    "install the remediation controller (kubectl apply -k "
    f'"https://github.com/kaip-dev/kaip//manifests/remediation?ref=v{__version__}", '
    "or kubectl apply -k manifests/remediation in a checkout)"
)


def _kind(plural: str, kind: str) -> Resource:
    return Resource(GROUP, VERSION, plural, kind, namespaced=False, install_hint=INSTALL_HINT)


RULES = _kind("remediationrules", "RemediationRule")
BUDGETS = _kind("nodedisruptionbudgets", "NodeDisruptionBudget")
REMEDIATIONS = _kind("noderemediations", "NodeRemediation")
CONFIGS = _kind("remediationconfigs", "RemediationConfig")

#: The one RemediationConfig the controller reads and writes.
CONFIG_NAME = "cluster"

# -- phases of a NodeRemediation ---------------------------------------------------------------------
PENDING = "Pending"  # detected; waiting for the budget, a pause or the circuit breaker
DRAINING = "Draining"  # cordoned; Pods are being evicted
OPERATING = "Operating"  # an operation's Job runs on the node
VERIFYING = "Verifying"  # waiting for the condition to clear (or for the next retry)
SUCCEEDED = "Succeeded"  # the condition cleared; node handed back
FAILED = "Failed"  # every operation and retry used up; node stays cordoned, notifier told
RESOLVED = "Resolved"  # cleared without us (before any step, after a failure, or never handled)
DRY_RUN = "DryRun"  # dry-run: the plan is in the history, nothing was done
UNHANDLED = "Unhandled"  # an abnormal condition no rule handles; notifier told

ACTIVE_PHASES = (PENDING, DRAINING, OPERATING, VERIFYING)
TERMINAL_PHASES = (SUCCEEDED, FAILED, RESOLVED, DRY_RUN, UNHANDLED)
PHASES = ACTIVE_PHASES + TERMINAL_PHASES

# -- operation types of a rule -----------------------------------------------------------------------
OPERATION_JOB = "Job"  # the rule's Pod template, run as a Job on the node
OPERATION_REBOOT = "Reboot"  # a privileged Job that asks the host's systemd to reboot

# -- breaker states ----------------------------------------------------------------------------------
BREAKER_CLOSED = "Closed"
BREAKER_TRIPPED = "Tripped"

# -- labels and annotations on what the controller creates -------------------------------------------
LABEL_COMPONENT = "app.kubernetes.io/component"
COMPONENT_JOB = "kaip-remediation"
#: On remediation Jobs and their Pods: the node they operate on.
LABEL_NODE = f"{GROUP}/node"
LABEL_RULE = f"{GROUP}/rule"

#: Default image of reboot Jobs (needs ``nsenter``; the host's systemd does the reboot).
REBOOT_IMAGE = "busybox:1.36"

# -- Event reasons (on the Node) ---------------------------------------------------------------------
REASON_DETECTED = "RemediationDetected"
REASON_CORDONED = "RemediationCordoned"
REASON_EVICTION_BLOCKED = "EvictionBlocked"
REASON_OPERATION = "RemediationOperation"
REASON_ESCALATED = "RemediationEscalated"
REASON_RETRY = "RemediationRetry"
REASON_SUCCEEDED = "Remediated"
REASON_FAILED = "RemediationFailed"
REASON_RESOLVED = "RemediationResolved"
REASON_DRY_RUN = "RemediationDryRun"
REASON_UNHANDLED = "UnhandledCondition"
REASON_BREAKER = "CircuitBreakerTripped"

#: The controller's name in Events and field managers.
COMPONENT = "kaip-remediator"
