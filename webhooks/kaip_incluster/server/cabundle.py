"""The self-managed CA: one CA for all replicas, kept in a Secret; the caBundle kept in the configurations.

Every replica reads the CA from the Secret (the first one to start creates it; a lost create race is
answered by reading the winner's), issues its own serving certificate into ``--cert-dir`` (where the
reloading SSL context picks it up) and checks every minute that each named webhook configuration
carries the CA in every webhook's ``clientConfig.caBundle``, patching the ones that do not.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaip.kube.errors import Conflict, NotFound
from kaip.resources import kinds
from kaip.resources.kinds import Resource
from kaip_incluster.server import certs
from kaip_incluster.server.config import Settings

if TYPE_CHECKING:
    from kaip.kube.client import Kube

log = logging.getLogger("kaip.webhook.ca")

VALIDATING = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    namespaced=False,
)
MUTATING = Resource(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    namespaced=False,
)
_KINDS = {"validating": VALIDATING, "mutating": MUTATING}
FIELD_MANAGER = "kaip-webhook"


def bundle_patch(configuration: Mapping[str, Any], ca_pem: bytes) -> list[dict[str, Any]]:
    """JSONPatch operations that put ``ca_pem`` into every webhook lacking it (empty when all carry it).

    Each change is guarded by a ``test`` of the webhook's name, so a concurrent edit of the list
    makes the patch fail instead of writing into the wrong entry.
    """
    wanted = base64.b64encode(ca_pem).decode()
    ops: list[dict[str, Any]] = []
    for index, webhook in enumerate(configuration.get("webhooks") or []):
        client = webhook.get("clientConfig") or {}
        if client.get("caBundle") == wanted:
            continue
        ops.append({"op": "test", "path": f"/webhooks/{index}/name", "value": webhook.get("name")})
        ops.append({"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": wanted})
    return ops


def _write_private(path: Path, content: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    tmp.replace(path)


class SelfManagedCA:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings
        self.ca: certs.Pem | None = None
        self.cert_path = Path(settings.cert_dir) / "tls.crt"
        self.key_path = Path(settings.cert_dir) / "tls.key"

    def _read_ca(self) -> certs.Pem:
        secret = self.kube.get(kinds.SECRETS, self.settings.ca_secret, namespace=self.settings.namespace)
        data = secret.get("data") or {}
        return certs.Pem(base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))

    def load_or_create_ca(self) -> certs.Pem:
        try:
            self.ca = self._read_ca()
            return self.ca
        except NotFound:
            pass
        fresh = certs.new_ca()
        body = {
            "metadata": {
                "name": self.settings.ca_secret,
                "labels": {"app.kubernetes.io/name": "kaip-webhook", "app.kubernetes.io/component": "ca"},
            },
            "type": "kubernetes.io/tls",
            "data": {
                "tls.crt": base64.b64encode(fresh.cert).decode(),
                "tls.key": base64.b64encode(fresh.key).decode(),
            },
        }
        try:
            self.kube.create(
                kinds.SECRETS, body, namespace=self.settings.namespace, field_manager=FIELD_MANAGER
            )
            log.info("created CA Secret %s/%s", self.settings.namespace, self.settings.ca_secret)
            self.ca = fresh
        except Conflict:  # another replica was first: use its CA
            self.ca = self._read_ca()
        return self.ca

    def ensure_serving(self) -> bool:
        """Issue (or renew) this replica's serving certificate; return whether files were written."""
        assert self.ca is not None
        if self.cert_path.exists() and not certs.needs_renewal(self.cert_path.read_bytes()):
            return False
        Path(self.settings.cert_dir).mkdir(parents=True, exist_ok=True)
        pair = certs.issue_serving(self.ca, self.settings.sans)
        _write_private(self.key_path, pair.key, 0o600)
        _write_private(self.cert_path, pair.cert + self.ca.cert, 0o644)
        return True

    def sync_bundles(self, configurations: Sequence[str]) -> int:
        """Patch the configurations whose caBundle is not the CA; return how many were patched."""
        assert self.ca is not None
        patched = 0
        for item in configurations:
            kind, _, name = item.partition(":")
            resource = _KINDS[kind]
            try:
                current = self.kube.get(resource, name)
            except NotFound:
                log.warning("webhook configuration %s %s not found; caBundle not set", kind, name)
                continue
            ops = bundle_patch(current, self.ca.cert)
            if ops:
                self.kube.patch(resource, name, ops, kind="json", field_manager=FIELD_MANAGER)
                log.info("caBundle of %s webhook configuration %s updated", kind, name)
                patched += 1
        return patched
