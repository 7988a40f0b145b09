"""gcloud's `jobs submit training` flags and `--config` file, merged and checked as gcloud checks them.

The result is gcloud's own TrainingInput (camelCase, as in the ml v1 API), so a `--config` file and
the flags meet in one shape: the file first, then every flag given on the command line over it.
Pure: no I/O beyond the text of the config file handed in.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kaip.errors import UsageError

_JOB_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
SCALE_TIERS = ("basic", "basic-gpu", "basic-tpu", "standard-1", "premium-1", "custom")

#: TrainingInput fields we carry out.
KNOWN_INPUT = frozenset(
    {
        "scaleTier", "masterType", "masterConfig", "workerType", "workerCount", "workerConfig",
        "parameterServerType", "parameterServerCount", "parameterServerConfig", "evaluatorType",
        "evaluatorCount", "evaluatorConfig", "packageUris", "pythonModule", "args", "hyperparameters",
        "region", "jobDir", "runtimeVersion", "pythonVersion", "scheduling", "serviceAccount",
        "useChiefInTfConfig",
    }
)  # fmt: skip
#: TrainingInput fields that only mean something on Google Cloud, with what they are.
CLOUD_ONLY_INPUT = {
    "encryptionConfig": "customer-managed encryption keys (Cloud KMS)",
    "network": "VPC network peering",
    "enableWebAccess": "interactive shell web access",
    "nasJobSpec": "neural architecture search",
}
KNOWN_REPLICA_CONFIG = frozenset(
    {"imageUri", "acceleratorConfig", "containerCommand", "containerArgs", "diskConfig"}
)
KNOWN_SCHEDULING = frozenset({"maxRunningTime", "maxWaitTime", "priority"})
ROLES = ("master", "worker", "parameterServer", "evaluator")
ROLE_FLAG = {
    "master": "master",
    "worker": "worker",
    "parameterServer": "parameter-server",
    "evaluator": "evaluator",
}


@dataclass(frozen=True)
class SubmitFlags:
    """The gcloud flags of `jobs submit training` as typed (None: not given)."""

    job_id: str
    module_name: str | None = None
    package_path: str | None = None
    packages: tuple[str, ...] = ()
    staging_bucket: str | None = None
    job_dir: str | None = None
    region: str | None = None
    scale_tier: str | None = None
    master_machine_type: str | None = None
    master_image_uri: str | None = None
    master_accelerator: str | None = None
    worker_count: int | None = None
    worker_machine_type: str | None = None
    worker_image_uri: str | None = None
    worker_accelerator: str | None = None
    parameter_server_count: int | None = None
    parameter_server_machine_type: str | None = None
    parameter_server_image_uri: str | None = None
    parameter_server_accelerator: str | None = None
    runtime_version: str | None = None
    python_version: str | None = None
    use_chief_in_tf_config: bool | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None
    args: tuple[str, ...] = ()


def parse_accelerator(flag: str, value: str) -> dict[str, Any]:
    """``type=nvidia-tesla-t4,count=2`` as gcloud's ArgDict with required keys type and count."""
    parts: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.partition("=")
        if not sep or key.strip() not in ("type", "count"):
            raise UsageError(f"{flag}: expected type=TYPE,count=N, got {value!r}")
        parts[key.strip()] = val.strip()
    missing = [k for k in ("type", "count") if not parts.get(k)]
    if missing:
        raise UsageError(f"{flag}: key {missing[0]!r} is required (type=TYPE,count=N)")
    try:
        count = int(parts["count"])
    except ValueError:
        raise UsageError(f"{flag}: count must be a whole number, got {parts['count']!r}") from None
    if count <= 0:
        raise UsageError(f"{flag}: the count of the accelerator must be greater than 0")
    return {"type": parts["type"], "count": count}


def parse_labels(value: str) -> dict[str, str]:
    """gcloud's ``--labels KEY=VALUE,...`` with its rules for keys and values."""
    labels: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in value.split(","))):
        key, _, val = item.partition("=")
        check_label(key, val)
        labels[key] = val
    return labels


def check_label(key: str, value: str) -> None:
    if not _LABEL_KEY.match(key):
        raise UsageError(
            f"label key {key!r}: must start with a lowercase letter and contain only lowercase letters, "
            "digits, underscores and dashes (at most 63)"
        )
    if not _LABEL_VALUE.match(value):
        raise UsageError(
            f"label value {value!r}: only lowercase letters, digits, underscores and dashes (at most 63)"
        )


def check_job_id(job_id: str) -> None:
    if not _JOB_ID.match(job_id):
        raise UsageError(
            f"JOB {job_id!r}: must start with a letter and contain only letters, digits and underscores"
        )


