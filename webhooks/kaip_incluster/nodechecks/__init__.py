"""Node checks in the format of node-problem-detector custom plugins, for the seed's conditions.

``python -m kaip_incluster.nodechecks CHECK`` prints one line and exits 0 (OK: condition False),
1 (problem: condition True) or 2 (unknown: condition Unknown), as NPD's custom plugin monitor reads it.
Checks: ``GPUIsLost``, ``GPUPendingPage``, ``DStateProcess``, ``PCIeLinkDegraded`` (passive: nvidia-smi,
``/proc`` and ``/sys`` under a configurable root) and ``GPURuntimeError`` (active: a small workload
on every GPU through the CUDA driver API).

Rule: the decisions (:mod:`.decisions`) are pure functions of what was read; reading the host
(:mod:`.host`), nvidia-smi (:mod:`.nvidia_smi`) and the CUDA driver (:mod:`.workload`) are thin seams
that tests replace with recorded outputs. Nothing here talks to the Kubernetes API: NPD reports.
"""
