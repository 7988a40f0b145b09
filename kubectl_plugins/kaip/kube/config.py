"""Cluster access resolved once, in kubectl's order: flags, KUBECONFIG, ~/.kube/config, in-cluster.

The merge follows kubectl's rules: with several KUBECONFIG files the first file to define a cluster,
user or context name wins, and so does the first ``current-context``; missing files are skipped.
Relative file paths in an entry are taken relative to the file that defined the entry.
Everything but the file reads is pure, so the rules are unit-tested on plain dicts.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from kaip.errors import ConfigError
from kaip.proxies import proxy_from_environment

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class ClusterTarget:
    """What the user asked for with kubectl's flags (all optional)."""

    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    namespace: str | None = None
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    request_timeout: float | None = None  # seconds; None or 0 means no timeout


@dataclass(frozen=True)
class ExecConfig:
    """A client-go credential plugin (``users[].user.exec``)."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"
    provide_cluster_info: bool = False


@dataclass(frozen=True)
class Connection:
    """Everything needed to talk to one API server, resolved from a target."""

    server: str
    namespace: str = "default"
    context: str = ""
    cluster: str = ""
    user: str = ""
    ca_pem: str | None = None
    insecure: bool = False
    tls_server_name: str | None = None
    client_cert_pem: str | None = None
    client_key_pem: str | None = None
    token: str | None = None
    token_file: str | None = None
    basic_auth: tuple[str, str] | None = None
    exec_config: ExecConfig | None = None
    proxy_url: str | None = None
    proxy_from: str = "proxy-url"  # where proxy_url came from: the kubeconfig field or an env variable
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    request_timeout: float | None = None
    in_cluster: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)


def kubeconfig_paths(target: ClusterTarget, environ: Mapping[str, str]) -> list[Path]:
    """The files kubectl would read, in precedence order."""
    if target.kubeconfig:
        return [Path(target.kubeconfig).expanduser()]
    env = environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    home = environ.get("HOME") or str(Path.home())
    return [Path(home) / ".kube" / "config"]


def read_kubeconfigs(paths: Sequence[Path], *, explicit: bool) -> list[tuple[Path, dict[str, Any]]]:
    """Load the files that exist. A file named by ``--kubeconfig`` must exist."""
    loaded: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        if not path.exists():
            if explicit:
                raise ConfigError(f"--kubeconfig: file {path} does not exist")
            continue
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"kubeconfig {path} cannot be read: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"kubeconfig {path} is not a kubeconfig (expected a mapping at the top)")
        loaded.append((path, data))
    return loaded


_PATH_KEYS = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}


def merge_kubeconfigs(files: Sequence[tuple[Path, Mapping[str, Any]]]) -> dict[str, Any]:
    """Merge as kubectl does: first definition of each name wins, first current-context wins.

    Relative paths are made absolute against the defining file's folder.
    """
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path, data in files:
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = str(data["current-context"])
        for section, inner in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for entry in data.get(section) or []:
                if not isinstance(entry, dict) or "name" not in entry:
                    continue
                name = str(entry["name"])
                if name in merged[section]:
                    continue
                body = dict(entry.get(inner) or {})
                for key in _PATH_KEYS.get(section, ()):
                    value = body.get(key)
                    if value and not os.path.isabs(str(value)):
                        body[key] = str(path.parent / str(value))
                exec_cfg = body.get("exec")
                if isinstance(exec_cfg, dict):
                    command = str(exec_cfg.get("command", ""))
                    # kubectl resolves a command with a path separator against the file's folder.
                    if os.sep in command and not os.path.isabs(command):
                        body["exec"] = {**exec_cfg, "command": str(path.parent / command)}
                merged[section][name] = body
    return merged


def _pem(data_b64: Any, file_path: Any, what: str) -> str | None:
    if data_b64:
        try:
            return base64.b64decode(str(data_b64)).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"kubeconfig: {what}-data is not valid base64 PEM") from exc
    if file_path:
        try:
            return Path(str(file_path)).read_text()
        except OSError as exc:
            raise ConfigError(f"kubeconfig: {what} file {file_path} cannot be read ({exc.strerror})") from exc
    return None


def resolve(target: ClusterTarget, merged: Mapping[str, Any]) -> Connection:
    """Pick context, cluster and user from a merged kubeconfig, applying the flag overrides."""
    contexts: Mapping[str, Any] = merged["contexts"]
    context_name = target.context or merged.get("current-context") or ""
    if target.context and target.context not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise ConfigError(
            f'--context: context "{target.context}" is not in the kubeconfig (contexts: {known})'
        )
    context: Mapping[str, Any] = contexts.get(context_name, {}) if context_name else {}
    if context_name and context_name not in contexts:
        raise ConfigError(f'kubeconfig: current-context "{context_name}" is not defined; pass --context NAME')
    cluster_name = target.cluster or str(context.get("cluster") or "")
    user_name = target.user or str(context.get("user") or "")
    if not cluster_name:
        raise ConfigError(
            "kubeconfig: no current context and no --cluster: pass --context NAME "
            "or run `kubectl config use-context NAME`"
        )
    if cluster_name not in merged["clusters"]:
        raise ConfigError(
            f'kubeconfig: cluster "{cluster_name}" is not defined (check --cluster or the context)'
        )
    cluster: Mapping[str, Any] = merged["clusters"][cluster_name]
    if user_name and user_name not in merged["users"]:
        raise ConfigError(f'kubeconfig: user "{user_name}" is not defined (check --user or the context)')
    user: Mapping[str, Any] = merged["users"].get(user_name, {}) if user_name else {}
    server = str(cluster.get("server") or "")
    if not server:
        raise ConfigError(f'kubeconfig: cluster "{cluster_name}" has no server address')
    if "auth-provider" in user:
        raise ConfigError(
            f'kubeconfig: user "{user_name}" uses the removed auth-provider mechanism; '
            "switch it to an exec credential plugin (e.g. kubelogin or gke-gcloud-auth-plugin)"
        )
    exec_config = None
    if isinstance(user.get("exec"), dict):
        ex = user["exec"]
        exec_config = ExecConfig(
            command=str(ex.get("command", "")),
            args=tuple(str(a) for a in ex.get("args") or ()),
            env=tuple((str(e["name"]), str(e.get("value", ""))) for e in ex.get("env") or () if "name" in e),
            api_version=str(ex.get("apiVersion") or "client.authentication.k8s.io/v1"),
            provide_cluster_info=bool(ex.get("provideClusterInfo")),
        )
    basic = None
    if user.get("username"):
        basic = (str(user["username"]), str(user.get("password", "")))
    impersonate = target.impersonate or (str(user["as"]) if user.get("as") else None)
    groups = target.impersonate_groups or tuple(str(g) for g in user.get("as-groups") or ())
    if groups and not impersonate:
        raise ConfigError("--as-group: impersonating groups needs a user too; add --as USER")
    return Connection(
        server=server.rstrip("/"),
        namespace=target.namespace or str(context.get("namespace") or "") or "default",
        context=context_name,
        cluster=cluster_name,
        user=user_name,
        ca_pem=_pem(
            cluster.get("certificate-authority-data"),
            cluster.get("certificate-authority"),
            "certificate-authority",
        ),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=str(cluster["tls-server-name"]) if cluster.get("tls-server-name") else None,
        client_cert_pem=_pem(
            user.get("client-certificate-data"), user.get("client-certificate"), "client-certificate"
        ),
        client_key_pem=_pem(user.get("client-key-data"), user.get("client-key"), "client-key"),
        token=str(user["token"]) if user.get("token") else None,
        token_file=str(user["tokenFile"]) if user.get("tokenFile") else None,
        basic_auth=basic,
        exec_config=exec_config,
        proxy_url=str(cluster["proxy-url"]) if cluster.get("proxy-url") else None,
        impersonate=impersonate,
        impersonate_groups=groups,
        request_timeout=target.request_timeout or None,
    )


def in_cluster(
    target: ClusterTarget, environ: Mapping[str, str], sa_dir: Path = SERVICE_ACCOUNT_DIR
) -> Connection | None:
    """The Pod's service-account access, when running in a cluster."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port or not (sa_dir / "token").exists():
        return None
    namespace_file = sa_dir / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.exists() else "default"
    server_host = f"[{host}]" if ":" in host else host
    return Connection(
        server=f"https://{server_host}:{port}",
        namespace=target.namespace or namespace,
        context="in-cluster",
        ca_pem=(sa_dir / "ca.crt").read_text() if (sa_dir / "ca.crt").exists() else None,
        token_file=str(sa_dir / "token"),
        impersonate=target.impersonate,
        impersonate_groups=target.impersonate_groups,
        request_timeout=target.request_timeout or None,
        in_cluster=True,
    )


