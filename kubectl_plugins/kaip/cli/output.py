"""Output formats as kubectl prints them: table, wide, json, yaml, name (and csv where asked)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

#: A column cut to fit the terminal keeps at least this many characters.
MIN_FIT = 8


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    #: The columns whose cells are cut short (…), in this order, so that the table fits the terminal.
    fit: Sequence[str] = ()


def terminal_width() -> int | None:
    """The width tables fit: ``COLUMNS`` when set, else the terminal's when stdout is one; None (no
    limit) in a pipe, so a script reading the table gets every character."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else None
    except (AttributeError, OSError, ValueError):  # no real stdout (a test runner's, a closed one)
        return None


def format_table(table: Table, *, width: int | None = None) -> str:
    """kubectl's borderless table: headers in capitals, columns left-aligned, three spaces apart.

    With ``width``, the cells of the ``table.fit`` columns are cut short (…) until the lines fit, as
    far as each column can give (:data:`MIN_FIT`). Written out rather than through tabulate: importing tabulate
    alone costs about 140 ms, more than half of a plugin's start-up budget, and a thousand-row list
    pays its per-cell cost again.
    """
    cells = [
        [h.upper() for h in table.headers],
        *(["" if c is None else str(c) for c in row] for row in table.rows),
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.headers))]
    for name in table.fit if width else ():
        if name in table.headers:
            _fit(cells, widths, list(table.headers).index(name), width or 0)
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _fit(cells: list[list[str]], widths: list[int], column: int, width: int) -> None:
    over = sum(widths) + 3 * (len(widths) - 1) - width
    floor = max(MIN_FIT, len(cells[0][column]))
    if over <= 0 or widths[column] <= floor:
        return
    widths[column] = max(floor, widths[column] - over)
    for row in cells[1:]:
        if len(row[column]) > widths[column]:
            row[column] = row[column][: widths[column] - 1] + "…"


def format_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([h.upper() for h in table.headers])
    writer.writerows([["" if c is None else str(c) for c in row] for row in table.rows])
    return buf.getvalue().rstrip("\n")


def as_list(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(items)}


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, sort_keys=False, default=str)


def dump_yaml(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip("\n")


def dump_yaml_documents(objs: Sequence[Any]) -> str:
    return "\n---\n".join(dump_yaml(o) for o in objs)


def qualified_name(obj: dict[str, Any]) -> str:
    """kubectl's ``-o name``: ``kind.group/name`` in lower case (``pod/x``, ``tfjob.kubeflow.org/y``)."""
    kind = str(obj.get("kind", "")).lower()
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return (
        f"{kind}.{group}/{obj.get('metadata', {}).get('name', '')}"
        if group
        else f"{kind}/{obj.get('metadata', {}).get('name', '')}"
    )


def render(
    fmt: str,
    objects: Sequence[dict[str, Any]],
    *,
    table: Callable[[bool], Table] | None = None,
    single: bool = False,
    name: Callable[[dict[str, Any]], str] = qualified_name,
) -> str:
    """Render API objects (or view documents) in one of the formats.

    ``table(wide)`` builds the table lazily, so json/yaml never pay for it; ``single`` prints one
    object instead of a List, as ``kubectl get KIND NAME -o json`` does.
    """
    if fmt == "json":
        return dump_json(objects[0] if single and objects else as_list(objects))
    if fmt == "yaml":
        return dump_yaml(objects[0] if single and objects else as_list(objects))
    if fmt == "name":
        return "\n".join(name(o) for o in objects)
    if table is None:
        raise click.UsageError(f"-o {fmt} is not supported here")
    if fmt == "csv":
        return format_csv(table(True))
    return format_table(table(fmt == "wide"), width=terminal_width())


def echo(text: str) -> None:
    if text:
        click.echo(text)


def note(text: str) -> None:
    """Information for a person, on stderr so that stdout stays parseable."""
    click.echo(text, err=True)
