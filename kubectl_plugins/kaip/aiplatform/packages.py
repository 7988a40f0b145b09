"""Local code for a job, as gcloud ships it: `--package-path` built as an sdist, `--packages` taken as
they are, staged where the replicas can fetch them, installed before ``python -m MODULE``.

Where: a ConfigMap in the job's namespace when the files are small enough (a cluster needs no
bucket), else the staging bucket through a :class:`BucketStager` (``kaip.storage``). Packages that
are already ``gs://`` or ``s3://`` URIs are fetched by an init container with the job's credentials.
Deciding is pure (:func:`plan`); building the sdist and reading files are the only I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kaip.aiplatform.catalog import Catalog
from kaip.aiplatform.manifests import PACKAGES_DIR, PodAdditions
from kaip.errors import OperationFailed, UsageError
from kaip.resources import kubeflow as kf
from kaip.resources.kinds import CONFIGMAPS

#: A ConfigMap holds at most 1 MiB; binaryData is base64 (4/3), and metadata needs room.
CONFIGMAP_LIMIT = 700 * 1024
REMOTE_DIR = "/kaip/remote-packages"
_SETUP_PY = """from setuptools import find_packages, setup

setup(name={name!r}, version="0.0.0", packages=find_packages(include=[{name!r}, {name!r} + ".*"]))
"""


class BucketStager(Protocol):
    """Uploads one local file to an ``s3://`` or ``gs://`` URI (implemented over ``kaip.storage``)."""

    def upload(self, local: Path, uri: str) -> None: ...


@dataclass(frozen=True)
class LocalFile:
    name: str
    data: bytes


