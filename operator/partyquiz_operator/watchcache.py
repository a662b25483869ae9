"""The latest version of every owned child the operator watches, as its watches delivered it.

Owns an in-memory map (kind, namespace, name) -> body, fed by the child watch events and by the
objects the operator's own writes return, and corrected by a periodic relist (``relisted``),
which drops what a watch missed (a deletion while it reconnected). It also knows the names that
objects of other owners hold (``foreign``), so once a kind was listed in full (``seeded``) a
name it holds nothing under is known to be free. Passes read watched children here instead of
asking the API server again. Thread-safe; no I/O, no kopf.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
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
        self._foreign: set[Key] = set()  # names held by objects that are not the operator's
        self._seeded: set[str] = set()  # kinds listed in full at least once
        self._guard = threading.Lock()

    def foreign(self, kind: str, namespace: str, name: str, *, present: bool) -> None:
        """Note that an object the operator does not manage holds (or no longer holds) a name."""
        key = (kind, namespace, name)
        with self._guard:
            if present:
                self._foreign.add(key)
            else:
                self._foreign.discard(key)

    def seeded(
        self, kind: str, ours: Sequence[Mapping[str, Any]], others: Sequence[Mapping[str, Any]]
    ) -> None:
        """Take a full LIST of ``kind`` (every object, the operator's and the others')."""
        for body in ours:
            self.put(kind, body)
        for body in others:
            meta = body.get("metadata", {})
            self.foreign(kind, str(meta.get("namespace", "")), meta.get("name", ""), present=True)
        with self._guard:
            self._seeded.add(kind)

    def known_absent(self, kind: str, namespace: str, name: str) -> bool:
        """Return whether no object holds the name, as far as a seeded kind's watch tells.

        False when the kind was never listed in full: then only the API server knows.
        """
        key = (kind, namespace, name)
        with self._guard:
            return kind in self._seeded and key not in self._bodies and key not in self._foreign

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

    def relisted(
        self,
        kind: str,
        namespaces: list[str] | None,
        items: Sequence[Mapping[str, Any]],
        list_version: str,
    ) -> list[Mapping[str, Any]]:
        """Take a fresh LIST of ``kind`` as the truth; return what it changed in the cache.

        ``namespaces`` are the namespaces the list covered (None: all). A kept body that the
        list does not hold is dropped unless it is newer than the list (it arrived after). The
        bodies returned are the listed ones that were new or newer than the kept ones, and the
        dropped ones: their owners need a pass, as if their watch events had arrived.
        """
        listed_version = _version({"metadata": {"resourceVersion": list_version}})
        listed: set[Key] = set()
        changed: list[Mapping[str, Any]] = []
        for item in items:
            meta = item.get("metadata", {})
            key = (kind, str(meta.get("namespace", "")), str(meta.get("name", "")))
            listed.add(key)
            with self._guard:
                kept = self._bodies.get(key)
            old = None if kept is None else _version(kept)
            new = _version(item)
            if kept is None or (old is not None and new is not None and new > old):
                changed.append(item)
            self.put(kind, item)
        with self._guard:
            for key, body in list(self._bodies.items()):
                if key[0] != kind or key in listed:
                    continue
                if namespaces is not None and key[1] not in namespaces:
                    continue
                kept_version = _version(body)
                if (
                    listed_version is not None
                    and kept_version is not None
                    and kept_version > listed_version
                ):
                    continue
                del self._bodies[key]
                changed.append(body)
        return changed

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
