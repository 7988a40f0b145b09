"""kaip: the Kubernetes AI Platform plugin suite.

Layers, from the top down; a layer imports only from the layers below it (import-linter checks this,
see ``[tool.importlinter]`` in pyproject.toml):

``kaip.commands``
    One module per ``kubectl-*`` executable. Thin: parse flags, call a library package, print.
``kaip.cli``
    Shared click plumbing: kubectl's cluster flags, output formats, errors mapped to exit codes.
``kaip.aiplatform``, ``kaip.nodehealth``, ``kaip.preload``, ``kaip.remediation``
    The capabilities as pure decisions (flag mapping, manifest building, views, plans) plus short
    loops that use the clients below.
``kaip.kube`` and ``kaip.storage``
    The only packages that talk to outside systems: ``kube`` to the Kubernetes API (over http.client),
    ``storage`` to S3 and GCS (boto3 and google-cloud-storage, imported lazily).
``kaip.resources``
    Our public API names (annotations, Secret types, conditions) and resource descriptions. Pure.
``kaip.errors``
    The error types, each with its documented exit code.

Nothing here prints or exits except ``kaip.cli``; nothing here imports ``kaip_incluster``.
"""

__version__ = "0.1.0"
