"""The webhook server's command line, read into one frozen dataclass."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from kaip.errors import UsageError

DEFAULT_NAMESPACE = "kaip-system"
DEFAULT_SERVICE = "kaip-webhook"
DEFAULT_CA_SECRET = "kaip-webhook-ca"  # noqa: S105 - a Secret name
DEFAULT_CONFIGURATIONS = (
    "validating:kaip-credentials-validation",
    "mutating:kaip-credentials-injection",
)


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"  # noqa: S104 - the Pod's port; the Service is what exposes it
    port: int = 8443
    #: Files of the serving certificate (cert-manager or any mounted Secret); reloaded when they change.
    cert_file: str = ""
    key_file: str = ""
    #: Self-managed CA mode: the folder the generated serving certificate is written to.
    cert_dir: str = "/tmp/kaip-webhook-tls"  # noqa: S108 - an emptyDir in the Pod
    self_managed_ca: bool = False
    namespace: str = DEFAULT_NAMESPACE
    service: str = DEFAULT_SERVICE
    ca_secret: str = DEFAULT_CA_SECRET
    extra_sans: tuple[str, ...] = ()
    #: ``validating:NAME`` / ``mutating:NAME``: whose caBundle the self-managed CA keeps up to date.
    configurations: tuple[str, ...] = DEFAULT_CONFIGURATIONS
    kubeconfig: str | None = None
    reload_interval: float = 10.0
    cabundle_interval: float = 60.0
    log_level: str = "INFO"

    @property
    def sans(self) -> tuple[str, ...]:
        svc = f"{self.service}.{self.namespace}"
        return (self.service, svc, f"{svc}.svc", f"{svc}.svc.cluster.local", *self.extra_sans)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kaip-webhook", description="kaip admission webhooks (HTTPS)")
    p.add_argument("--bind-address", default=Settings.host)
    p.add_argument("--port", type=int, default=Settings.port)
    p.add_argument("--tls-cert-file", default="", help="serving certificate (PEM); reloaded when it changes")
    p.add_argument("--tls-private-key-file", default="", help="its private key (PEM)")
    p.add_argument(
        "--self-managed-ca",
        action="store_true",
        help="create a CA (kept in a Secret), a serving certificate, and keep the webhook configurations' caBundle",
    )
    p.add_argument("--cert-dir", default=Settings.cert_dir)
    p.add_argument("--namespace", default=Settings.namespace, help="where the CA Secret lives")
    p.add_argument("--service-name", default=Settings.service)
    p.add_argument("--ca-secret", default=Settings.ca_secret)
    p.add_argument("--tls-san", action="append", default=[], help="extra DNS name or IP of the certificate")
    p.add_argument(
        "--webhook-configuration",
        action="append",
        default=[],
        help="validating:NAME or mutating:NAME whose caBundle to keep (default: kaip's two)",
    )
    p.add_argument("--kubeconfig", default=None, help="default: in-cluster service account")
    p.add_argument("--cert-reload-interval", type=float, default=Settings.reload_interval)
    p.add_argument("--log-level", default=Settings.log_level, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def parse(argv: Sequence[str]) -> Settings:
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse exits on --help and on errors; main turns this into a code
        raise UsageError("kaip-webhook: invalid arguments (see --help)") from exc
    for item in args.webhook_configuration:
        kind, _, name = item.partition(":")
        if kind not in ("validating", "mutating") or not name:
            raise UsageError(f"--webhook-configuration: {item!r} is not validating:NAME or mutating:NAME")
    if not args.self_managed_ca and not (args.tls_cert_file and args.tls_private_key_file):
        raise UsageError("give --tls-cert-file and --tls-private-key-file, or --self-managed-ca")
    return Settings(
        host=args.bind_address,
        port=args.port,
        cert_file=args.tls_cert_file,
        key_file=args.tls_private_key_file,
        cert_dir=args.cert_dir,
        self_managed_ca=args.self_managed_ca,
        namespace=args.namespace,
        service=args.service_name,
        ca_secret=args.ca_secret,
        extra_sans=tuple(args.tls_san),
        configurations=tuple(args.webhook_configuration) or DEFAULT_CONFIGURATIONS,
        kubeconfig=args.kubeconfig,
        reload_interval=args.cert_reload_interval,
        log_level=args.log_level,
    )
