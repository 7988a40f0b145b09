"""Self-managed CA: serving certificates for the Service names, caBundle kept in every webhook."""

from __future__ import annotations

import base64
import datetime

from cryptography import x509

from kaip_incluster.server import certs
from kaip_incluster.server.cabundle import bundle_patch
from kaip_incluster.server.config import Settings


def test_serving_certificate_covers_the_service_names_and_is_signed_by_the_ca() -> None:
    ca = certs.new_ca()
    settings = Settings(namespace="kaip-system", service="kaip-webhook", extra_sans=("127.0.0.1",))
    pair = certs.issue_serving(ca, settings.sans)
    cert = x509.load_pem_x509_certificate(pair.cert)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kaip-webhook.kaip-system.svc" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert))
    assert not certs.needs_renewal(pair.cert)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=340)
    assert certs.needs_renewal(pair.cert, now=later)


def test_bundle_patch_fills_only_webhooks_lacking_the_ca() -> None:
    ca = certs.new_ca().cert
    wanted = base64.b64encode(ca).decode()
    configuration = {
        "webhooks": [
            {"name": "a.kaip.dev", "clientConfig": {"caBundle": wanted}},
            {"name": "b.kaip.dev", "clientConfig": {"url": "https://127.0.0.1:1/x"}},
        ]
    }
    ops = bundle_patch(configuration, ca)
    assert ops == [
        {"op": "test", "path": "/webhooks/1/name", "value": "b.kaip.dev"},
        {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": wanted},
    ]
    configuration["webhooks"][1]["clientConfig"]["caBundle"] = wanted
    assert bundle_patch(configuration, ca) == []
