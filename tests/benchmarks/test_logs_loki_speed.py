"""`jobs stream-logs` of a finished job read from Loki (issue 19): 1,000,000 lines printed in time
order, each once, with the plugin's peak RSS under 150 MiB; the rate (lines/s) from a loopback
server, beside logcli's documented defaults (``--limit 30`` lines; ``--batch 1000`` per request when
asked for more), which pages the same API.

Loki is the stand-in of ``kaip_testbed.loki_standin`` (Loki is AGPL and cannot be built here), its
lines computed, not stored (:class:`Synthetic`), five lines at each nanosecond so that every page
boundary falls inside a nanosecond. The job's object is gone, so the lines come from Loki alone.
Run with `pytest tests/benchmarks/test_logs_loki_speed.py -s` to see the figures; LINES in the
environment (KAIP_BENCH_LOG_LINES) makes it smaller.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
import time
from pathlib import Path

import pytest

from kaip_testbed.loki_standin import LokiState, Synthetic, serve

pytestmark = pytest.mark.integration
EXE = os.path.join(sysconfig.get_path("scripts"), "kubectl-ai_platform")
LINES = int(os.environ.get("KAIP_BENCH_LOG_LINES", "1000000"))
RSS_LIMIT_MIB = 150
S = 1_000_000_000


def test_a_million_lines_of_a_finished_job_in_order_in_bounded_memory(
    kubeconfig: Path, namespace: str
) -> None:
    state = LokiState()
    start = time.time_ns() - 3000 * S
    labels = {"namespace": namespace, "pod": "big-1-master-0", "container": "pytorch"}
    state.add_synthetic(
        "bench", labels, Synthetic(start, 10_000, LINES, text=lambda i: f"step {i} loss 0.{i % 97}", same=5)
    )
    server = serve(state)
    env = {
        **os.environ,
        "KAIP_LOKI_URL": f"http://127.0.0.1:{server.server_port}",
        "KAIP_LOKI_TENANT": "bench",
    }
    argv = [EXE, "jobs", "stream-logs", "big_1", "--kubeconfig", str(kubeconfig), "-n", namespace]
    began = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    count, last = 0, ""
    for raw in proc.stdout:
        fields = raw.split(b"\t")
        stamp = fields[1].decode()
        assert stamp >= last, "out of order"
        assert fields[3] == f"step {count} loss 0.{count % 97}\n".encode(), f"line {count}"
        last = stamp
        count += 1
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    err = proc.stderr.read().decode() if proc.stderr else ""
    server.shutdown()
    assert os.waitstatus_to_exitcode(status) == 0, err
    assert count == LINES
    rss_mib = usage.ru_maxrss / 1024  # kilobytes on Linux
    pages = sum(1 for r in state.requests if r["path"].endswith("query_range"))
    print(
        f"\njobs stream-logs (Loki, loopback): {count:,} lines in {seconds:.1f} s = {count / seconds:,.0f} lines/s, "
        f"{pages} query_range pages of 5000, peak RSS {rss_mib:.0f} MiB (goal < {RSS_LIMIT_MIB} MiB)"
    )
    assert rss_mib < RSS_LIMIT_MIB
