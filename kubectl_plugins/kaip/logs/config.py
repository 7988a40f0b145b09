"""Where Loki is, which tenant a namespace's logs belong to, and how to authenticate: set once by a
platform team in the ConfigMap ``kaip-system/kaip-logging``, read with the user's own RBAC, and
overridden by environment variables and then by flags.

ConfigMap keys (all optional but ``url``)::

    url                    http(s)://loki-gateway.logging.svc  (a path prefix is kept)
    tenant                 the X-Scope-OrgID of every namespace (a fixed OrgID)
    tenantLabel            a namespace label whose value is the namespace's tenant
    tenantAnnotation       a namespace annotation whose value is the namespace's tenant
    nodeTenant             the tenant of node logs (kernel, kubelet, runtime, NPD); default: tenant
    authSecret             a Secret beside the ConfigMap: key ``token`` (bearer) or ``username`` and
                           ``password`` (basic); its values are never printed
    ca                     the CA (PEM) Loki's certificate is issued by
    insecureSkipTLSVerify  "true" to skip verifying it
    timeout                seconds per request (default 30)

Environment: ``KAIP_LOKI_URL``, ``KAIP_LOKI_TENANT``, ``KAIP_LOKI_TOKEN``, ``KAIP_LOKI_USERNAME`` and
``KAIP_LOKI_PASSWORD``, ``KAIP_LOKI_CA_FILE``, ``KAIP_LOGGING_CONFIGMAP`` (``namespace/name``).
Flags: ``--loki-url``, ``--loki-tenant``. A flag beats the environment, which beats the ConfigMap; a
tenant named on a namespace beats the ConfigMap's fixed one.

:func:`resolve` is the pure decision; :func:`load` reads the objects it needs.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kaip.errors import ConfigError
from kaip.logs.loki import Settings

if TYPE_CHECKING:
    from kaip.kube.client import Kube

CONFIGMAP_NAMESPACE = "kaip-system"
CONFIGMAP_NAME = "kaip-logging"
HINT = (
    "hint: logs of Pods that are gone are read from Loki once {where} names it "
    "(or KAIP_LOKI_URL / --loki-url); see docs/logs.md"
)


@dataclass(frozen=True)
class Overrides:
    """What the command line says (None: not given)."""

    url: str | None = None
    tenant: str | None = None


def configmap_ref(environ: Mapping[str, str]) -> tuple[str, str]:
    ref = environ.get("KAIP_LOGGING_CONFIGMAP", "")
    if ref:
        namespace, _, name = ref.rpartition("/")
        return namespace or CONFIGMAP_NAMESPACE, name
    return CONFIGMAP_NAMESPACE, CONFIGMAP_NAME


def resolve(
    data: Mapping[str, str],
    environ: Mapping[str, str],
    flags: Overrides = Overrides(),
    *,
    namespace_labels: Mapping[str, str] | None = None,
    namespace_annotations: Mapping[str, str] | None = None,
    secret: Mapping[str, str] | None = None,
    ca_file_text: str | None = None,
    nodes: bool = False,
) -> Settings | None:
    """The settings for one namespace's (or, with ``nodes``, the nodes') logs; None without a URL."""
    url = flags.url or environ.get("KAIP_LOKI_URL") or data.get("url") or ""
    if not url.strip():
        return None
    tenant = flags.tenant or environ.get("KAIP_LOKI_TENANT") or None
    if tenant is None and nodes:
        tenant = data.get("nodeTenant") or None
    if tenant is None and not nodes:
        label, annotation = data.get("tenantLabel"), data.get("tenantAnnotation")
        if label and namespace_labels and namespace_labels.get(label):
            tenant = namespace_labels[label]
        elif annotation and namespace_annotations and namespace_annotations.get(annotation):
            tenant = namespace_annotations[annotation]
    if tenant is None:
        tenant = data.get("tenant") or None
    token = environ.get("KAIP_LOKI_TOKEN") or None
    basic: tuple[str, str] | None = None
    if environ.get("KAIP_LOKI_USERNAME"):
        basic = (environ["KAIP_LOKI_USERNAME"], environ.get("KAIP_LOKI_PASSWORD", ""))
    if token is None and basic is None and secret:
        if secret.get("token"):
            token = secret["token"].strip()
        elif secret.get("username"):
            basic = (secret["username"], secret.get("password", ""))
    try:
        timeout = float(data.get("timeout") or 30)
    except ValueError as exc:
        raise ConfigError(
            f"kaip-logging: timeout {data.get('timeout')!r} is not a number of seconds"
        ) from exc
    return Settings(
        url=url.strip().rstrip("/"),
        tenant=tenant,
        token=token,
        basic_auth=basic,
        ca_pem=ca_file_text or data.get("ca") or None,
        insecure=str(data.get("insecureSkipTLSVerify", "")).lower() == "true",
        timeout=timeout,
    )


def _decode(data: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for key, value in data.items():
        try:
            out[key] = base64.b64decode(value).decode()
        except ValueError:
            continue
    return out


def load(
    kube: Kube,
    namespace: str | None,
    flags: Overrides = Overrides(),
    *,
    environ: Mapping[str, str] | None = None,
    nodes: bool = False,
) -> tuple[Settings | None, str | None]:
    """The settings and, when Loki is not configured (or cannot be read), the one hint line."""
    import os

    from kaip.kube.errors import Forbidden, NotFound, Unauthorized
    from kaip.kube.objects import annotations_of, labels_of
    from kaip.resources.kinds import CONFIGMAPS, NAMESPACES, SECRETS

    env = os.environ if environ is None else environ
    cm_namespace, cm_name = configmap_ref(env)
    data: Mapping[str, str] = {}
    unreadable = ""
    try:
        data = kube.get(CONFIGMAPS, cm_name, namespace=cm_namespace).get("data") or {}
    except NotFound:
        unreadable = ""
    except (Forbidden, Unauthorized):
        unreadable = f" (you may not read ConfigMap {cm_namespace}/{cm_name})"
    ca_text = None
    if env.get("KAIP_LOKI_CA_FILE"):
        try:
            with open(env["KAIP_LOKI_CA_FILE"], encoding="utf-8") as handle:
                ca_text = handle.read()
        except OSError as exc:
            raise ConfigError(f"KAIP_LOKI_CA_FILE: {exc.strerror}") from exc
    probe = resolve(data, env, flags, ca_file_text=ca_text, nodes=nodes)
    if probe is None:
        return None, HINT.format(where=f"ConfigMap {cm_namespace}/{cm_name}") + unreadable
    labels: Mapping[str, str] = {}
    annotations: Mapping[str, str] = {}
    named = not (flags.tenant or env.get("KAIP_LOKI_TENANT"))
    if not nodes and namespace and named and (data.get("tenantLabel") or data.get("tenantAnnotation")):
        try:
            ns = kube.get(NAMESPACES, namespace)
            labels, annotations = labels_of(ns), annotations_of(ns)
        except (Forbidden, NotFound, Unauthorized):
            pass  # the fixed tenant, if any
    secret: Mapping[str, str] | None = None
    if data.get("authSecret") and not (env.get("KAIP_LOKI_TOKEN") or env.get("KAIP_LOKI_USERNAME")):
        try:
            secret = _decode(kube.get(SECRETS, data["authSecret"], namespace=cm_namespace).get("data") or {})
        except (Forbidden, NotFound, Unauthorized) as exc:
            raise ConfigError(
                f"Loki's credentials: Secret {cm_namespace}/{data['authSecret']} cannot be read ({exc})"
            ) from exc
    settings = resolve(
        data,
        env,
        flags,
        namespace_labels=labels,
        namespace_annotations=annotations,
        secret=secret,
        ca_file_text=ca_text,
        nodes=nodes,
    )
    return settings, None