def load(target: ClusterTarget, environ: Mapping[str, str] | None = None) -> Connection:
    """Resolve ``target`` to a connection as kubectl does."""
    env = os.environ if environ is None else environ
    paths = kubeconfig_paths(target, env)
    files = read_kubeconfigs(paths, explicit=bool(target.kubeconfig))
    if not files and not target.kubeconfig:
        conn = in_cluster(target, env)
        if conn is None:
            where = env.get("KUBECONFIG") or str(paths[0])
            raise ConfigError(
                f"no kubeconfig found (looked at {where}): pass --kubeconfig FILE, set KUBECONFIG, "
                "or create ~/.kube/config"
            )
    else:
        conn = resolve(target, merge_kubeconfigs(files))
    if conn.proxy_url is None:
        found = proxy_from_environment(conn.server, env)
        if found is not None:
            conn = replace(conn, proxy_url=found[1], proxy_from=found[0])
    return conn


def parse_duration(text: str) -> float:
    """kubectl's ``--request-timeout``: ``0``, a number of seconds, or ``1s``/``2m``/``1h``/``500ms``."""
    value = text.strip()
    scale = 1.0
    for suffix, factor in (("ms", 0.001), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if value.endswith(suffix):
            value, scale = value[: -len(suffix)], factor
            break
    try:
        seconds = float(value) * scale
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ConfigError(
            f'--request-timeout: "{text}" is not a duration; use e.g. 0 (none), 30, 30s, 2m or 1h'
        )
    return seconds
