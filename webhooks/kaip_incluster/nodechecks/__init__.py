"""Node checks in the format of node-problem-detector custom plugins, for the seed's conditions.

``python -m kaip_incluster.nodechecks CHECK`` prints one line and exits 0 (OK: condition False),
1 (problem: condition True) or 2 (unknown: condition Unknown), as NPD's custom plugin monitor reads it.
Checks: ``GPUIsLost``, ``GPUPendingPage``, ``DStateProcess``, ``PCIeLinkDegraded`` (passive: nvidia-smi,
``/proc`` and ``/sys`` under a configurable root) and ``GPURuntimeError`` (active: a small workload
on every idle GPU through the CUDA driver API), and for the seed's other failure classes
``GPUCountMismatch``, ``GPUUncorrectableError`` (ECC, Xid), ``NetworkLinkDown``,
``NetworkLinkFlapping``, ``NetworkInterfaceMissing``, ``NetworkTransceiverError`` (:mod:`.network`)
and ``NFSMountHung`` (:mod:`.nfs`).

Rule: the decisions (:mod:`.decisions`) are pure functions of what was read; reading the host
(:mod:`.host`, :mod:`.network`, :mod:`.kubelet`, :mod:`.nfs`), nvidia-smi (:mod:`.nvidia_smi`) and the
CUDA driver (:mod:`.workload`) are thin seams that tests replace with recorded outputs. Nothing here talks to the Kubernetes API: NPD reports.
"""
