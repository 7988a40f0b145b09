"""The main job (`make demo`): kaip at work on a local control plane with simulated GPU nodes.

Starts kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1, creates GPU
nodes (some broken: a lost GPU, pages pending retirement, a process in D state, a degraded PCIe link, a
node whose kubelet is gone), Pods that hold GPUs, and runs the plugins through kubectl against it.
With ``KAIP_DEMO_KUBECONFIG`` set, the read-only commands run against that cluster instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from kaip_testbed import binaries, controlplane, gpu_nodes

READ_ONLY = [
    ["node-health", "summary"],
    ["node-health", "list", "-o", "wide"],
    ["node-health", "list", "--only-problems"],
    ["node-health", "describe", "gpu-a100-1"],
]
LOCAL_ONLY = [
    [
        "ai-platform",
        "jobs",
        "submit",
        "training",
        "mnist",
        "--module-name",
        "trainer.task",
        "--master-image-uri",
        "ghcr.io/example/mnist:1.0",
        "--scale-tier",
        "basic-gpu",
        "--dry-run=client",
        "-o",
        "yaml",
        "--",
        "--epochs",
        "3",
    ],
    [
        "pvc-preload",
        "create",
        "imagenet",
        "--source",
        "s3://datasets/imagenet/train",
        "--size",
        "200Gi",
        "--dry-run=client",
        "-o",
        "yaml",
    ],
    ["ai-platform", "version"],
]


def banner(text: str) -> None:
    print(f"\n\033[1m$ {text}\033[0m", flush=True)


def run_plugins(commands: list[list[str]], env: dict[str, str]) -> int:
    kubectl = binaries.path_of("kubectl")
    failures = 0
    for argv in commands:
        banner("kubectl " + " ".join(shlex.quote(a) for a in argv))
        done = subprocess.run([kubectl, *argv], env=env, check=False, text=True, capture_output=True)
        sys.stdout.write(done.stdout)
        sys.stdout.write(done.stderr)
        if done.returncode not in (0, 1):  # 1: node-health reports problems, as it should here
            failures += 1
            print(f"(exit code {done.returncode})")
    return failures


def plugin_env(kubeconfig: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = os.pathsep.join(
        [sysconfig.get_path("scripts"), str(binaries.folder()), env.get("PATH", "")]
    )
    return env


def seed(plane: controlplane.ControlPlane) -> None:
    from kaip.kube import connect
    from kaip.kube.config import ClusterTarget
    from kaip.resources import kinds

    kube = connect(ClusterTarget(kubeconfig=str(plane.kubeconfig)))
    gpu_nodes.create(kube, gpu_nodes.DEMO_NODES)
    default = kube.with_namespace("default")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # kube-controller-manager creates the default ServiceAccount
        try:
            default.get(kinds.SERVICEACCOUNTS, "default")
            break
        except Exception:
            time.sleep(0.5)
    for i, (node, gpus) in enumerate(
        (("gpu-a100-0", 8), ("gpu-a100-1", 4), ("gpu-a100-3", 2), ("gpu-a100-2", 1))
    ):
        default.create(kinds.PODS, gpu_nodes.gpu_pod(f"trainer-{i}", node=node, gpus=gpus))
    default.create(
        kinds.PODS,
        gpu_nodes.gpu_pod("notebook-0", node="gpu-h100-0", gpus=2, resource="nvidia.com/mig-1g.10gb"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--keep", action="store_true", help="leave the control plane running and print how to use it"
    )
    args = parser.parse_args(argv)
    own = os.environ.get("KAIP_DEMO_KUBECONFIG")
    if own:
        print(f"Running the read-only commands against the cluster of {own}")
        return 1 if run_plugins(READ_ONLY, plugin_env(Path(own).expanduser())) else 0
    workdir = Path(tempfile.mkdtemp(prefix="kaip-demo-"))
    print(
        f"Starting a local control plane (kube-apiserver, etcd, controller-manager, scheduler, kwok) in {workdir}"
    )
    started = time.monotonic()
    plane = controlplane.start(workdir)
    try:
        plane.start_controllers()
        plane.start_kwok()
        seed(plane)
        print(
            f"Ready in {time.monotonic() - started:.1f}s: {len(gpu_nodes.DEMO_NODES)} simulated nodes, GPU Pods running."
        )
        failures = run_plugins(READ_ONLY + LOCAL_ONLY, plugin_env(plane.kubeconfig))
        if args.keep:
            print(
                f"\nThe control plane keeps running. Try:\n  export KUBECONFIG={plane.kubeconfig}\n  kubectl node-health summary\nPress Ctrl-C to stop it."
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 1 if failures else 0
    finally:
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
