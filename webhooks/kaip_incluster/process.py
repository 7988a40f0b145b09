"""The process shell of the in-cluster controllers (``kaip-controller``, ``kaip-remediator``).

One shape for both: the flags they share, one connection to the API server, leader election on a
Lease (:mod:`kaip_incluster.leader` decides; a thread here runs it), ``/healthz`` ``/readyz``
``/metrics`` over ``http.server``, and SIGTERM/SIGINT. The controller's own work is a callable
(:class:`Work`) that runs in the main thread until the stop event is set.

Every replica serves its probes and may watch (so a new leader starts warm); only the holder of the
Lease acts (the work reads :attr:`Process.leading`). A replica that loses the Lease exits with code
1 and is restarted by its Deployment: no half-held leadership. SIGTERM or SIGINT ends the work,
releases the Lease for a fast hand-over, and exits with code 0.

:func:`lease_config`, :func:`route` and :func:`family` are pure; the rest is the short shell.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from kaip.errors import KaipError
from kaip_incluster.leader import LeaderElector, LeaseConfig

if TYPE_CHECKING:
    from kaip.kube.client import Kube

PROMETHEUS_TEXT = "text/plain; version=0.0.4"
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - the probes come from the kubelet, the scrapes from Prometheus


# -- flags ------------------------------------------------------------------------------------------
def default_identity() -> str:
    """The Pod's name (downward API), else this host and process."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def add_flags(parser: argparse.ArgumentParser, *, lease_name: str, health: str) -> None:
    """The flags every controller takes: cluster access, the Lease's timing, the probes' port.

    The Lease's namespace is the caller's flag (``--lease-namespace`` or ``--namespace``), since its
    name and default differ; ``health`` says what the port serves.
    """
    parser.add_argument("--kubeconfig", default=None, help="default: KUBECONFIG, ~/.kube/config, in-cluster")
    parser.add_argument("--lease-name", default=lease_name)
    parser.add_argument("--identity", default=default_identity())
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    parser.add_argument("--health-port", type=int, default=8080, help=f"{health}; 0: off")


def lease_config(args: argparse.Namespace, namespace: str) -> LeaseConfig:
    return LeaseConfig(
        name=args.lease_name,
        namespace=namespace,
        identity=args.identity,
        lease_seconds=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
    )


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


# -- the work and its endpoints ---------------------------------------------------------------------
@dataclass(frozen=True)
class Work:
    """What a controller brings to the shell."""

    #: Runs in the main thread until the event is set (it also reads :attr:`Process.leading`).
    run: Callable[[threading.Event], None]
    #: ``/readyz``: (ready, text). A replica that is not ready gets 503.
    ready: Callable[[], tuple[bool, str]]
    #: ``/metrics`` in the Prometheus text format; ``None``: no such route.
    metrics: Callable[[], str] | None = None
    #: Started before the campaign (watches, so that a new leader starts warm).
    warm_up: Callable[[threading.Event], object] | None = None


@dataclass(frozen=True)
class Answer:
    code: int
    text: str
    content_type: str = "text/plain"


def route(path: str, work: Work, *, alive: bool) -> Answer:
    """The answer to ``GET path``: liveness, readiness, metrics, or 404."""
    path = path.split("?", 1)[0]
    if path == "/healthz":
        return Answer(200, "ok\n") if alive else Answer(503, "stopping\n")
    if path == "/readyz":
        ready, text = work.ready()
        return Answer(200 if ready else 503, text)
    if path == "/metrics" and work.metrics is not None:
        return Answer(200, work.metrics(), PROMETHEUS_TEXT)
    return Answer(404, "not found\n")


def family(name: str, kind: str, samples: float | Mapping[str, float], *, label: str = "reason") -> str:
    """One metric family in the Prometheus text format: one sample, or one per value of ``label``."""
    rows = [f"# TYPE {name} {kind}\n"]
    if isinstance(samples, Mapping):
        rows += [f'{name}{{{label}="{_escape(v)}"}} {n}\n' for v, n in sorted(samples.items())]
    else:
        rows.append(f"{name} {samples}\n")
    return "".join(rows)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def serve(port: int, answer: Callable[[str], Answer], *, host: str = ANY_ADDRESS) -> ThreadingHTTPServer:
    """Serve ``answer`` on ``host:port`` from a daemon thread; ``shutdown()`` ends it."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = answer(self.path)
            data = found.text.encode()
            self.send_response(found.code)
            self.send_header("Content-Type", found.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server


# -- the shell --------------------------------------------------------------------------------------
class Process:
    """One controller process: its Lease, its stop event, its probes."""

    def __init__(self, prog: str, kube: Kube, lease: LeaseConfig) -> None:
        self.prog, self.lease = prog, lease
        self.log = logging.getLogger(f"kaip.{prog.removeprefix('kaip-')}")  # kaip.controller, ...
        self.elector = LeaderElector(kube, lease)
        self.stop = threading.Event()  # set by a signal or a lost Lease: the work ends
        self.lost = threading.Event()  # the Lease could not be kept: exit 1
        self.alive = threading.Event()  # /healthz: cleared once the work has ended

    @property
    def leading(self) -> threading.Event:
        return self.elector.leading

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stop.set()

    def _on_lost(self) -> None:
        self.lost.set()
        self.stop.set()

    def run(self, work: Work, *, health_port: int) -> int:
        """Serve the probes, campaign, run the work until stopped; the exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.alive.set()
        server = (
            serve(health_port, lambda path: route(path, work, alive=self.alive.is_set()))
            if health_port
            else None
        )
        try:
            if work.warm_up is not None:
                work.warm_up(self.stop)
            threading.Thread(
                target=self.elector.run,
                kwargs={"stop": self.stop, "on_lost": self._on_lost},
                daemon=True,
                name="leader",
            ).start()
            lease = self.lease
            self.log.info(
                "%s %s started; campaigning for lease %s/%s",
                self.prog,
                lease.identity,
                lease.namespace,
                lease.name,
            )
            work.run(self.stop)
        finally:
            self.stop.set()
            self.alive.clear()
            if server is not None:
                server.shutdown()
                server.server_close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self.lost.is_set():
            return 1
        self.elector.release()
        return 0


def run(
    prog: str,
    args: argparse.Namespace,
    *,
    lease_namespace: str,
    build: Callable[[Kube, Process], Work],
) -> int:
    """Connect (a failure: one line and the error's exit code), then run what ``build`` makes."""
    from kaip.kube import connect
    from kaip.kube.config import ClusterTarget

    try:
        kube = connect(ClusterTarget(kubeconfig=args.kubeconfig))
    except KaipError as exc:
        print(f"{prog}: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    process = Process(prog, kube, lease_config(args, lease_namespace))
    return process.run(build(kube, process), health_port=args.health_port)
