"""The API names of the queueing and gang-scheduling systems `kubectl ai-platform` reads: Kueue's
Workload (``kueue.x-k8s.io/v1beta2``, sigs.k8s.io/kueue v0.17 ``apis/kueue/v1beta2``) and
scheduler-plugins' PodGroup (``scheduling.x-k8s.io/v1alpha1``, sigs.k8s.io/scheduler-plugins v0.30
``apis/scheduling/v1alpha1``). Pure data.
"""

from __future__ import annotations

from kaip.resources.kinds import Resource

INSTALL_KUEUE = (
    "install Kueue (kubectl apply --server-side -f "
    "https://github.com/kubernetes-sigs/kueue/releases/download/v0.17.0/manifests.yaml)"
)
INSTALL_SCHEDULER_PLUGINS = (
    "install scheduler-plugins' coscheduling (its PodGroup CRD, controller and scheduler, "
    "https://github.com/kubernetes-sigs/scheduler-plugins/tree/v0.30.6/manifests/install)"
)

WORKLOADS = Resource("kueue.x-k8s.io", "v1beta2", "workloads", "Workload", install_hint=INSTALL_KUEUE)
PODGROUPS = Resource(
    "scheduling.x-k8s.io", "v1alpha1", "podgroups", "PodGroup", install_hint=INSTALL_SCHEDULER_PLUGINS
)

#: Kueue's Workload conditions (workload_types.go).
QUOTA_RESERVED = "QuotaReserved"
ADMITTED = "Admitted"
EVICTED = "Evicted"
FINISHED = "Finished"
#: The label scheduler-plugins' coscheduling reads on a Pod: the name of its PodGroup.
LABEL_POD_GROUP = "scheduling.x-k8s.io/pod-group"