def _flag_pairs(flags: SubmitFlags) -> None:
    """gcloud's argument groups: a count and its machine type come together."""
    for role, count, machine in (
        ("worker", flags.worker_count, flags.worker_machine_type),
        ("parameter-server", flags.parameter_server_count, flags.parameter_server_machine_type),
    ):
        if (count is None) != (machine is None):
            given, needed = (
                (f"--{role}-count", f"--{role}-machine-type")
                if machine is None
                else (f"--{role}-machine-type", f"--{role}-count")
            )
            raise UsageError(f"{given} requires {needed}: the two are given together")
        if count is not None and count < 1:
            raise UsageError(f"--{role}-count must be at least 1")
    if flags.master_image_uri and flags.runtime_version:
        raise UsageError("only one of --master-image-uri, --runtime-version can be set")
    if flags.packages:
        bases = [p.rstrip("/").rsplit("/", 1)[-1] for p in flags.packages]
        dupes = sorted({b for b in bases if bases.count(b) > 1})
        if dupes:
            raise UsageError(f"--packages: duplicate file name(s) {', '.join(dupes)}")


def flags_input(flags: SubmitFlags) -> dict[str, Any]:
    """The TrainingInput fields the flags set (only those given)."""
    _flag_pairs(flags)
    ti: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if value is not None and value != () and value != {}:  # noqa: PLR1714 - dicts are unhashable
            ti[key] = value

    put("pythonModule", flags.module_name)
    put("jobDir", flags.job_dir)
    put("region", flags.region)
    put("scaleTier", flags.scale_tier)
    put("masterType", flags.master_machine_type)
    put("workerType", flags.worker_machine_type)
    put("workerCount", flags.worker_count)
    put("parameterServerType", flags.parameter_server_machine_type)
    put("parameterServerCount", flags.parameter_server_count)
    put("runtimeVersion", flags.runtime_version)
    put("pythonVersion", flags.python_version)
    put("useChiefInTfConfig", flags.use_chief_in_tf_config)
    put("serviceAccount", flags.service_account)
    put("args", list(flags.args) or None)
    for role, image, acc in (
        ("master", flags.master_image_uri, flags.master_accelerator),
        ("worker", flags.worker_image_uri, flags.worker_accelerator),
        ("parameterServer", flags.parameter_server_image_uri, flags.parameter_server_accelerator),
    ):
        config: dict[str, Any] = {}
        if image:
            config["imageUri"] = image
        if acc:
            config["acceleratorConfig"] = parse_accelerator(f"--{ROLE_FLAG[role]}-accelerator", acc)
        put(f"{role}Config", config or None)
    return ti


def _looks_like_json(text: str, source: str) -> bool:
    return source.lower().endswith(".json") or text.lstrip().startswith(("{", "["))


def _yaml_problem(exc: Exception, text: str) -> str:
    """PyYAML's error as ``at line L, column C: problem``, 1-based, without its snippet of the file."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"at line {mark.line + 1}, column {mark.column + 1}"
        problem = " ".join(str(exc.problem or exc.context or "").split())
        start = exc.context_mark
        if exc.context and start is not None and (start.line, start.column) != (mark.line, mark.column):
            problem += f" ({exc.context} that starts at line {start.line + 1}, column {start.column + 1})"
        return f"{where}: {problem}"
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return f"at line {line}, column {column}: {exc.reason} (character #x{exc.character:04x})"
    return f"({type(exc).__name__})"


def load_document(text: str, *, source: str) -> Any:
    """The YAML or JSON document of ``--config FILE``; a syntax error names the file, line and column."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        yaml_error = exc
    if _looks_like_json(text, source):
        # YAML reads most JSON, but its complaint about broken JSON is about flow mappings; and JSON
        # allows tabs that YAML refuses.
        import json

        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"--config {source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    raise UsageError(f"--config {source}: not valid YAML {_yaml_problem(yaml_error, text)}") from None


def _mapping(value: Any, *, source: str, where: str) -> Mapping[str, Any]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"--config {source}: {where} must be a mapping, not {type(value).__name__}")
    return value


