"""``kaip-controller``: the data-loader controller in the process shell (:mod:`kaip_incluster.process`).

Every replica watches (so a new leader starts warm) and serves ``/healthz``, ``/readyz`` (ready once
its watches have listed) and ``/metrics``; only the holder of the Lease acts. A replica that loses
the Lease exits (code 1) and is restarted by its Deployment. SIGTERM releases the Lease for a fast
hand-over.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kaip.preload import jobs
from kaip.preload.contract import BadAnnotation, parse_resources
from kaip_incluster import process
from kaip_incluster.controller.loop import Controller, Settings

if TYPE_CHECKING:
    from kaip.kube.client import Kube

PROG = "kaip-controller"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    process.add_flags(parser, lease_name="kaip-data-loader", health="/healthz /readyz /metrics")
    parser.add_argument("--watch-namespace", default=None, help="watch one namespace only (default: all)")
    parser.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "kaip-system"))
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
    parser.add_argument(
        "--default-parallelism",
        type=int,
        default=1,
        help="loader Pods (shards) of a ReadWriteMany PVC without annotation preload.kaip.dev/parallelism "
        "that asks for at least --parallelism-threshold",
    )
    parser.add_argument(
        "--parallelism-threshold",
        default="",
        help="requested PVC size (e.g. 500Gi) from which --default-parallelism applies (default: never)",
    )
    parser.add_argument(
        "--workers", type=int, default=32, help="PVCs and Pods worked on at once (never one twice)"
    )
    return parser.parse_args(list(argv))


def main(argv: Sequence[str]) -> int:
    process.setup_logging()
    args = parse_args(argv)
    try:
        resources = parse_resources(args.loader_resources)
    except BadAnnotation:
        print(f"{PROG}: --loader-resources: write e.g. cpu=500m,memory=512Mi", file=sys.stderr)
        return 2
    threshold = jobs.quantity_bytes(args.parallelism_threshold) if args.parallelism_threshold else None
    if (args.parallelism_threshold and threshold is None) or not 1 <= args.default_parallelism <= 64:
        print(f"{PROG}: write e.g. --default-parallelism=4 --parallelism-threshold=500Gi", file=sys.stderr)
        return 2
    config = jobs.LoaderConfig(
        image=args.image,
        resources=resources,
        backoff_limit=args.backoff_limit,
        active_deadline_seconds=args.active_deadline,
        workers=args.loader_workers,
        default_parallelism=args.default_parallelism,
        parallelism_threshold=threshold,
    )
    settings = Settings(
        config=config,
        namespace=args.watch_namespace,
        identity=args.identity,
        resync_seconds=args.resync,
        workers=max(1, args.workers),
    )

    def build(kube: Kube, shell: process.Process) -> process.Work:
        controller = Controller(kube, settings, acting=shell.leading.is_set)

        def ready() -> tuple[bool, str]:
            synced = controller.synced.is_set()
            return synced, "ok\n" if synced else "watches not synced\n"

        def metrics() -> str:
            controller.metrics.leader = int(shell.leading.is_set())
            return controller.metrics.text()

        return process.Work(run=controller.run, ready=ready, metrics=metrics, warm_up=controller.start)

    return process.run(PROG, args, lease_namespace=args.lease_namespace, build=build)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
