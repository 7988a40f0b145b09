"""`pip install kaip` without extras, as a user has it: every program it puts on PATH answers `--help`
or says in one line which `pip install 'kaip[…]'` it needs, and the commands that need an extra
(`pvc-preload copy`, the loader, `jobs submit --staging-bucket`) say the same, never a traceback.

The virtualenv gets this checkout as an editable install and the base dependencies only, which pip
reads from pyproject.toml (the local pip cache serves them after the first run).
"""

from __future__ import annotations

import os
import subprocess
import venv
from collections.abc import Sequence
from pathlib import Path

import pytest

from kaip.errors import ExitCode
from kaip.kube.client import Kube
from kaip.resources import kubeflow as kf

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: What the base install lacks, by program: these print the one line (the others need nothing more).
NEEDS_INCLUSTER = {"kaip-webhook", "kaip-alerts", "kaip-remediator"}  # aiohttp; urllib3 (GitHub)
#: Environment that would change which path a command takes (keys given outright need no boto3).
_DROPPED = ("PYTHONPATH", "KUBECONFIG", "STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with kaip and its base dependencies only; its bin folder."""
    home = tmp_path_factory.mktemp("bare-venv")
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # No extras named: pip installs [project.dependencies] and nothing else.
    subprocess.run([*pip, "-e", str(ROOT)], check=True, timeout=300, env=_env())
    listed = _run(home / "bin", [str(python), "-m", "pip", "list", "--format=freeze"], cwd=home)
    assert not {"boto3", "requests", "aiohttp", "cryptography", "google-cloud-storage"} & {
        line.split("==")[0].lower() for line in listed.stdout.splitlines()
    }, listed.stdout
    return home / "bin"


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _DROPPED and not k.startswith(("AWS_", "PIP_REQUIRE", "VIRTUAL_ENV"))
    }
    return {**env, **extra}


def _run(bin_dir: Path, argv: Sequence[str], *, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = _env(**env)
    environ["PATH"] = os.pathsep.join([str(bin_dir), environ.get("PATH", "")])
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=60, check=False, cwd=cwd, env=environ
    )


def scripts(bin_dir: Path) -> list[str]:
    """The console scripts the base wheel installs, as its metadata names them."""
    done = _run(
        bin_dir,
        [
            str(bin_dir / "python"),
            "-c",
            "import importlib.metadata as m; print('\\n'.join(sorted(e.name for e in "
            "m.distribution('kaip').entry_points if e.group == 'console_scripts')))",
        ],
        cwd=bin_dir,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def assert_one_line(done: subprocess.CompletedProcess[str], extra: str) -> None:
    out = done.stdout + done.stderr
    assert done.returncode == ExitCode.MISSING_EXTRA, out
    assert "Traceback" not in out, out
    assert len(done.stderr.splitlines()) == 1 and not done.stdout, out
    assert done.stderr.rstrip().endswith(f"is not installed: pip install 'kaip[{extra}]'"), out


def test_every_program_answers_help_or_names_its_extra(bare: Path, tmp_path: Path) -> None:
    names = scripts(bare)
    assert {"kubectl-pvc_preload", "kaip-webhook", "kaip-loader"} <= set(names), names
    for name in names:
        done = _run(bare, [name, "--help"], cwd=tmp_path)
        if name in NEEDS_INCLUSTER:
            assert_one_line(done, "incluster")
            assert done.stderr.startswith(f"{name} needs "), done.stderr
        else:
            assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
            assert "Traceback" not in done.stderr, f"{name}: {done.stderr}"


@pytest.mark.parametrize(("source", "extra"), [("s3://datasets/mnist", "s3"), ("gs://datasets/mnist", "gcs")])
def test_copy_names_the_extra_it_needs(bare: Path, tmp_path: Path, source: str, extra: str) -> None:
    assert_one_line(_run(bare, ["kubectl-pvc_preload", "copy", source, str(tmp_path)], cwd=tmp_path), extra)


def test_the_loader_names_the_extra_in_its_one_line(bare: Path, tmp_path: Path) -> None:
    done = _run(
        bare,
        ["kaip-loader", "--source", "s3://datasets/mnist", "--target", str(tmp_path),
         "--termination-log", str(tmp_path / "termination-log")],
        cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.rstrip().endswith("pip install 'kaip[s3]'"), done.stderr
    assert "pip install 'kaip[s3]'" in (tmp_path / "termination-log").read_text()


@pytest.mark.usefixtures("kubeflow")
def test_staging_in_a_bucket_names_the_extra(
    bare: Path, tmp_path: Path, kubeconfig: Path, namespace: str, kube: Kube
) -> None:
    trainer = tmp_path / "trainer"
    trainer.mkdir()
    (trainer / "__init__.py").write_text("")
    (trainer / "task.py").write_text("print('training')\n")
    done = _run(
        bare,
        ["kubectl-ai_platform", "jobs", "submit", "training", "staged", "--module-name=trainer.task",
         "--package-path=./trainer", "--staging-bucket=s3://stage", "--kubeconfig", str(kubeconfig),
         "-n", namespace],
        cwd=tmp_path,
    )  # fmt: skip
    assert_one_line(done, "s3")
    assert done.stderr.startswith("error: uploading to s3://stage/staged/"), done.stderr
    assert kube.list(kf.TFJOBS)["items"] == []  # refused before anything was created
