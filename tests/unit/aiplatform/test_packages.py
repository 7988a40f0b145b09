"""`--package-path` built as gcloud builds it: an sdist of the package (the parent's setup.py or one made up)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from kaip.aiplatform import packages
from kaip.errors import UsageError


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def test_sdist_of_a_package_without_setup_py(tmp_path: Path) -> None:
    pkg = tmp_path / "trainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("print('train')\n")
    built = packages.build_sdist(str(pkg))
    assert built.name == "trainer-0.0.0.tar.gz"
    assert any(n.endswith("trainer/task.py") for n in names(built.data))


def test_sdist_uses_the_parents_setup_py(tmp_path: Path) -> None:
    pkg = tmp_path / "trainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='census', version='1.2', packages=['trainer'])\n"
    )
    assert packages.build_sdist(str(pkg)).name == "census-1.2.tar.gz"


def test_a_package_needs_init(tmp_path: Path) -> None:
    (tmp_path / "trainer").mkdir()
    with pytest.raises(UsageError, match=r"needs an __init__\.py"):
        packages.build_sdist(str(tmp_path / "trainer"))


def test_bucket_staging_without_storage_layer_says_what_to_do() -> None:
    staging = packages.Staging(uploads=[(packages.LocalFile("t.tar.gz", b"x"), "gs://b/t.tar.gz")])
    with pytest.raises(UsageError, match="omit --staging-bucket to stage them in a ConfigMap"):
        packages.upload_all(staging, None)


def test_bucket_staging_uploads_through_the_stager() -> None:
    seen: list[tuple[str, bytes, str]] = []

    class Stager:
        def upload(self, local: Path, uri: str) -> None:
            seen.append((local.name, local.read_bytes(), uri))

    staging = packages.Staging(uploads=[(packages.LocalFile("t.tar.gz", b"abc"), "s3://b/j/1/t.tar.gz")])
    packages.upload_all(staging, Stager())
    assert seen == [("t.tar.gz", b"abc", "s3://b/j/1/t.tar.gz")]