@dataclass(frozen=True)
class Staging:
    """The objects to create before the job and what each replica's Pod gets."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    additions: PodAdditions = field(default_factory=PodAdditions)
    #: (local file, bucket URI) pairs to upload before the job is created.
    uploads: list[tuple[LocalFile, str]] = field(default_factory=list)


def build_sdist(package_path: str) -> LocalFile:
    """``python setup.py sdist`` of the package's parent, as gcloud does (its setup.py, or a generated one)."""
    pkg = Path(package_path).resolve()
    if not pkg.is_dir():
        raise UsageError(f"--package-path {package_path}: not a directory")
    if not (pkg / "__init__.py").is_file():
        raise UsageError(f"--package-path {package_path}: a Python package needs an __init__.py")
    with tempfile.TemporaryDirectory(prefix="kaip-sdist-") as tmp:
        work = Path(tmp) / "src"
        parent_setup = pkg.parent / "setup.py"
        if parent_setup.is_file():
            shutil.copytree(pkg.parent, work, ignore=shutil.ignore_patterns("*.pyc", "__pycache__", ".git"))
        else:
            work.mkdir()
            shutil.copytree(pkg, work / pkg.name, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
            (work / "setup.py").write_text(_SETUP_PY.format(name=pkg.name))
        out = Path(tmp) / "dist"
        done = subprocess.run(
            [sys.executable, "setup.py", "-q", "sdist", "--formats=gztar", "--dist-dir", str(out)],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        built = sorted(out.glob("*.tar.gz")) if out.is_dir() else []
        if done.returncode != 0 or not built:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no sdist was written"]
            raise OperationFailed(f"building --package-path {package_path} failed: {tail[0]}")
        return LocalFile(built[0].name, built[0].read_bytes())


def read_local(path: str) -> LocalFile:
    try:
        return LocalFile(os.path.basename(path), Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"--packages {path}: cannot be read ({exc.strerror})") from None


def is_remote(uri: str) -> bool:
    return uri.startswith(("gs://", "s3://"))


def plan(
    *,
    job_name: str,
    job_id: str,
    files: Sequence[LocalFile],
    remote: Sequence[str],
    staging_bucket: str | None,
    job_dir: str | None,
    catalog: Catalog,
    namespace: str | None,
) -> Staging:
    """Where each package goes and how the replicas get it."""
    volumes: list[Mapping[str, Any]] = []
    mounts: list[Mapping[str, Any]] = []
    init: list[Mapping[str, Any]] = []
    install: list[str] = []
    objects: list[dict[str, Any]] = []
    uploads: list[tuple[LocalFile, str]] = []
    size = sum(len(f.data) for f in files)
    bucket = staging_bucket or (
        job_dir if job_dir and is_remote(job_dir) and size > CONFIGMAP_LIMIT else None
    )
    fetch = list(remote)
    if files and bucket:
        digest = hashlib.sha256(b"".join(f.data for f in files)).hexdigest()[:16]
        base = bucket.rstrip("/") + (f"/{job_id}/{digest}" if staging_bucket else f"/packages/{digest}")
        for f in files:
            uploads.append((f, f"{base}/{f.name}"))
        fetch += [uri for _, uri in uploads]
    elif files:
        if size > CONFIGMAP_LIMIT:
            raise UsageError(
                f"the packages take {size // 1024} KiB, more than a ConfigMap holds "
                f"({CONFIGMAP_LIMIT // 1024} KiB): give --staging-bucket s3://... or gs://..."
            )
        cm_name = f"{job_name}-packages"
        metadata: dict[str, Any] = {"name": cm_name, "labels": {kf.LABEL_FOR_JOB: job_name}}
        if namespace:
            metadata["namespace"] = namespace
        objects.append(
            {
                "apiVersion": CONFIGMAPS.api_version,
                "kind": CONFIGMAPS.kind,
                "metadata": metadata,
                "binaryData": {f.name: base64.b64encode(f.data).decode() for f in files},
            }
        )
        volumes.append({"name": "kaip-packages", "configMap": {"name": cm_name}})
        mounts.append({"name": "kaip-packages", "mountPath": PACKAGES_DIR, "readOnly": True})
        install += [f"{PACKAGES_DIR}/{f.name}" for f in files]
    if fetch:
        volumes.append({"name": "kaip-remote-packages", "emptyDir": {}})
        mount = {"name": "kaip-remote-packages", "mountPath": REMOTE_DIR}
        mounts.append(mount)
        for scheme in ("gs", "s3"):
            uris = [u for u in fetch if u.startswith(f"{scheme}://")]
            if uris:
                init.append(_fetcher(scheme, uris, catalog.fetch_image(scheme), mount))
        install += [f"{REMOTE_DIR}/{u.rstrip('/').rsplit('/', 1)[-1]}" for u in fetch]
    return Staging(objects, PodAdditions(tuple(volumes), tuple(mounts), tuple(init), tuple(install)), uploads)


def _fetcher(scheme: str, uris: Sequence[str], image: str, mount: Mapping[str, Any]) -> dict[str, Any]:
    tool = 'gsutil -q cp "$u" ' if scheme == "gs" else 'aws s3 cp --only-show-errors "$u" '
    script = f'set -e; for u in "$@"; do {tool}{REMOTE_DIR}/; done'
    return {
        "name": f"kaip-fetch-{scheme}-packages",
        "image": image,
        "command": ["sh", "-c", script, "fetch"],
        "args": list(uris),
        "volumeMounts": [dict(mount)],
    }


def upload_all(staging: Staging, stager: BucketStager | None) -> None:
    """Upload what :func:`plan` put in a bucket (before the job exists, so its Pods find the files)."""
    if not staging.uploads:
        return
    if stager is None:
        raise UsageError(
            "staging packages in a bucket needs the storage layer (kaip.storage), which this installation "
            "lacks; omit --staging-bucket to stage them in a ConfigMap"
        )
    with tempfile.TemporaryDirectory(prefix="kaip-stage-") as tmp:
        for f, uri in staging.uploads:
            local = Path(tmp) / f.name
            local.write_bytes(f.data)
            stager.upload(local, uri)


def storage_stager() -> BucketStager | None:
    """The bucket stager of ``kaip.storage`` when it offers one (``kaip.storage.upload_file``)."""
    try:
        from kaip import storage
    except ImportError:
        return None
    upload: Any = getattr(storage, "upload_file", None)
    if not callable(upload):
        return None

    class _Stager:
        def upload(self, local: Path, uri: str) -> None:
            upload(local, uri)

    return _Stager()
