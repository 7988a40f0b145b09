"""What runs in the cluster: the admission webhooks, the data-loader controller and the loader, the
remediation controller, the node checks, and the Alertmanager receiver (``alerts``, with the one GitHub
client ``github`` it shares with the remediator's notifier).

Rule: this package uses the library packages of ``kaip`` (``kaip.kube``, ``kaip.storage``,
``kaip.resources`` and the pure capability packages) but never ``kaip.cli`` or ``kaip.commands``;
``kaip`` never imports this package. Decisions are pure functions (admission answers, reconcile
decisions); the servers and loops around them are thin.
"""
