"""What a newcomer meets first, against the real API server with Kubeflow's CRDs: an empty `jobs list`
says so as kubectl does, a job id given twice is refused by its own name, and JOB arguments complete
with the namespace's job ids."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kaip.cli.app import completions
from kaip.commands.ai_platform import cli
from kaip.errors import ExitCode
from kaip_testbed.plugins import ai

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("kubeflow")]


def test_an_empty_list_says_so(capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str) -> None:
    for output in ("table", "wide"):
        code, out, err = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", output)
        assert (code, out, err) == (0, "", f"No jobs found in namespace {namespace}.\n")
    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "json")
    assert code == 0 and '"items": []' in out


def test_a_job_id_given_twice_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    pkg = tmp_path / "trainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text("print('hello')\n")
    args = ("jobs", "submit", "training", "job2", "--module-name=trainer.task", f"--package-path={pkg}")
    code, _, err = ai(capsys, kubeconfig, namespace, *args)
    assert code == 0, err
    code, out, err = ai(capsys, kubeconfig, namespace, *args)
    assert (code, out) == (ExitCode.REJECTED, "")
    assert err == "error: job job2 already exists (see 'kubectl ai-platform jobs describe job2')\n"
    # the job ids complete every JOB argument, quickly
    flags = ["--kubeconfig", str(kubeconfig), "-n", namespace]
    for verb in ("describe", "cancel", "update", "stream-logs"):
        start = time.monotonic()
        lines = completions(cli, ["jobs", verb, *flags, "jo"], "kubectl ai-platform")
        assert time.monotonic() - start < 0.3
        assert lines == ["job2", ":4"]
    code, out, _ = ai(capsys, kubeconfig, namespace, "jobs", "list", "-o", "wide")
    assert code == 0 and "job2" in out
