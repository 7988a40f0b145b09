"""``kaip-remediator``: flags, leader election and the round loop of the remediation controller.

Every replica campaigns for the Lease; only the holder runs rounds. A replica that loses the Lease
exits (code 1) and is restarted by its Deployment. Since all state is in the API, a replica killed
at any point (even with SIGKILL) leaves nothing that the next leader cannot continue.
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
from kaip_incluster.leader import LeaderElector, LeaseConfig
from kaip_incluster.remediation.loop import Reconciler, Settings

log = logging.getLogger("kaip.remediator")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kaip-remediator", description=__doc__)
    parser.add_argument("--kubeconfig", default=None, help="default: KUBECONFIG, ~/.kube/config, in-cluster")
    parser.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE", "kaip-remediation"),
        help="namespace of the Lease and of the operation Jobs",
    )
    parser.add_argument("--event-namespace", default="default", help="namespace of the Events about Nodes")
    parser.add_argument("--lease-name", default="kaip-remediator")
    parser.add_argument(
        "--identity", default=os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    )
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--health-port", type=int, default=8080, help="/healthz and /readyz; 0: off")
    return parser.parse_args(list(argv))


def serve_health(port: int, elector: LeaderElector, alive: threading.Event) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                code, text = (200, "ok\n") if alive.is_set() else (503, "stopping\n")
            elif self.path == "/readyz":
                code, text = 200, "leader\n" if elector.leading.is_set() else "standby\n"
            else:
                code, text = 404, "not found\n"
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - probes come from the kubelet
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server


def run_rounds(
    reconciler: Reconciler, *, leading: threading.Event, stop: threading.Event, interval: float
) -> None:
    while not stop.is_set():
        if leading.is_set():
            try:
                reconciler.tick()
            except KaipError as exc:
                log.warning("round failed (tried again): %s", exc.message)
        stop.wait(interval)


def main(argv: Sequence[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    args = parse_args(argv)
    from kaip.kube import connect
    from kaip.kube.config import ClusterTarget

    try:
        kube = connect(ClusterTarget(kubeconfig=args.kubeconfig))
    except KaipError as exc:
        print(f"kaip-remediator: {exc.message}", file=sys.stderr)
        return int(exc.exit_code)
    lease = LeaseConfig(
        name=args.lease_name,
        namespace=args.namespace,
        identity=args.identity,
        lease_seconds=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
    )
    elector = LeaderElector(kube, lease)
    reconciler = Reconciler(
        kube,
        Settings(namespace=args.namespace, event_namespace=args.event_namespace, identity=args.identity),
    )
    stop, lost, alive = threading.Event(), threading.Event(), threading.Event()
    alive.set()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    def on_lost() -> None:
        lost.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = serve_health(args.health_port, elector, alive) if args.health_port else None
    threading.Thread(
        target=elector.run, kwargs={"stop": stop, "on_lost": on_lost}, daemon=True, name="leader"
    ).start()
    log.info(
        "kaip-remediator %s started; campaigning for lease %s/%s", args.identity, lease.namespace, lease.name
    )
    run_rounds(reconciler, leading=elector.leading, stop=stop, interval=args.interval)
    alive.clear()
    if server is not None:
        server.shutdown()
    if lost.is_set():
        return 1
    elector.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
