"""The main job (`make demo`): kaip at work on a local control plane with simulated GPU nodes.

Starts kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1, creates GPU
nodes (some broken: a lost GPU, pages pending retirement, a process in D state, a degraded PCIe link, a
node whose kubelet is gone) and Pods that hold GPUs, and runs the plugins through kubectl against it:

1. ``kubectl node-health`` over the broken nodes;
2. kaip's credentials webhook (its real server, registered in kube-apiserver) refusing a malformed
   ``kaip.dev/aws-credentials`` Secret and admitting a good one;
3. ``kubectl pvc-preload create --wait``: a small dataset copied from an embedded MinIO into a PVC by
   kaip's data-loader controller (its loader Pod run by the test bed's kubelet stand-in);
4. ``kubectl ai-platform jobs submit training`` for real: Kubeflow's training-operator (with its
   webhooks) runs the job, its Pods run the demo's training module on this host, and
   ``jobs stream-logs``/``list``/``describe`` follow it to SUCCEEDED.

With ``KAIP_DEMO_KUBECONFIG`` set, only the read-only commands run, against that cluster instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from kaip_testbed import binaries, controlplane, gpu_nodes

READ_ONLY = [
    ["node-health", "summary"],
    ["node-health", "list", "-o", "wide"],
    ["node-health", "list", "--only-problems"],
    ["node-health", "describe", "gpu-a100-1"],
]
LOCAL_ONLY = [
    ["pvc-preload", "create", "imagenet", "--source", "s3://datasets/imagenet/train", "--size", "200Gi",
     "--dry-run=client", "-o", "yaml"],
    ["ai-platform", "version"],
]  # fmt: skip
NAMESPACE = "demo"
DATASET = {f"mnist/train/{i:03d}.png": bytes([i]) * 2048 for i in range(24)} | {
    "mnist/labels.csv": b"0,1,2\n"
}
TRAINER = """
import sys, time
epochs = int(sys.argv[sys.argv.index("--epochs") + 1]) if "--epochs" in sys.argv else 1
for epoch in range(epochs):
    time.sleep(0.3)
    print(f"epoch {epoch + 1}/{epochs}: loss {0.9 / (epoch + 1):.3f} accuracy {0.7 + 0.09 * epoch:.2f}", flush=True)
