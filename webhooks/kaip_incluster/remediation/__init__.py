"""The remediation controller (``kaip-remediator``): the per-node step machine run against the
cluster, leader-elected.

Rule: decisions are pure: the shared vocabulary in :mod:`kaip.remediation` (read by the CLI too) and
the step machine (:mod:`.machine`, run only here); besides them are only the short loops that read the
API state, call them and carry the actions out (:mod:`.actuator`), the budget slots written with a
compare-and-swap (:mod:`.slots`), the notifier (:mod:`.notify`: a webhook and GitHub issues, the only
code here that talks to anything but the API server) and the entry point (:mod:`.main`). All state
lives in the API (NodeRemediation status, RemediationConfig status); in memory between ticks there is
only the per-node retry back-off (:mod:`kaip_incluster.requeue`), which a new leader starts afresh.
"""