def read_config(text: str, *, source: str) -> dict[str, Any]:
    """A gcloud Job resource (YAML or JSON), checked for fields we cannot carry out."""
    doc = load_document(text, source=source) or {}
    if not isinstance(doc, dict):
        raise UsageError(f"--config {source}: must be a mapping with a trainingInput section")
    unknown = sorted(set(doc) - {"jobId", "labels", "trainingInput", "kubernetes"})
    if unknown:
        raise UsageError(f"--config {source}: field {unknown[0]!r} is not part of a training job")
    ti = _mapping(doc.get("trainingInput"), source=source, where="trainingInput")
    for key in ti:
        if key in CLOUD_ONLY_INPUT:
            raise UsageError(
                f"--config {source}: trainingInput.{key} ({CLOUD_ONLY_INPUT[key]}) exists only on "
                "Google Cloud; remove it"
            )
        if key not in KNOWN_INPUT:
            raise UsageError(f"--config {source}: trainingInput.{key} is not a TrainingInput field")
    for role in ROLES:
        config = _mapping(ti.get(f"{role}Config"), source=source, where=f"trainingInput.{role}Config")
        for key in config:
            if key == "tpuTfVersion":
                raise UsageError(
                    f"--config {source}: trainingInput.{role}Config.tpuTfVersion needs a Cloud TPU"
                )
            if key not in KNOWN_REPLICA_CONFIG:
                raise UsageError(
                    f"--config {source}: trainingInput.{role}Config.{key} is not a ReplicaConfig field"
                )
    for key in _mapping(ti.get("scheduling"), source=source, where="trainingInput.scheduling"):
        if key not in KNOWN_SCHEDULING:
            raise UsageError(f"--config {source}: trainingInput.scheduling.{key} is not a Scheduling field")
    for key, value in _mapping(doc.get("labels"), source=source, where="labels").items():
        check_label(str(key), str(value))
    return doc


def merge_input(config: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """The file's TrainingInput with every flag over it (replica configs merge field by field)."""
    merged = copy.deepcopy(dict(config))
    for key, value in flags.items():
        if key.endswith("Config") and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def normalize_tier(value: Any) -> str:
    """``BASIC_GPU`` (API enum, config files) and ``basic-gpu`` (flag) are the same tier."""
    tier = str(value).strip().lower().replace("_", "-")
    if tier not in SCALE_TIERS:
        raise UsageError(f"scale tier {value!r}: must be one of {', '.join(SCALE_TIERS)}")
    return tier


def check_input(ti: Mapping[str, Any]) -> list[str]:
    """The service's checks on the merged TrainingInput; returns warnings for what has no meaning here."""
    warnings: list[str] = []
    master = ti.get("masterConfig") or {}
    if master.get("imageUri") and ti.get("runtimeVersion"):
        raise UsageError(
            "only one of --master-image-uri (masterConfig.imageUri), --runtime-version can be set"
        )
    tier = normalize_tier(ti["scaleTier"]) if ti.get("scaleTier") else None
    custom_fields = [
        k for k in ("masterType", "workerType", "parameterServerType", "evaluatorType") if ti.get(k)
    ]
    if tier == "custom" and not ti.get("masterType"):
        raise UsageError("--master-machine-type is required if scale-tier is set to `CUSTOM`")
    if tier not in (None, "custom") and custom_fields:
        raise UsageError(
            f"{custom_fields[0]} is set, which needs --scale-tier=custom (the {tier} tier fixes the machines)"
        )
    for role in ("worker", "parameterServer", "evaluator"):
        count = int(ti.get(f"{role}Count") or 0)
        if count < 0:
            raise UsageError(f"{role}Count must not be negative")
        if count and not ti.get(f"{role}Type") and tier in (None, "custom"):
            raise UsageError(
                f"{role}Count is {count}, which needs {role}Type (--{ROLE_FLAG[role]}-machine-type)"
            )
    if not ti.get("pythonModule") and not master.get("imageUri") and not master.get("containerCommand"):
        raise UsageError("--module-name is required unless --master-image-uri names a container to run")
    for role in ROLES:
        config = ti.get(f"{role}Config") or {}
        if ti.get("args") and config.get("containerArgs"):
            raise UsageError(f"{role}Config.containerArgs and user arguments (after --) are exclusive")
        if config.get("diskConfig"):
            warnings.append(
                f"{role}Config.diskConfig is ignored: disks are the cluster's storage, not per job"
            )
    if ti.get("region"):
        warnings.append(f"--region {ti['region']}: the kubeconfig context chooses the cluster")
    priority = (ti.get("scheduling") or {}).get("priority")
    if priority is not None:
        warnings.append("scheduling.priority (0-1000) has no Kubernetes meaning; use --priority CLASS")
    return warnings


def parse_duration(value: Any, *, what: str) -> int:
    """Google's Duration text (``7200s``, ``1.5s``) as whole seconds."""
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", text)
    if not match:
        raise UsageError(f"{what}: expected a duration such as 3600s, got {value!r}")
    return max(int(float(match.group(1))), 1)


def user_args(ti: Mapping[str, Any]) -> list[str]:
    """The program's arguments: the user's, then ``--job-dir`` as the service passes it."""
    args = [str(a) for a in ti.get("args") or ()]
    if ti.get("jobDir"):
        args.append(f"--job-dir={ti['jobDir']}")
    return args


def dns_name(job_id: str) -> str:
    """The object name of a gcloud JOB id: lower case, dashes for underscores."""
    return job_id.lower().replace("_", "-")


def split_list(values: Sequence[str]) -> tuple[str, ...]:
    """Comma lists given once or repeated: ``--packages a,b --packages c``."""
    return tuple(p.strip() for v in values for p in v.split(",") if p.strip())
