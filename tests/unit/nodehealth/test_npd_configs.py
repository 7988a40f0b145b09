"""node-problem-detector's custom plugin monitor configs of manifests/node-problem-detector, checked
field by field against NPD's config types and its Validate() rules
(pkg/custompluginmonitor/types/config.go and types.go, docs/custom_plugin_monitor.md).

Go's JSON decoder silently ignores unknown or misspelt fields, so NPD would start with a default in
their place; this test refuses them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kaip_incluster.nodechecks.__main__ import CHECKS
from kaip_incluster.nodechecks.result import MESSAGE_LIMIT
from kaip_testbed import binaries

ROOT = Path(__file__).resolve().parents[3]
FOLDER = ROOT / "manifests" / "node-problem-detector"
CONFIGS = sorted((FOLDER / "config").glob("*.json"))
FIXTURES = ROOT / "tests" / "fixtures" / "nodechecks"

# field -> type, as NPD's structs declare them (pointers are optional fields)
TOP = {
    "plugin": str,
    "pluginConfig": dict,
    "source": str,
    "conditions": list,
    "rules": list,
    "metricsReporting": bool,
}
GLOBAL = {
    "invoke_interval": str,
    "timeout": str,
    "max_output_length": int,
    "concurrency": int,
    "enable_message_change_based_condition_update": bool,
    "skip_initial_status": bool,
}
CONDITION = {"type": str, "reason": str, "message": str}
RULE = {
    "type": str,
    "condition": str,
    "reason": str,
    "path": str,
    "args": list,
    "timeout": str,
    "invoke_interval": str,
}
_GO_DURATION = re.compile(r"^(?:\d+(?:\.\d*)?(?:ns|us|µs|ms|s|m|h))+$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Seconds of a Go ``time.ParseDuration`` string; refuses what Go refuses (e.g. ``30``, ``1d``)."""
    assert _GO_DURATION.match(text), f"{text!r} is not a Go duration"
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)", text))


def typed(obj: dict[str, Any], schema: dict[str, type], where: str) -> None:
    unknown = set(obj) - set(schema)
    assert not unknown, f"{where}: fields NPD does not know: {sorted(unknown)}"
    for key, value in obj.items():
        # bool is an int in Python, not in Go's JSON
        ok = isinstance(value, schema[key]) and not (schema[key] is int and isinstance(value, bool))
        assert ok, f"{where}.{key}: {type(value).__name__}, NPD wants {schema[key].__name__}"


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def test_there_is_a_rule_for_every_check() -> None:
    rules = [r for p in CONFIGS for r in load(p)["rules"]]
    assert sorted(r["condition"] for r in rules) == sorted(CHECKS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_has_npds_schema_and_passes_its_validation(path: Path) -> None:
    doc = load(path)
    typed(doc, TOP, path.name)
    assert doc["plugin"] == "custom"
    assert doc["source"]
    plugin = doc.get("pluginConfig", {})
    typed(plugin, GLOBAL, "pluginConfig")
    global_timeout = go_duration(plugin.get("timeout", "5s"))
    go_duration(plugin.get("invoke_interval", "30s"))
    # our messages are cut to MESSAGE_LIMIT; NPD must not cut them shorter (its default is 80)
    assert plugin.get("max_output_length", 80) >= MESSAGE_LIMIT
    for i, cond in enumerate(doc["conditions"]):
        typed(cond, CONDITION, f"conditions[{i}]")
    defaults = {c["type"] for c in doc["conditions"]}
    for i, rule in enumerate(doc["rules"]):
        typed(rule, RULE, f"rules[{i}]")
        assert rule["type"] in ("temporary", "permanent")
        assert all(isinstance(a, str) for a in rule["args"])
        if "timeout" in rule:
            assert go_duration(rule["timeout"]) <= global_timeout, "rule timeout above the global timeout"
        if "invoke_interval" in rule:
            go_duration(rule["invoke_interval"])
        if rule["type"] == "permanent":
            assert rule["condition"] in defaults, (
                f"permanent problem {rule['condition']} has no default condition"
            )


@pytest.mark.parametrize(
    "rule", [r for p in CONFIGS for r in load(p)["rules"]], ids=lambda r: str(r["condition"])
)
def test_rule_runs_our_check_for_its_condition(rule: dict[str, Any], tmp_path: Path) -> None:
    args = list(rule["args"])
    assert args[:3] == ["-m", "kaip_incluster.nodechecks", rule["condition"]]
    args[args.index("--root") + 1] = str(FIXTURES / "healthy-a100")
    if "--state-dir" in args:
        args[args.index("--state-dir") + 1] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, *args, "--nvidia-smi", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode in (0, 1, 2), done.stderr
    assert done.stdout.count("\n") == 1 and len(done.stdout.strip()) <= MESSAGE_LIMIT


@pytest.mark.testbin  # kubectl kustomize, from hack/testbin.sh
def test_daemonset_runs_every_config_with_the_host_mounted() -> None:
    built = subprocess.run(
        [binaries.path_of("kubectl"), "kustomize", str(FOLDER)], capture_output=True, text=True, check=True
    ).stdout
    docs = {d["kind"]: d for d in yaml.safe_load_all(built) if d["kind"] != "ConfigMap"}
    docs["ConfigMap"] = next(
        d
        for d in yaml.safe_load_all(built)
        if d["kind"] == "ConfigMap"
        and d["metadata"]["name"].startswith("kaip-node-checks-")
        and "expected-gpus.json" not in d["data"]
    )
    pod = docs["DaemonSet"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    flag = next(a for a in container["command"] if a.startswith("--config.custom-plugin-monitor="))
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    files = flag.split("=", 1)[1].split(",")
    assert sorted(files) == sorted(f"{mounted['config']}/{p.name}" for p in CONFIGS)
    assert sorted(docs["ConfigMap"]["data"]) == sorted(p.name for p in CONFIGS)
    assert mounted["host-proc"] == "/host/proc" and mounted["host-sys"] == "/host/sys"
    # the device checkpoint (GPURuntimeError, GPUCountMismatch), Pods' NFS volumes (NFSMountHung)
    assert mounted["host-kubelet"] == "/host/var/lib/kubelet"
    kubelet = next(m for m in container["volumeMounts"] if m["name"] == "host-kubelet")
    assert kubelet["readOnly"] and kubelet["mountPropagation"] == "HostToContainer"
    assert mounted["host-kmsg"] == "/host/dev/kmsg"
    assert pod["hostPID"], "nvidia-smi shows other containers' GPU processes only from the host PID namespace"
    expected = json.loads(
        next(
            d
            for d in yaml.safe_load_all(built)
            if d["kind"] == "ConfigMap" and "expected-gpus.json" in d["data"]
        )["data"]["expected-gpus.json"]
    )
    assert all(isinstance(n, int) and n > 0 for n in expected.values())
    gpu_rules = load(FOLDER / "config" / "gpu-plugin-monitor.json")["rules"]
    count_rule = next(r for r in gpu_rules if r["condition"] == "GPUCountMismatch")
    path = count_rule["args"][count_rule["args"].index("--expected-gpus-file") + 1]
    assert path == f"{mounted['expected-gpus']}/expected-gpus.json"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"operator": "Exists"} in pod["tolerations"], "broken and tainted GPU nodes must be watched too"
    assert "nvidia.com/gpu" not in json.dumps(container.get("resources", {})), "checks must not take a GPU"