print("saved the model", flush=True)
"""
KUBEFLOW_NODES = (
    gpu_nodes.GPUNode("gpu-kf-a100-0", kwok="kubeflow", kwok_taint=False, pool="kubeflow"),
    gpu_nodes.GPUNode("gpu-kf-a100-1", kwok="kubeflow", kwok_taint=False, pool="kubeflow"),
)
CREDENTIALS = [
    ["create", "secret", "generic", "s3-broken", "--type=kaip.dev/aws-credentials",
     "--from-literal=aws_access_key_id=AKIAEXAMPLE"],
]  # fmt: skip


def banner(text: str) -> None:
    print(f"\n\033[1m$ {text}\033[0m", flush=True)


def run_plugins(
    commands: Sequence[Sequence[str]],
    env: dict[str, str],
    *,
    expect: Sequence[int] = (0, 1),
    cwd: Path | None = None,
) -> int:
    """Run each command through kubectl, printing it and what it printed; count the unexpected exits."""
    kubectl = binaries.path_of("kubectl")
    failures = 0
    for argv in commands:
        banner("kubectl " + " ".join(shlex.quote(a) for a in argv))
        done = subprocess.run([kubectl, *argv], env=env, check=False, text=True, capture_output=True, cwd=cwd)
        sys.stdout.write(done.stdout)
        sys.stdout.write(done.stderr)
        if done.returncode not in expect:  # node-health exits 1 when it reports problems, as it should here
            failures += 1
            print(f"(exit code {done.returncode}, expected {' or '.join(map(str, expect))})")
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


def live_parts(plane: controlplane.ControlPlane, workdir: Path, env: dict[str, str]) -> int:
    """Credentials, preloading and a training job, each with kaip's real in-cluster parts running."""
    from kaip.kube import connect
    from kaip.kube.config import ClusterTarget
    from kaip.kube.errors import Conflict
    from kaip.resources import kinds
    from kaip_testbed import dataloader, objectstores, webhooks
    from kaip_testbed.kubeflow import KubeflowBed
    from kaip_testbed.trainingpods import TrainingPods

    admin = connect(ClusterTarget(kubeconfig=str(plane.kubeconfig)))
    admin.create(kinds.NAMESPACES, {"metadata": {"name": NAMESPACE}})
    with contextlib.suppress(Conflict):  # kube-controller-manager may have been first
        admin.create(kinds.SERVICEACCOUNTS, {"metadata": {"name": "default"}}, namespace=NAMESPACE)
    kube = admin.with_namespace(NAMESPACE)
    env = {
        **env,
        "KUBECONFIG": str(plane.write_kubeconfig("demo-user", cert=plane.admin, namespace=NAMESPACE)),
    }
    failures = 0

    print("\n== Credentials: kaip's webhook checks kaip.dev/* Secrets when they are created ==")
    hook = webhooks.deploy(plane, admin, workdir / "webhook")
    minio = objectstores.start_minio(workdir / "minio")
    try:
        failures += run_plugins(CREDENTIALS, env, expect=(1,))  # refused: no secret key
        good = [
            "create", "secret", "generic", "s3-reader", "--type=kaip.dev/aws-credentials",
            f"--from-literal=aws_access_key_id={minio.access_key}",
            f"--from-literal=aws_secret_access_key={minio.secret_key}", f"--from-literal=endpoint_url={minio.endpoint}",
        ]  # fmt: skip
        banner(
            "kubectl create secret generic s3-reader --type=kaip.dev/aws-credentials --from-literal=... (keys hidden)"
        )
        done = subprocess.run(
            [binaries.path_of("kubectl"), *good], env=env, text=True, capture_output=True, check=False
        )
        print(done.stdout + done.stderr, end="")
        failures += done.returncode != 0

        print("\n== Data: the controller copies s3://datasets/mnist into a PVC before anything reads it ==")
        client = minio.client()
        client.create_bucket(Bucket="datasets")  # type: ignore[attr-defined]
        for key, body in DATASET.items():
            client.put_object(Bucket="datasets", Key=key, Body=body)  # type: ignore[attr-defined]
        rbac_kubeconfig, undo = dataloader.install_controller_rbac(admin, plane)
        dataloader.grant_lease(admin, NAMESPACE)
        controller = dataloader.ControllerProcess(rbac_kubeconfig, NAMESPACE, "demo", workdir)
        try:
            with dataloader.Kubelet(kube, plane, workdir / "volumes"):
                failures += run_plugins(
                    [["pvc-preload", "create", "mnist", "--source", "s3://datasets/mnist", "--size", "1Gi",
                      "--credentials", "s3-reader", "--wait"], ["pvc-preload", "list"]],
                    env, expect=(0,),
                )  # fmt: skip
        finally:
            controller.stop()
            undo()
    finally:
        minio.stop()
        webhooks.undeploy(admin, hook)

    print("\n== Training: Kubeflow's training-operator runs a job submitted the gcloud way ==")
    bed = KubeflowBed(plane, admin, shape="training-operator", nodes=KUBEFLOW_NODES)
    trainer = workdir / "user" / "trainer"
    trainer.mkdir(parents=True)
    (trainer / "__init__.py").write_text("")
    (trainer / "task.py").write_text(textwrap.dedent(TRAINER))
    try:
        bed.start()
        with TrainingPods(kube, plane, namespace=NAMESPACE, workdir=workdir / "kubelet", code=trainer.parent):
            failures += run_plugins(
                [
                    ["ai-platform", "jobs", "submit", "training", "mnist", "--module-name", "trainer.task",
                     "--package-path", "./trainer", "--scale-tier", "custom", "--master-machine-type", "n1-standard-8",
                     "--master-accelerator", "type=nvidia-tesla-a100,count=1", "--worker-machine-type", "n1-standard-8",
                     "--worker-accelerator", "type=nvidia-tesla-a100,count=1", "--worker-count", "1",
                     "--stream-logs", "--", "--epochs", "3"],
                    ["ai-platform", "jobs", "list"],
                    ["ai-platform", "jobs", "describe", "mnist"],
                ],
                env, expect=(0,), cwd=trainer.parent,
            )  # fmt: skip
    finally:
        bed.stop()
    return failures


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
    # `kill` stops the demo as Ctrl-C does: through the finally below, which stops the servers and
    # removes the folder. Ctrl-C works even where the demo was started with SIGINT ignored (a shell
    # starts background commands so, and Python then installs no handler of its own).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="kaip-demo-"))
    print(
        f"Starting a local control plane (kube-apiserver, etcd, controller-manager, scheduler, kwok) in {workdir}"
    )
    started = time.monotonic()
    plane: controlplane.ControlPlane | None = None
    try:
        plane = controlplane.start(workdir)
        plane.start_controllers()
        plane.start_kwok()
        seed(plane)
        print(
            f"Ready in {time.monotonic() - started:.1f}s: {len(gpu_nodes.DEMO_NODES)} simulated nodes, GPU Pods running."
        )
        env = plugin_env(plane.kubeconfig)
        failures = run_plugins(READ_ONLY + LOCAL_ONLY, env)
        failures += live_parts(plane, workdir, env)
        print(
            f"\nThe demo took {time.monotonic() - started:.0f}s{'' if not failures else f'; {failures} step(s) failed'}."
        )
        if args.keep:
            print(
                f"\nThe control plane keeps running. Try:\n  export KUBECONFIG={plane.kubeconfig}\n"
                "  kubectl node-health summary\n  kubectl ai-platform jobs list -n demo\nPress Ctrl-C to stop it."
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("Stopping the control plane.", flush=True)
        return 1 if failures else 0
    except KeyboardInterrupt:
        print("\nInterrupted: stopping the control plane.", flush=True)
        return 130
    finally:
        if plane is not None:
            plane.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
