"""Add-only JSONPatch (RFC 6902): building operations and applying them to a plain document.

Mutators only ever add: a missing list is created whole, an existing list is appended to with
``/-``, so a patch never overwrites what a user or another webhook put there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Op = dict[str, Any]


def escape(token: str) -> str:
    """One JSON-Pointer reference token (``kaip.dev/x`` -> ``kaip.dev~1x``)."""
    return token.replace("~", "~0").replace("/", "~1")


def add(path: str, value: Any) -> Op:
    return {"op": "add", "path": path, "value": value}


def append(doc: dict[str, Any], path: str, key: str, item: Any) -> Op:
    """Add ``item`` to the list ``doc[key]`` (at JSON pointer ``path``), creating the list if needed.

    ``doc`` is the caller's working copy: it is updated as the patch will update the object, so the
    next call for the same list appends instead of creating it again (the original list is not touched).
    """
    existing = doc.get(key)
    if isinstance(existing, list):
        doc[key] = [*existing, item]
        return add(f"{path}/{escape(key)}/-", item)
    doc[key] = [item]
    return add(f"{path}/{escape(key)}", [item])


def set_annotation(pod: Mapping[str, Any], key: str, value: str) -> Op:
    meta = pod.get("metadata")
    if not isinstance(meta, dict):
        return add("/metadata", {"annotations": {key: value}})
    if isinstance(meta.get("annotations"), dict):
        return add(f"/metadata/annotations/{escape(key)}", value)
    return add("/metadata/annotations", {key: value})


def _tokens(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError("a JSON pointer starts with /")
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def apply(doc: Mapping[str, Any], ops: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Apply ``add`` operations, as the apiserver does with our patch, without touching ``doc``.

    Copy on write: only the dicts and lists on the operations' paths are copied (shallowly), so a
    big Pod costs what the patch touches, not a deep copy. Values are shared, not copied.
    """
    root: dict[str, Any] = dict(doc)
    copied = {id(root)}
    for op in ops:
        if op.get("op") != "add":
            raise ValueError(f"only add operations are supported, not {op.get('op')!r}")
        *parents, last = _tokens(str(op["path"]))
        target: Any = root
        for token in parents:
            key: Any = int(token) if isinstance(target, list) else token
            child = target[key]
            if id(child) not in copied:
                child = list(child) if isinstance(child, list) else dict(child)
                copied.add(id(child))
                target[key] = child
            target = child
        if isinstance(target, list):
            if last == "-":
                target.append(op["value"])
            else:
                target.insert(int(last), op["value"])
        else:
            target[last] = op["value"]
    return root
