"""Public names around Nodes: the seed's conditions, the labels we read, the remediation marker.

Condition names are those of the seed (PFN's node-failure automation): set by node-problem-detector
custom plugins (``GPUIsLost``, ``GPUPendingPage``, ``DStateProcess``, ``PCIeLinkDegraded``) and by the
active GPU check (``GPURuntimeError``). In node-problem-detector's vocabulary a condition that is
``True`` means the problem is present.

Remediation marker (written by the remediation controller, read by ``kubectl node-health``):

* label ``kaip.dev/remediation=<phase>`` on a Node under remediation, phase one of
  :data:`REMEDIATION_PHASES`; the label is removed when the node is handed back;
* taint ``kaip.dev/remediation:NoSchedule`` while the node is drained and operated on.

node-operation-controller's taint ``nodeops.k8s.preferred.jp/operating`` counts as remediation too.
"""

from __future__ import annotations

# -- conditions -------------------------------------------------------------------------------------
READY = "Ready"

GPU_IS_LOST = "GPUIsLost"
GPU_PENDING_PAGE = "GPUPendingPage"
D_STATE_PROCESS = "DStateProcess"
PCIE_LINK_DEGRADED = "PCIeLinkDegraded"
GPU_RUNTIME_ERROR = "GPURuntimeError"

#: The seed's custom conditions, in the order the seed names them.
SEED_CONDITIONS = (GPU_IS_LOST, GPU_PENDING_PAGE, D_STATE_PROCESS, PCIE_LINK_DEGRADED, GPU_RUNTIME_ERROR)

#: The kubelet's conditions that mean a problem when True.
KUBELET_PROBLEM_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")

#: node-problem-detector's built-in problem daemons (kernel, health checker, example NTP plugin).
NPD_CONDITIONS = (
    "KernelDeadlock",
    "ReadonlyFilesystem",
    "FrequentKubeletRestart",
    "FrequentDockerRestart",
    "FrequentContainerdRestart",
    "XfsShutdown",
    "CperHardwareErrorFatal",
    "KubeletUnhealthy",
    "ContainerRuntimeUnhealthy",
    "NTPProblem",
)

#: node-problem-detector re-sends every condition at least this often (--k8s-exporter-heartbeat-period).
DETECTOR_HEARTBEAT_SECONDS = 300

# -- labels read from GPU feature discovery / the GPU operator --------------------------------------
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"
LABEL_GPU_COUNT = "nvidia.com/gpu.count"
LABEL_GPU_PRESENT = "nvidia.com/gpu.present"
LABEL_DRIVER_VERSION = "nvidia.com/cuda.driver-version.full"
#: Default pool label for grouping; clusters may name their own with ``--pool-label``.
LABEL_POOL = "kaip.dev/pool"

#: Extended resources counted as accelerators (fnmatch patterns): whole GPUs, MIG profiles,
#: time-sliced replicas and other vendors' devices.
ACCELERATOR_PATTERNS = (
    "nvidia.com/gpu",
    "nvidia.com/gpu.shared",
    "nvidia.com/mig-*",
    "amd.com/gpu",
    "gpu.intel.com/*",
    "habana.ai/gaudi*",
    "aws.amazon.com/neuron*",
)

# -- remediation marker -----------------------------------------------------------------------------
LABEL_REMEDIATION = "kaip.dev/remediation"
TAINT_REMEDIATION = "kaip.dev/remediation"
TAINT_NODE_OPERATION = "nodeops.k8s.preferred.jp/operating"
REMEDIATION_PHASES = ("Pending", "Draining", "Operating", "Verifying", "Failed")

# -- taints of the node lifecycle controller --------------------------------------------------------
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

# -- admin configuration of condition polarity ------------------------------------------------------
#: ConfigMap (in this namespace, with this name) whose key ``polarity.yaml`` extends the built-in table.
POLARITY_CONFIGMAP_NAMESPACE = "kube-system"
POLARITY_CONFIGMAP_NAME = "kaip-node-health"
POLARITY_CONFIGMAP_KEY = "polarity.yaml"
