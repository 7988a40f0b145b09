"""Who a request is: client certificates, bearer tokens, token files, basic auth, exec plugins.

The client asks two things of this module: the TLS context to open connections with (the cluster's CA
and, where the user has one, its client certificate, written to private temporary files because
:mod:`ssl` loads keys only from files) and the identity headers of each request (``Authorization``,
impersonation). Exec
credential plugins (``client.authentication.k8s.io/v1``) are run here, their answer cached until it
expires and renewed when the server answers 401.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from datetime import datetime
from typing import Any

from kaip.errors import ConfigError, shorten
from kaip.kube.config import Connection


class KeyFiles:
    """Client certificate and key as private files (ssl loads them only from files)."""

    def __init__(self) -> None:
        self._dir: str | None = None

    def file(self, name: str, content: str) -> str:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="kaip-")
            atexit.register(shutil.rmtree, self._dir, True)
        path = os.path.join(self._dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        return path


key_files = KeyFiles()


def server_tls(ca_pem: str | None, *, insecure: bool = False, what: str = "CA") -> ssl.SSLContext:
    """TLS to a server other than the API server (Loki): its CA if given, else the system's store."""
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cadata=ca_pem if ca_pem and not insecure else None
        )
    except ssl.SSLError as exc:
        raise ConfigError(f"{what} is not a PEM certificate") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def ssl_context(conn: Connection, cert_pem: str | None, key_pem: str | None) -> ssl.SSLContext:
    # With the cluster's own CA, trust only it: loading the system store as well costs ~60 ms a run.
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cadata=conn.ca_pem if conn.ca_pem and not conn.insecure else None
        )
    except ssl.SSLError as exc:
        raise ConfigError(
            f'kubeconfig: certificate-authority of cluster "{conn.cluster}" is not a PEM certificate'
        ) from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if conn.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_pem and key_pem:
        try:
            ctx.load_cert_chain(key_files.file("client.crt", cert_pem), key_files.file("client.key", key_pem))
        except ssl.SSLError as exc:
            raise ConfigError(
                f'kubeconfig: client certificate or key of user "{conn.user}" cannot be loaded'
            ) from exc
    return ctx


class ExecCredential:
    """Runs a client-go credential plugin and caches its answer until it expires."""

    def __init__(self, conn: Connection) -> None:
        assert conn.exec_config is not None
        self.conn = conn
        self.cfg = conn.exec_config
        self.token: str | None = None
        self.cert: tuple[str, str] | None = None
        self.expires = 0.0
        self._lock = threading.Lock()

    def refresh(self, *, force: bool = False) -> None:
        with self._lock:
            if not force and (self.token or self.cert) and time.time() < self.expires:
                return
            info: dict[str, Any] = {
                "apiVersion": self.cfg.api_version,
                "kind": "ExecCredential",
                "spec": {"interactive": False},
            }
            if self.cfg.provide_cluster_info:
                info["spec"]["cluster"] = {"server": self.conn.server}
            env = {**os.environ, **dict(self.cfg.env), "KUBERNETES_EXEC_INFO": json.dumps(info)}
            try:
                done = subprocess.run(
                    [self.cfg.command, *self.cfg.args], env=env, capture_output=True, timeout=60, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise ConfigError(
                    f'kubeconfig: credential plugin "{self.cfg.command}" could not run: {exc}'
                ) from exc
            if done.returncode != 0:
                raise ConfigError(
                    f'kubeconfig: credential plugin "{self.cfg.command}" failed with exit code {done.returncode}: '
                    f"{shorten(done.stderr.decode(errors='replace'), 200)}"
                )
            try:
                status = json.loads(done.stdout)["status"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(
                    f'kubeconfig: credential plugin "{self.cfg.command}" printed no ExecCredential status'
                ) from exc
            self.token = status.get("token")
            if status.get("clientCertificateData") and status.get("clientKeyData"):
                self.cert = (status["clientCertificateData"], status["clientKeyData"])
            expiry = status.get("expirationTimestamp")
            self.expires = _parse_time(expiry) - 10 if expiry else float("inf")


def _parse_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def client_certificate(conn: Connection, plugin: ExecCredential | None) -> tuple[str | None, str | None]:
    """The client certificate and key to open connections with: the plugin's, else the kubeconfig's."""
    if plugin:
        plugin.refresh()
        if plugin.cert:
            return plugin.cert
    return conn.client_cert_pem, conn.client_key_pem


def authorization(conn: Connection, plugin: ExecCredential | None) -> str | None:
    """The ``Authorization`` header of the next request, or ``None`` when the user has no token.

    A token from the exec plugin wins over the kubeconfig's, which wins over its token file (read on
    every request: a projected service-account token is rotated in place); basic auth comes last.
    """
    token = conn.token
    if plugin:
        plugin.refresh()
        token = plugin.token or token
    if conn.token_file and not token:
        try:
            with open(conn.token_file) as handle:
                token = handle.read().strip()
        except OSError as exc:
            raise ConfigError(f"token file {conn.token_file} cannot be read ({exc.strerror})") from exc
    if token:
        return f"Bearer {token}"
    if conn.basic_auth:
        pair = ":".join(conn.basic_auth).encode()
        return "Basic " + base64.b64encode(pair).decode()
    return None


def identity_headers(conn: Connection, plugin: ExecCredential | None) -> list[tuple[str, str]]:
    """The headers that say who sends a request: ``Authorization`` and ``--as``/``--as-group``."""
    value = authorization(conn, plugin)
    headers = [("Authorization", value)] if value else []
    if conn.impersonate:
        headers.append(("Impersonate-User", conn.impersonate))
        headers += [("Impersonate-Group", group) for group in conn.impersonate_groups]
    return headers
