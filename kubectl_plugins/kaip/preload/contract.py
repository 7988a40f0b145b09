"""The preload contract of a PVC: its annotations read into a :class:`LoadRequest`, or an error.

Pure: a PVC (plain dict) in, a request out. A PVC without ``preload.kaip.dev/source`` is no request
(``None``); a bad value raises :class:`BadAnnotation`, which names the annotation, what is wrong and
the fix, so the controller can put the message on the PVC's condition and Event as it is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kaip.kube.objects import annotations_of
from kaip.preload.errors import InvalidSource
from kaip.resources import preload as names
from kaip.storage.source import Source, parse_source

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
_MAX_PATH = 1024
_MAX_NAME = 253
#: The most shards one PVC may ask for (an Indexed Job allows far more; a store and a volume do not).
MAX_PARALLELISM = 64


class BadAnnotation(InvalidSource):
    """An annotation of the preload contract has a value the controller cannot use."""

    reason = names.REASON_INVALID

    def __init__(self, annotation: str, message: str) -> None:
        super().__init__(message)
        self.annotation = annotation


@dataclass(frozen=True)
class LoadRequest:
    """What a PVC asks for: copy ``source`` into ``path`` of the volume, with ``credentials``."""

    source: Source
    #: A kaip credentials Secret in the PVC's namespace; None: anonymous access (public bucket).
    credentials: str | None = None
    #: Sub-directory of the volume, relative, without ``.``/``..``; "" is the volume's root.
    path: str = ""
    #: Loader resources from the annotation (``cpu=2,memory=1Gi``); empty: the controller's defaults.
    resources: tuple[tuple[str, str], ...] = ()
    #: Value of ``preload.kaip.dev/retry``: a new value asks for a new attempt.
    retry: str = ""
    #: Shards asked for by ``preload.kaip.dev/parallelism``; None: the controller's default applies.
    parallelism: int | None = None

    @property
    def key(self) -> str:
        """10 hex digits that change whenever the load to run changes (source, path, credentials,
        retry, parallelism; an unset parallelism leaves the key as it was before the annotation)."""
        parts = [self.source.url, self.path, self.credentials or "", self.retry]
        if self.parallelism is not None:
            parts.append(f"parallelism={self.parallelism}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:10]


def is_preload(pvc: Mapping[str, Any]) -> bool:
    """Whether the PVC asks for a preload at all (its source may still be bad).

    The one test of it: the plugin (list, status, retry), the controller (which PVCs to watch, which
    gate to release) and the admission webhook (which Pods to gate) all ask here.
    """
    return names.ANNOTATION_SOURCE in annotations_of(pvc)


def read_request(pvc: Mapping[str, Any]) -> LoadRequest | None:
    """The PVC's request, ``None`` when it has no source annotation; :class:`BadAnnotation` if malformed."""
    notes = annotations_of(pvc)
    raw_source = notes.get(names.ANNOTATION_SOURCE)
    if raw_source is None:
        return None
    try:
        source = parse_source(str(raw_source), field=f"annotation {names.ANNOTATION_SOURCE}")
    except InvalidSource as exc:
        raise BadAnnotation(
            names.ANNOTATION_SOURCE, f"{exc.message}; set it to e.g. s3://my-bucket/datasets/imagenet"
        ) from exc
    return LoadRequest(
        source=source,
        credentials=_credentials(notes.get(names.ANNOTATION_CREDENTIALS)),
        path=parse_path(notes.get(names.ANNOTATION_PATH)),
        resources=parse_resources(notes.get(names.ANNOTATION_RESOURCES)),
        retry=str(notes.get(names.ANNOTATION_RETRY) or ""),
        parallelism=parse_parallelism(notes.get(names.ANNOTATION_PARALLELISM)),
    )


def parse_parallelism(value: object) -> int | None:
    """The shard count annotation: an integer from 1 to :data:`MAX_PARALLELISM`; None when unset."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_PARALLELISM:
        raise BadAnnotation(
            names.ANNOTATION_PARALLELISM,
            f"annotation {names.ANNOTATION_PARALLELISM}: {text[:40]!r} is not a number of loader Pods "
            f"from 1 to {MAX_PARALLELISM}; write e.g. 4 (or remove it for the cluster's default)",
        )
    return int(text)


def _credentials(value: object) -> str | None:
    if value is None or not str(value).strip():
        return None
    name = str(value).strip()
    if len(name) > _MAX_NAME or not _SUBDOMAIN.match(name):
        raise BadAnnotation(
            names.ANNOTATION_CREDENTIALS,
            f"annotation {names.ANNOTATION_CREDENTIALS}: {name!r} is not a Secret name; name one "
            "kaip.dev/aws-credentials or kaip.dev/gcp-credentials Secret of the PVC's namespace "
            "(or remove the annotation for a public bucket)",
        )
    return name


def parse_path(value: object) -> str:
    """The sub-directory annotation as a clean relative path ("" for the root)."""
    if value is None:
        return ""
    text = str(value)
    where = f"annotation {names.ANNOTATION_PATH}: {text[:80]!r}"
    if len(text) > _MAX_PATH or "\x00" in text or any(ord(c) < 32 for c in text):
        raise BadAnnotation(names.ANNOTATION_PATH, f"{where} is too long or holds control characters")
    if text.startswith("/"):
        raise BadAnnotation(
            names.ANNOTATION_PATH,
            f"{where} is absolute; write a sub-directory of the volume such as datasets/train",
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadAnnotation(
            names.ANNOTATION_PATH, f"{where} leaves the volume (..); write a sub-directory of the volume"
        )
    return "/".join(parts)


def parse_resources(value: object) -> tuple[tuple[str, str], ...]:
    """``cpu=2,memory=1Gi`` as sorted ``(name, quantity)`` pairs."""
    if value is None or not str(value).strip():
        return ()
    found: dict[str, str] = {}
    for item in str(value).split(","):
        name, sep, quantity = (s.strip() for s in item.partition("="))
        if not item.strip():
            continue
        if not sep or name not in _RESOURCE_NAMES or not _QUANTITY.match(quantity):
            raise BadAnnotation(
                names.ANNOTATION_RESOURCES,
                f"annotation {names.ANNOTATION_RESOURCES}: {item.strip()[:60]!r} is not NAME=QUANTITY with "
                f"NAME one of {', '.join(_RESOURCE_NAMES)}; write e.g. cpu=2,memory=1Gi",
            )
        found[name] = quantity
    return tuple(sorted(found.items()))
