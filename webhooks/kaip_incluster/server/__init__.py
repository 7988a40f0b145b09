"""The admission webhook server: HTTPS (aiohttp), watch caches, certificates, metrics.

Rule: the decisions are taken by :mod:`kaip_incluster.admission` (pure); this package reads
requests, looks up what the decisions need from watch caches (kept by threads using
:mod:`kaip.kube`, the only code that talks to the API server), and writes answers, logs and metrics.
Logs name uid, namespace, name and key names, never a value.

``config``    the command line, as a frozen dataclass.
``certs``     certificate generation for the self-managed CA mode (pure crypto).
``tls``       the SSL context (TLS >= 1.2) and its in-place reload when the files change.
``cabundle``  the self-managed CA: its Secret, the serving certificate, the webhook configurations'
              ``caBundle`` kept up to date.
``cache``     watch caches of ServiceAccounts and kaip Secrets (metadata and key names only).
``handlers``  the routes: ``/validate/secrets``, ``/mutate/pods``, ``/healthz``, ``/readyz``, ``/metrics``.
``main``      the process: ``kaip-webhook``.
"""
