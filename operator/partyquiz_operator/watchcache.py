"""The latest version of every owned child the operator watches, as its watches delivered it.

Owns an in-memory map (kind, namespace, name) -> body, fed by the child watch events and by the
objects the operator's own writes return. Passes triggered by an event read children here
instead of asking the API server again; the periodic resync reads the API server, so a stale
entry (a deletion missed while a watch reconnected) is repaired within one resync. Thread-safe;
no I/O, no kopf.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

Key = tuple[str, str, str]  # kind, namespace, name


def _version(body: Mapping[str, Any]) -> int | None:
    try:
        return int(body.get("metadata", {}).get("resourceVersion", ""))
    except ValueError:
        return None


def _without_status(body: Mapping[str, Any]) -> tuple[Any, ...]:
    meta = body.get("metadata", {})
    return (
        body.get("spec"),
        meta.get("labels"),
        meta.get("annotations"),
        meta.get("ownerReferences"),
        meta.get("deletionTimestamp"),
    )


def only_status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Return whether ``new`` differs from ``old`` in its status (or bookkeeping) only."""
    return old is not None and _without_status(old) == _without_status(new)


class WatchCache:
    """Latest bodies of watched children; ``kinds`` are the kinds the watches cover."""

    def __init__(self, kinds: frozenset[str]) -> None:
        self.kinds = kinds
        self._bodies: dict[Key, Mapping[str, Any]] = {}
        self._guard = threading.Lock()

    def put(self, kind: str, body: Mapping[str, Any]) -> None:
        """Keep ``body`` unless a newer version of the object is already kept."""
        meta = body.get("metadata", {})
        key = (kind, str(meta.get("namespace", "")), str(meta.get("name", "")))
        new = _version(body)
        with self._guard:
            kept = self._bodies.get(key)
            old = None if kept is None else _version(kept)
            # resourceVersions are etcd revisions here; when one is not a number, trust the
            # latest arrival.
            if old is None or new is None or new >= old:
                self._bodies[key] = body

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop the object (it was deleted)."""
        with self._guard:
            self._bodies.pop((kind, namespace, name), None)

    def get(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        """Return the kept body, or None when none is kept (absent, or not seen yet)."""
        with self._guard:
            return self._bodies.get((kind, namespace, name))

    def __len__(self) -> int:
        with self._guard:
            return len(self._bodies)
