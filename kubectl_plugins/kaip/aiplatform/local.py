"""`local train`: run the trainer on this machine as gcloud does, one process per task with the
TF_CONFIG that gcloud sets (ports from 27182, ``chief`` for TensorFlow 2 or none, ``master`` for 1.x).

Deciding the tasks is pure (:func:`plan`); :func:`run` starts them and returns the primary's exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kaip.errors import UsageError

DEFAULT_START_PORT = 27182
#: gcloud's property ml_engine/local_python, as its environment variable.
PYTHON_ENV = "CLOUDSDK_ML_ENGINE_LOCAL_PYTHON"


@dataclass(frozen=True)
class Task:
    task_type: str
    index: int
    tf_config: Mapping[str, Any]


def plan(
    *,
    module: str,
    args: Sequence[str],
    primary: str,
    distributed: bool,
    parameter_servers: int,
    workers: int,
    evaluators: int,
    start_port: int,
) -> list[Task]:
    """The tasks and their TF_CONFIG; the primary first."""
    job = {"job_name": module, "args": list(args)}
    if not distributed:
        config = {"job": job, "task": {"type": primary, "index": 0}, "cluster": {}, "environment": "cloud"}
        return [Task(primary, 0, config)]
    if min(parameter_servers, workers, evaluators) < 0:
        raise UsageError(
            "--parameter-server-count, --worker-count and --evaluator-count must not be negative"
        )
    last = start_port + parameter_servers + workers
    if start_port < 1 or last > 65535:
        raise UsageError(f"--start-port {start_port}: the ports up to {last} must lie in 1-65535")
    ports = iter(range(start_port, last + 1))
    cluster = {
        primary: [f"localhost:{next(ports)}"],
        "ps": [f"localhost:{next(ports)}" for _ in range(parameter_servers)],
        "worker": [f"localhost:{next(ports)}" for _ in range(workers)],
    }
    tasks = [
        Task(t, i, {"job": job, "task": {"type": t, "index": i}, "cluster": cluster, "environment": "cloud"})
        for t, addresses in cluster.items()
        for i in range(len(addresses))
    ]
    # Evaluators run beside the cluster, not in it (as on AI Platform).
    tasks += [
        Task(
            "evaluator",
            i,
            {
                "job": job,
                "task": {"type": "evaluator", "index": i},
                "cluster": cluster,
                "environment": "cloud",
            },
        )
        for i in range(evaluators)
    ]
    return tasks


def user_args(args: Sequence[str], job_dir: str | None) -> list[str]:
    return [*args, "--job-dir", job_dir] if job_dir else list(args)


def python(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(PYTHON_ENV) or shutil.which("python") or shutil.which("python3") or sys.executable


def primary_name(python_exe: str) -> str:
    """``master`` when the local TensorFlow is 1.x, else ``chief`` (gcloud's rule)."""
    probe = "import tensorflow as tf; print(tf.__version__)"
    try:
        done = subprocess.run(
            [python_exe, "-c", probe], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "chief"
    version = done.stdout.strip()
    return "master" if done.returncode == 0 and version.startswith("1.") else "chief"


def run(
    tasks: Sequence[Task], *, module: str, args: Sequence[str], package_root: str, python_exe: str
) -> int:
    """Start every task; wait for the primary; stop the others; return the primary's exit code."""
    procs = []
    for task in tasks:
        env = {**os.environ, "TF_CONFIG": json.dumps(task.tf_config)}
        procs.append(subprocess.Popen([python_exe, "-m", module, *args], env=env, cwd=package_root))
    try:
        return procs[0].wait()
    finally:
        for proc in procs[1:]:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs[1:]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
