"""Start-up time of the plugins' --help beside `kubectl version --client` (the issue's peer).

Goal: median of 10 runs under 0.25 s for kubectl-ai_platform and kubectl-node_health."""

from __future__ import annotations

import os
import statistics
import subprocess
import sysconfig
import time

import pytest

from kaip_testbed import binaries

RUNS = 10


def median_seconds(argv: list[str]) -> float:
    subprocess.run(argv, capture_output=True, check=True)  # warm the page cache once
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@pytest.mark.parametrize("plugin", ["kubectl-ai_platform", "kubectl-node_health", "kubectl-pvc_preload"])
def test_help_starts_fast(plugin: str) -> None:
    exe = os.path.join(sysconfig.get_path("scripts"), plugin)
    ours = median_seconds([exe, "--help"])
    peer = median_seconds([binaries.path_of("kubectl"), "version", "--client"])
    print(
        f"\n{plugin} --help: median {ours * 1000:.0f} ms; kubectl version --client: {peer * 1000:.0f} ms; ratio {ours / peer:.2f}x"
    )
    assert ours < 0.25
