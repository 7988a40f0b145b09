"""``kaip-controller``: flags, leader election, health and metrics endpoints around the loop.

Every replica watches (so a new leader starts warm) and serves ``/healthz``, ``/readyz`` and
``/metrics``; only the holder of the Lease acts. A replica that loses the Lease exits (code 1) and
is restarted by its Deployment: no half-held leadership. SIGTERM releases the Lease for a fast
hand-over.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kaip.errors import KaipError
from kaip.preload import jobs
from kaip.preload.contract import BadAnnotation, parse_resources
from kaip_incluster.controller.loop import Controller, Settings
from kaip_incluster.leader import LeaderElector, LeaseConfig

log = logging.getLogger("kaip.controller")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kaip-controller", description=__doc__)
    parser.add_argument("--kubeconfig", default=None, help="default: KUBECONFIG, ~/.kube/config, in-cluster")
    parser.add_argument("--watch-namespace", default=None, help="watch one namespace only (default: all)")
    parser.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "kaip-system"))
    parser.add_argument("--lease-name", default="kaip-data-loader")
    parser.add_argument(
        "--identity", default=os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    )
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    parser.add_argument("--resync", type=float, default=60.0, help="seconds between full re-lists")
    parser.add_argument("--image", default=jobs.IMAGE, help="image of the loader Jobs")
    parser.add_argument(
        "--loader-resources",
        default="cpu=500m,memory=512Mi",
        help="default loader requests (memory is also the limit)",
    )
    parser.add_argument("--backoff-limit", type=int, default=3)
    parser.add_argument("--active-deadline", type=int, default=6 * 3600, help="seconds a load may take")
    parser.add_argument("--loader-workers", type=int, default=32)
    parser.add_argument("--health-port", type=int, default=8080, help="/healthz /readyz /metrics; 0: off")
    return parser.parse_args(list(argv))


def serve_health(port: int, controller: Controller, elector: LeaderElector) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._answer(200, "ok\n")
            elif self.path == "/readyz":
                ready = controller.synced.is_set()
                self._answer(200 if ready else 503, "ok\n" if ready else "watches not synced\n")
            elif self.path == "/metrics":
                controller.metrics.leader = int(elector.leading.is_set())
                self._answer(200, controller.metrics.text(), "text/plain; version=0.0.4")
            else:
                self._answer(404, "not found\n")

        def _answer(self, code: int, text: str, kind: str = "text/plain") -> None:
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - probes come from the kubelet
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server


def main(argv: Sequence[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    args = parse_args(argv)
    try:
        resources = parse_resources(args.loader_resources)
    except BadAnnotation:
        print("kaip-controller: --loader-resources: write e.g. cpu=500m,memory=512Mi", file=sys.stderr)
        return 2
    from kaip.kube import connect
    from kaip.kube.config import ClusterTarget

    try:
        kube = connect(ClusterTarget(kubeconfig=args.kubeconfig))
    except KaipError as exc:
        print(f"kaip-controller: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    config = jobs.LoaderConfig(
        image=args.image,
        resources=resources,
        backoff_limit=args.backoff_limit,
        active_deadline_seconds=args.active_deadline,
        workers=args.loader_workers,
    )
    lease = LeaseConfig(
        name=args.lease_name,
        namespace=args.lease_namespace,
        identity=args.identity,
        lease_seconds=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
    )
    elector = LeaderElector(kube, lease)
    controller = Controller(
        kube,
        Settings(
            config=config, namespace=args.watch_namespace, identity=args.identity, resync_seconds=args.resync
        ),
        acting=elector.leading.is_set,
    )
    stop = threading.Event()
    lost = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    def on_lost() -> None:
        lost.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = serve_health(args.health_port, controller, elector) if args.health_port else None
    controller.start(stop)
    threading.Thread(
        target=elector.run,
        kwargs={"stop": stop, "on_lost": on_lost},
        daemon=True,
        name="leader",
    ).start()
    log.info(
        "kaip-controller %s started; campaigning for lease %s/%s", args.identity, lease.namespace, lease.name
    )
    controller.run(stop)
    if server is not None:
        server.shutdown()
    if lost.is_set():
        return 1
    elector.release()
    return 0
