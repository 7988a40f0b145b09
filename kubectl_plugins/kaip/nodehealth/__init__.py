"""``kubectl node-health``'s capability: which nodes are broken, since when, and what GPUs that costs.

Rule: every module here but :mod:`kaip.nodehealth.fetch` is pure (API objects in, views out, no I/O);
``fetch`` is the short loop that reads Nodes, Pods, Events and the polarity ConfigMap through
:mod:`kaip.kube`. Views are plain frozen dataclasses that the CLI renders as tables or documents.
"""
