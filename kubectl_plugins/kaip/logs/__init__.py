"""Logs that outlive Pods: reading Grafana Loki (``loki``), merging its lines with the API server's live
ones (``merge``), and where Loki is and which tenant a namespace is (``config``).

Imported lazily by the commands that read logs, so that ``--help`` and ``jobs list`` do not pay for it.
"""
