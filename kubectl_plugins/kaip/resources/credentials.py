"""Public names of the cloud credentials (part 1 of the product): Secret types, keys, annotations.

A Secret of type :data:`AWS_TYPE` or :data:`GCP_TYPE` is checked by the validating webhook; a Pod
annotated :data:`ANNOTATION_CREDENTIALS` (or running under a ServiceAccount so annotated) gets the
named credentials as ``secretKeyRef`` environment variables (AWS) or a read-only key file (GCP).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

GROUP = "kaip.dev"

AWS_TYPE = f"{GROUP}/aws-credentials"
GCP_TYPE = f"{GROUP}/gcp-credentials"
TYPES = (AWS_TYPE, GCP_TYPE)

# -- keys of an AWS credentials Secret --------------------------------------------------------------
AWS_ACCESS_KEY_ID = "aws_access_key_id"
AWS_SECRET_ACCESS_KEY = "aws_secret_access_key"  # noqa: S105 - a key name
AWS_SESSION_TOKEN = "aws_session_token"  # noqa: S105 - a key name
AWS_REGION = "region"
AWS_ENDPOINT_URL = "endpoint_url"
AWS_REQUIRED_KEYS = (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
AWS_OPTIONAL_KEYS = (AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL)
AWS_KEYS = AWS_REQUIRED_KEYS + AWS_OPTIONAL_KEYS

# -- keys of a GCP credentials Secret ---------------------------------------------------------------
GCP_KEY_FILE = "key.json"
GCP_KEYS = (GCP_KEY_FILE,)

KEYS_BY_TYPE = {AWS_TYPE: AWS_KEYS, GCP_TYPE: GCP_KEYS}

# -- annotations and labels -------------------------------------------------------------------------
#: On a Pod or a ServiceAccount: ``name[,name]`` of credentials Secrets in the same namespace.
#: The Pod's annotation wins over its ServiceAccount's.
ANNOTATION_CREDENTIALS = f"{GROUP}/credentials"
#: On a Pod: ``name[,name]`` of containers (init or regular) that get nothing injected.
ANNOTATION_SKIP_CONTAINERS = f"{GROUP}/skip-containers"
#: Written by the webhook on a Pod: ``kind:secret[,kind:secret]`` that it injected (e.g. ``aws:minio``).
ANNOTATION_INJECTED = f"{GROUP}/credentials-injected"
#: On a Pod or a Namespace, any value: the mutating webhook is not called for it.
LABEL_OPT_OUT = f"{GROUP}/skip-credentials"

# -- what is injected -------------------------------------------------------------------------------
#: Environment variables for an AWS Secret: variable -> Secret key. Optional keys are injected only
#: when the Secret has them, and then as ``optional: true`` references.
AWS_ENV = (
    ("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID),
    ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY),
    ("AWS_SESSION_TOKEN", AWS_SESSION_TOKEN),
    ("AWS_REGION", AWS_REGION),
    ("AWS_DEFAULT_REGION", AWS_REGION),
    ("AWS_ENDPOINT_URL", AWS_ENDPOINT_URL),
)
GCP_ENV = "GOOGLE_APPLICATION_CREDENTIALS"


@dataclass(frozen=True)
class EnvGroup:
    """Variables that SDKs read as one setting: the ones kaip injects and the aliases SDKs also read.

    A container that sets any of them (or a variable starting with one of ``prefixes``) has chosen
    that setting itself, so none of the group is injected: a half-injected group would let an SDK
    pick the Secret's value over the container's (botocore reads only ``AWS_DEFAULT_REGION``).
    """

    setting: str
    injected: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def covers(self, variable: str) -> bool:
        named = variable in self.injected or variable in self.aliases
        return named or any(variable.startswith(prefix) for prefix in self.prefixes)


#: The groups of every variable kaip injects. Aliases: ``AWS_SECURITY_TOKEN`` (botocore),
#: ``AWS_ACCESS_KEY``/``AWS_SECRET_KEY`` (the Java SDK), ``AWS_ENDPOINT_URL_<SERVICE>`` (every SDK
#: with configurable endpoints: it wins over ``AWS_ENDPOINT_URL`` for its service).
ENV_GROUPS = (
    EnvGroup(
        "credentials",
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
        aliases=("AWS_SECURITY_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY"),
    ),
    EnvGroup("region", ("AWS_REGION", "AWS_DEFAULT_REGION")),
    EnvGroup("endpoint", ("AWS_ENDPOINT_URL",), prefixes=("AWS_ENDPOINT_URL_",)),
    EnvGroup("key file", (GCP_ENV,)),
)
GCP_MOUNT_ROOT = "/var/run/secrets/kaip.dev/gcp"

KIND_AWS = "aws"
KIND_GCP = "gcp"
KIND_BY_TYPE = {AWS_TYPE: KIND_AWS, GCP_TYPE: KIND_GCP}

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VOLUME_PREFIX = "kaip-gcp-"
_MAX_LABEL = 63


@dataclass(frozen=True)
class Injected:
    """One entry of :data:`ANNOTATION_INJECTED`."""

    kind: str
    secret: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.secret}"


def split_names(value: str) -> list[str]:
    """``"a, b,,a"`` -> ``["a", "b"]``: comma-separated names, blanks dropped, first occurrence kept."""
    seen: list[str] = []
    for part in value.split(","):
        name = part.strip()
        if name and name not in seen:
            seen.append(name)
    return seen


def gcp_volume_name(secret: str) -> str:
    """Deterministic volume name (a DNS-1123 label) for the key file of GCP Secret ``secret``."""
    candidate = _VOLUME_PREFIX + secret
    if len(candidate) <= _MAX_LABEL and _LABEL.match(candidate):
        return candidate
    digest = hashlib.sha256(secret.encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9-]", "-", secret.lower())[: _MAX_LABEL - len(_VOLUME_PREFIX) - 11].strip("-")
    return f"{_VOLUME_PREFIX}{stem}-{digest}" if stem else f"{_VOLUME_PREFIX}{digest}"


def gcp_mount_path(secret: str) -> str:
    return f"{GCP_MOUNT_ROOT}/{secret}"


def gcp_key_path(secret: str) -> str:
    return f"{gcp_mount_path(secret)}/{GCP_KEY_FILE}"
