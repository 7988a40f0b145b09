"""The credentials mutator: mounts the Secrets named by ``kaip.dev/credentials`` into a Pod.

AWS credentials become environment variables from ``secretKeyRef``; GCP credentials a read-only
Secret volume and ``GOOGLE_APPLICATION_CREDENTIALS`` pointing into it. Every init container, native
sidecar and container gets them unless listed in ``kaip.dev/skip-containers``. A variable the
container already sets is kept, with a warning, and so are the variables SDKs read as the same
setting (``AWS_REGION`` and ``AWS_DEFAULT_REGION``, the credential triple, the endpoints): none of
such a group is injected then (:data:`kaip.resources.credentials.ENV_GROUPS`). Names are
deterministic and the mutator returns no operations on its own output, so re-invocation changes
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kaip.kube.objects import annotations_of, spec_of
from kaip.resources import credentials as cr
from kaip_incluster.admission import jsonpatch
from kaip_incluster.admission.errors import Refused
from kaip_incluster.admission.pods import (
    ContainerRef,
    Mutation,
    PodContext,
    SecretInfo,
    ServiceAccountInfo,
    containers,
    list_of,
)

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MAX_NAME = 253
_KIND_LABEL = {cr.KIND_AWS: "AWS", cr.KIND_GCP: "GCP"}
#: What a user should know when part of a group is left to the container (see :data:`cr.ENV_GROUPS`).
_HINTS = {"AWS_DEFAULT_REGION": "boto3 and the AWS CLI read only AWS_DEFAULT_REGION: set it too"}


def names_on_pod(pod: Mapping[str, Any]) -> bool:
    """Whether the Pod names its credentials itself (its ServiceAccount's annotation is then ignored)."""
    return cr.ANNOTATION_CREDENTIALS in annotations_of(pod)


def requested(pod: Mapping[str, Any], service_account: ServiceAccountInfo | None) -> tuple[list[str], str]:
    """The credential names a Pod asks for, and where the request comes from (for messages)."""
    own = annotations_of(pod)
    if cr.ANNOTATION_CREDENTIALS in own:
        return cr.split_names(str(own[cr.ANNOTATION_CREDENTIALS])), "the Pod"
    if service_account is not None and cr.ANNOTATION_CREDENTIALS in service_account.annotations:
        names = cr.split_names(service_account.annotations[cr.ANNOTATION_CREDENTIALS])
        return names, f'ServiceAccount "{service_account.name}"'
    return [], ""


def service_account_name(pod: Mapping[str, Any]) -> str:
    spec = spec_of(pod)
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a Secret or ServiceAccount (a DNS subdomain)."""
    return len(name) <= _MAX_NAME and bool(_SUBDOMAIN.match(name))


def lookup_names(names: list[str]) -> list[str]:
    """The names worth looking up (the others are refused before any lookup)."""
    return [n for n in names if valid_name(n)]


def _resolve(names: list[str], origin: str, context: PodContext) -> list[SecretInfo]:
    where = f"{cr.ANNOTATION_CREDENTIALS} on {origin}"
    found: list[SecretInfo] = []
    for name in names:
        if "/" in name:
            raise Refused(
                f'{where}: "{name}" names a Secret in another namespace; credentials are taken from '
                f"the Pod's namespace \"{context.namespace}\" only: write the Secret's name alone"
            )
        if name not in lookup_names([name]):
            raise Refused(f'{where}: "{name}" is not a valid Secret name')
        info = context.secrets.get(name)
        if info is None:
            raise Refused(f'{where}: Secret "{name}" not found in namespace "{context.namespace}"')
        if info.type not in cr.TYPES:
            raise Refused(
                f'{where}: Secret "{name}" is of type "{info.type}", not {cr.AWS_TYPE} or {cr.GCP_TYPE}'
            )
        found.append(info)
    for kind, label in _KIND_LABEL.items():
        same = [i.name for i in found if cr.KIND_BY_TYPE[i.type] == kind]
        if len(same) > 1:
            raise Refused(
                f"{where}: names {len(same)} {label} credentials ({', '.join(same)}); a Pod can use one "
                f"of each kind, because their environment variables would collide"
            )
    return found


def _skipped(pod: Mapping[str, Any]) -> set[str]:
    value = annotations_of(pod).get(cr.ANNOTATION_SKIP_CONTAINERS)
    if value is None:
        return set()
    names = set(cr.split_names(str(value)))
    known = {ref.name for ref in containers(pod)}
    unknown = sorted(names - known)
    if unknown:
        raise Refused(
            f"{cr.ANNOTATION_SKIP_CONTAINERS}: no container or init container is named "
            f"{', '.join(repr(n) for n in unknown)} (containers: {', '.join(sorted(known)) or 'none'})"
        )
    return names


def _env_entries(info: SecretInfo) -> list[dict[str, Any]]:
    if info.type == cr.GCP_TYPE:
        return [{"name": cr.GCP_ENV, "value": cr.gcp_key_path(info.name)}]
    entries: list[dict[str, Any]] = []
    for variable, key in cr.AWS_ENV:
        optional = key in cr.AWS_OPTIONAL_KEYS
        if optional and key not in info.keys:
            continue
        ref: dict[str, Any] = {"name": info.name, "key": key}
        if optional:
            ref["optional"] = True
        entries.append({"name": variable, "valueFrom": {"secretKeyRef": ref}})
    return entries


def _same_env(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    if "value" in wanted:
        return bool(existing.get("value") == wanted["value"])
    mine = wanted["valueFrom"]["secretKeyRef"]
    value_from = existing.get("valueFrom")
    theirs = value_from.get("secretKeyRef") if isinstance(value_from, dict) else None
    if not isinstance(theirs, dict):
        return False
    return bool(theirs.get("name") == mine["name"] and theirs.get("key") == mine["key"])


def _kept(container: str, own: list[str], spared: list[str], secret: str) -> str:
    """The warning for a group of variables the container sets itself (some or all of them)."""
    text = f'container "{container}" sets {", ".join(own)} itself; kept'
    if not spared:
        return f'{text} (not taken from Secret "{secret}")'
    verb = "is" if len(spared) == 1 else "are"
    text = f'{text}, and {", ".join(spared)} {verb} not taken from Secret "{secret}" either'
    hints = [_HINTS[name] for name in spared if name in _HINTS]
    return f"{text} ({'; '.join(hints)})" if hints else f"{text}, so that SDKs read one value"


def _env_ops(
    ref: ContainerRef, current: dict[str, Any], env: dict[str, Any], info: SecretInfo
) -> tuple[list[jsonpatch.Op], list[str]]:
    """Per group of variables SDKs read as one setting: all of it injected, or none of it."""
    ops: list[jsonpatch.Op] = []
    warnings: list[str] = []
    entries = _env_entries(info)
    for group in cr.ENV_GROUPS:
        wanted = {e["name"]: e for e in entries if e["name"] in group.injected}
        if not wanted:
            continue
        own = [n for n, e in env.items() if group.covers(n) and not (n in wanted and _same_env(e, wanted[n]))]
        if own:
            spared = [n for n in wanted if n not in own]
            warnings.append(_kept(ref.name, own, spared, info.name))
            continue
        for name, entry in wanted.items():
            if name not in env:
                ops.append(jsonpatch.append(current, ref.path, "env", entry))
                env[name] = entry
    return ops, warnings


def _container_ops(ref: ContainerRef, found: list[SecretInfo]) -> tuple[list[jsonpatch.Op], list[str]]:
    ops: list[jsonpatch.Op] = []
    warnings: list[str] = []
    current: dict[str, Any] = dict(ref.container)
    env = {str(e.get("name")): e for e in list_of(current.get("env")) if isinstance(e, dict)}
    mounts = [m for m in list_of(current.get("volumeMounts")) if isinstance(m, dict)]
    for info in found:
        if info.type == cr.GCP_TYPE:
            volume, path = cr.gcp_volume_name(info.name), cr.gcp_mount_path(info.name)
            if not any(m.get("name") == volume for m in mounts):
                if any(m.get("mountPath") == path for m in mounts):
                    warnings.append(f'container "{ref.name}": {path} is already mounted; GCP key not mounted')
                    continue
                mount = {"name": volume, "mountPath": path, "readOnly": True}
                ops.append(jsonpatch.append(current, ref.path, "volumeMounts", mount))
                mounts.append(mount)
        more, notes = _env_ops(ref, current, env, info)
        ops.extend(more)
        warnings.extend(notes)
    if ops and list_of(current.get("envFrom")):
        # Kubernetes lets env win over envFrom, and what envFrom holds is not in the review.
        warnings.append(
            f'container "{ref.name}" has envFrom, which kaip cannot see into: a variable there named '
            "like an injected one is overridden; set it in env to keep it"
        )
    return ops, warnings


def _volume_ops(pod: Mapping[str, Any], found: list[SecretInfo]) -> list[jsonpatch.Op]:
    spec = dict(spec_of(pod))
    volumes = {str(v.get("name")): v for v in list_of(spec.get("volumes")) if isinstance(v, dict)}
    ops: list[jsonpatch.Op] = []
    for info in found:
        if info.type != cr.GCP_TYPE:
            continue
        name = cr.gcp_volume_name(info.name)
        existing = volumes.get(name)
        if existing is not None:
            source = existing.get("secret")
            if not isinstance(source, dict) or source.get("secretName") != info.name:
                raise Refused(f'volume "{name}" is reserved for GCP credentials "{info.name}"; rename it')
            continue
        volume = {
            "name": name,
            "secret": {"secretName": info.name, "items": [{"key": cr.GCP_KEY_FILE, "path": cr.GCP_KEY_FILE}]},
        }
        ops.append(jsonpatch.append(spec, "/spec", "volumes", volume))
        volumes[name] = volume
    return ops


def inject_credentials(pod: Mapping[str, Any], context: PodContext) -> Mutation:
    """The mutator: the patch that mounts the requested credentials, or a refusal."""
    names, origin = requested(pod, context.service_account)
    if not names or not isinstance(pod.get("spec"), dict):
        return Mutation()
    found = _resolve(names, origin, context)
    skipped = _skipped(pod)
    ops = _volume_ops(pod, found)
    warnings: list[str] = []
    for ref in containers(pod):
        if ref.name in skipped:
            continue
        more, notes = _container_ops(ref, found)
        ops.extend(more)
        warnings.extend(notes)
    record = ",".join(str(cr.Injected(cr.KIND_BY_TYPE[i.type], i.name)) for i in found)
    if annotations_of(pod).get(cr.ANNOTATION_INJECTED) != record:
        ops.append(jsonpatch.set_annotation(pod, cr.ANNOTATION_INJECTED, record))
    return Mutation(ops=ops, warnings=warnings)
