"""docs/rbac.md, checked against the real kube-apiserver: each command's rows are granted to a user of
its own (a Role per namespace, a ClusterRole for `cluster`), every row is allowed by a
SubjectAccessReview and a verb outside them is not, and the read-only commands run as that user
(`--as`) succeed with exactly those rows; one with another command's rows is forbidden (exit 6)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import click
import pytest

from kaip.cli.app import run
from kaip.commands import ai_platform, node_health, pvc_preload
from kaip.kube.client import Kube
from kaip.kube.errors import NotFound
from kaip.resources import kinds
from kaip.resources.kinds import Resource

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = {"ai-platform": ai_platform.cli, "node-health": node_health.cli, "pvc-preload": pvc_preload.cli}
RBAC = "rbac.authorization.k8s.io"
ROLES = Resource(RBAC, "v1", "roles", "Role")
ROLE_BINDINGS = Resource(RBAC, "v1", "rolebindings", "RoleBinding")
CLUSTER_ROLES = Resource(RBAC, "v1", "clusterroles", "ClusterRole", namespaced=False)
CLUSTER_ROLE_BINDINGS = Resource(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False)


@dataclass(frozen=True)
class Row:
    command: str
    group: str  # "" for core
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    where: str  # "namespace", "cluster" or a namespace's name


def _names(cell: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([^`]+)`", cell))


def parse(text: str) -> dict[str, list[Row]]:
    """The table's rows by command; a command whose row names nothing needs nothing."""
    table: dict[str, list[Row]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[0].startswith("`"):
            continue
        command, group, resources, verbs, where, _notes = cells
        rows = table.setdefault(command.strip("`"), [])
        if resources:
            group_name = "" if group == "core" else group.strip("`")
            rows.append(
                Row(command.strip("`"), group_name, _names(resources), _names(verbs), where.strip("`"))
            )
    return table


TABLE = parse((ROOT / "docs" / "rbac.md").read_text())


def leaves() -> set[str]:
    found = set()

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found.add(" ".join(path))

    for plugin, root in PLUGINS.items():
        walk(root, (plugin,))
    return found


def test_the_table_has_every_command_and_only_those() -> None:
    assert set(TABLE) == leaves()
    for rows in TABLE.values():
        for row in rows:
            assert row.resources and row.verbs and row.where, row


def user_of(command: str) -> str:
    return "kaip-docs-" + command.replace(" ", "-")


@contextlib.contextmanager
def granted(admin: Kube, user: str, rows: list[Row], namespace: str) -> Iterator[None]:
    """The rows as RBAC objects bound to ``user``; removed afterwards (the namespace's go with it)."""
    by_scope: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        scope = namespace if row.where == "namespace" else row.where
        rule = {"apiGroups": [row.group], "resources": list(row.resources), "verbs": list(row.verbs)}
        by_scope.setdefault(scope, []).append(rule)
    subject = [{"kind": "User", "apiGroup": RBAC, "name": user}]
    made: list[tuple[Resource, str, str | None]] = []
    try:
        for scope, rules in by_scope.items():
            if scope == "cluster":
                admin.create(CLUSTER_ROLES, {"metadata": {"name": user}, "rules": rules})
                made.append((CLUSTER_ROLES, user, None))
                ref = {"kind": "ClusterRole", "apiGroup": RBAC, "name": user}
                admin.create(
                    CLUSTER_ROLE_BINDINGS, {"metadata": {"name": user}, "roleRef": ref, "subjects": subject}
                )
                made.append((CLUSTER_ROLE_BINDINGS, user, None))
                continue
            admin.create(ROLES, {"metadata": {"name": user}, "rules": rules}, namespace=scope)
            made.append((ROLES, user, scope))
            ref = {"kind": "Role", "apiGroup": RBAC, "name": user}
            admin.create(
                ROLE_BINDINGS,
                {"metadata": {"name": user}, "roleRef": ref, "subjects": subject},
                namespace=scope,
            )
            made.append((ROLE_BINDINGS, user, scope))
        if rows:
            _until_authorized(admin, user, rows, namespace)
        yield
    finally:
        for resource, name, scope in reversed(made):
            admin.delete(resource, name, namespace=scope, ignore_missing=True)


def _until_authorized(admin: Kube, user: str, rows: list[Row], namespace: str) -> None:
    """The authorizer reads RBAC objects from its informers: wait until it has seen the last one made."""
    last = rows[-1]
    where = {"namespace": namespace, "cluster": ""}.get(last.where, last.where)
    deadline = time.monotonic() + 10
    while not allowed(admin, user, last.verbs[0], last.resources[0], group=last.group, namespace=where):
        assert time.monotonic() < deadline, f"the authorizer never saw the RBAC of {user}"
        time.sleep(0.05)


def allowed(admin: Kube, user: str, verb: str, resource: str, *, group: str, namespace: str) -> bool:
    resource, _, subresource = resource.partition("/")
    attributes = {
        "verb": verb,
        "group": group,
        "resource": resource,
        "subresource": subresource,
        "namespace": namespace,
    }
    review = admin.create(
        kinds.SUBJECT_ACCESS_REVIEWS,
        {
            "spec": {
                "user": user,
                "groups": ["system:authenticated"],
                "resourceAttributes": {k: v for k, v in attributes.items() if v},
            }
        },
    )
    return bool(review["status"].get("allowed"))


def _exists(admin: Kube, namespace: str) -> bool:
    try:
        admin.get(kinds.NAMESPACES, namespace)
    except NotFound:
        return False
    return True


@contextlib.contextmanager
def stand_ins(admin: Kube, rows: list[Row], namespace: str) -> Iterator[list[Row]]:
    """``rows`` with each named namespace that this test bed lacks (kaip-system, where the in-cluster
    parts are not installed) replaced by a fresh namespace of another name, removed afterwards: other
    tests rely on the named one's absence, and a Role checks the same there as anywhere."""
    named = sorted({r.where for r in rows if r.where not in ("namespace", "cluster")})
    mapping = {name: f"{namespace}-as-{i}" for i, name in enumerate(named) if not _exists(admin, name)}
    for stand_in in mapping.values():
        admin.create(kinds.NAMESPACES, {"metadata": {"name": stand_in}})
    try:
        yield [replace(r, where=mapping.get(r.where, r.where)) for r in rows]
    finally:
        for stand_in in mapping.values():
            admin.delete(kinds.NAMESPACES, stand_in, ignore_missing=True)


@pytest.mark.parametrize("command", sorted(c for c, rows in TABLE.items() if rows))
def test_each_row_is_allowed_by_a_subject_access_review(
    admin_kube: Kube, namespace: str, command: str
) -> None:
    user = user_of(command)
    with stand_ins(admin_kube, TABLE[command], namespace) as rows, granted(admin_kube, user, rows, namespace):
        for row in rows:
            where = {"namespace": namespace, "cluster": ""}.get(row.where, row.where)
            for resource in row.resources:
                for verb in row.verbs:
                    assert allowed(admin_kube, user, verb, resource, group=row.group, namespace=where), (
                        row,
                        verb,
                        resource,
                    )
                # Exactly the rows: `delete` is in no row, so it stays forbidden.
                assert not allowed(admin_kube, user, "delete", resource, group=row.group, namespace=where)


# Commands that run on the test bed as a user holding only their rows, each with its expected exit.
AS_USER = [
    ("ai-platform version", ["version"]),
    ("ai-platform jobs list", ["jobs", "list"]),
    ("ai-platform jobs submit training", ["jobs", "submit", "training", "rbac", "--master-image-uri=i"]),
    ("ai-platform config show", ["config", "show"]),
    ("node-health list", ["list", "--gpu-usage"]),
    ("node-health summary", ["summary", "--gpu-usage"]),
    ("node-health version", ["version"]),
    ("pvc-preload list", ["list"]),
    ("pvc-preload version", ["version"]),
]


def _run(
    capsys: pytest.CaptureFixture[str],
    command: str,
    args: list[str],
    kubeconfig: Path,
    namespace: str,
    user: str,
) -> tuple[int, str]:
    plugin = command.split(maxsplit=1)[0]
    argv = [*args, "--kubeconfig", str(kubeconfig), "--as", user]
    if plugin != "node-health":
        argv += ["-n", namespace]
    if args[:3] == ["jobs", "submit", "training"]:
        argv.append("--dry-run=server")
    code = run(PLUGINS[plugin], argv, prog_name=f"kubectl {plugin}")
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("command", "args"), AS_USER, ids=[c for c, _ in AS_USER])
def test_the_rows_suffice_to_run_the_command(
    admin_kube: Kube,
    kubeflow: list[str],
    kubeconfig: Path,
    namespace: str,
    capsys: pytest.CaptureFixture[str],
    command: str,
    args: list[str],
) -> None:
    rows = [r for r in TABLE[command] if r.where in ("namespace", "cluster") or _exists(admin_kube, r.where)]
    user = user_of(command) + "-run"
    with granted(admin_kube, user, rows, namespace):
        code, err = _run(capsys, command, args, kubeconfig, namespace, user)
    assert code == 0, err


def test_pvc_preload_create_and_status_as_that_user(
    admin_kube: Kube, kubeconfig: Path, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    user = "kaip-docs-pvc-preload-create-status"
    with granted(admin_kube, user, TABLE["pvc-preload create"] + TABLE["pvc-preload status"], namespace):
        created = _run(
            capsys,
            "pvc-preload create",
            ["create", "rbac-data", "--source", "s3://datasets/rbac", "--size", "1Gi"],
            kubeconfig,
            namespace,
            user,
        )
        assert created[0] == 0, created[1]
        status = _run(capsys, "pvc-preload status", ["status", "rbac-data"], kubeconfig, namespace, user)
        assert status[0] == 0, status[1]


def test_another_commands_rows_do_not_suffice(
    admin_kube: Kube, kubeconfig: Path, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    user = "kaip-docs-wrong-rows"
    with granted(admin_kube, user, TABLE["pvc-preload list"], namespace):
        code, err = _run(capsys, "node-health list", ["list"], kubeconfig, namespace, user)
    assert code == 6, err
    assert f'User "{user}" cannot list resource "nodes"' in err
