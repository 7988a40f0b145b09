"""``kaip-alerts``: the Alertmanager webhook receiver that keeps one GitHub issue per alert group.

The seed's route (node conditions → Prometheus alerts → Alertmanager → alertmanager-to-github):
``receiver`` turns Alertmanager's webhook payload (version 4) into issue changes through the shared
GitHub client (``kaip_incluster.github``, also the remediator's); ``rota`` picks the assignee; ``main``
is the HTTP server (aiohttp). Everything the receiver knows lives in the issue itself (hidden markers in
its body), so a restart or a second replica loses nothing.
"""
