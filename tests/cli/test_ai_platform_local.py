"""`kubectl ai-platform local train`: real processes with the TF_CONFIG gcloud sets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kaip.aiplatform import local
from kaip.cli.app import run
from kaip.commands.ai_platform import cli

TRAINER = """
import json, os, sys, time
job_dir = sys.argv[sys.argv.index("--job-dir") + 1]
config = json.loads(os.environ["TF_CONFIG"])
task = config["task"]
with open(os.path.join(job_dir, f"{task['type']}-{task['index']}.json"), "w") as handle:
    json.dump({"tf_config": config, "argv": sys.argv[1:]}, handle)
if task["type"] == "chief":
    expected = int(os.environ.get("EXPECTED_TASKS", "1"))
    deadline = time.time() + 30
    while len(os.listdir(job_dir)) < expected and time.time() < deadline:
        time.sleep(0.1)
    sys.exit(int(os.environ.get("PRIMARY_EXIT", "0")))
time.sleep(60)  # a server task runs until it is stopped
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "src" / "trainer"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "task.py").write_text(TRAINER)
    monkeypatch.setenv(local.PYTHON_ENV, sys.executable)  # no TensorFlow there: the primary is "chief"
    return pkg


def test_distributed_tasks_get_gclouds_tf_config(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("EXPECTED_TASKS", "4")
    code = run(
        cli,
        ["local", "train", "--module-name=trainer.task", f"--package-path={package}", f"--job-dir={out}", "--distributed",
         "--parameter-server-count=1", "--worker-count=1", "--evaluator-count=1", "--start-port=29000", "--", "--epochs=1"],
        prog_name="kubectl ai-platform",
    )  # fmt: skip
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "chief-0.json",
        "evaluator-0.json",
        "ps-0.json",
        "worker-0.json",
    ]
    chief = json.loads((out / "chief-0.json").read_text())
    assert chief["argv"] == ["--epochs=1", "--job-dir", str(out)]
    assert chief["tf_config"] == {
        "job": {"job_name": "trainer.task", "args": ["--epochs=1", "--job-dir", str(out)]},
        "task": {"type": "chief", "index": 0},
        "cluster": {"chief": ["localhost:29000"], "ps": ["localhost:29001"], "worker": ["localhost:29002"]},
        "environment": "cloud",
    }
    evaluator = json.loads((out / "evaluator-0.json").read_text())["tf_config"]
    assert evaluator["task"] == {"type": "evaluator", "index": 0} and "evaluator" not in evaluator["cluster"]


def test_single_process_and_its_exit_code(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("PRIMARY_EXIT", "3")
    monkeypatch.chdir(package)  # --package-path defaults to the current directory
    code = run(
        cli,
        ["local", "train", "--module-name=trainer.task", f"--job-dir={out}"],
        prog_name="kubectl ai-platform",
    )
    assert code == 3
    config = json.loads((out / "chief-0.json").read_text())["tf_config"]
    assert config["cluster"] == {} and config["task"] == {"type": "chief", "index": 0}


def test_default_counts_and_ports() -> None:
    tasks = local.plan(
        module="m",
        args=[],
        primary="master",
        distributed=True,
        parameter_servers=2,
        workers=2,
        evaluators=0,
        start_port=27182,
    )
    assert [(t.task_type, t.index) for t in tasks] == [
        ("master", 0),
        ("ps", 0),
        ("ps", 1),
        ("worker", 0),
        ("worker", 1),
    ]
    assert tasks[0].tf_config["cluster"]["worker"] == ["localhost:27185", "localhost:27186"]
