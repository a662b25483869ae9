"""Decide whether the operator is alive: its resync loop beats and its watch stream is fresh.

Owns two checks behind the liveness endpoint. The resync loop must come round; and every
PartyQuiz version a periodic LIST returns must have been delivered by the watch soon after, or
the watch has stalled (kopf would then miss spec changes). Pure and thread-safe; callers pass
the monotonic time in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable


class Liveness:
    """Heartbeat of the resync loop plus watch freshness per instance."""

    def __init__(self, *, resync_seconds: float, watch_stall_seconds: float, now: float) -> None:
        self._resync_seconds = resync_seconds
        self._stall_seconds = watch_stall_seconds
        self._beat = now
        self._watched: dict[tuple[str, str], str] = {}
        self._behind_since: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def beat(self, now: float) -> None:
        """Record that the resync loop came round."""
        with self._lock:
            self._beat = now

    def watched(self, namespace: str, name: str, resource_version: str | None) -> None:
        """Record a version the watch delivered (None when the object was deleted)."""
        key = (namespace, name)
        with self._lock:
            if resource_version is None:
                self._watched.pop(key, None)
                self._behind_since.pop(key, None)
                return
            self._watched[key] = resource_version
            self._behind_since.pop(key, None)

    def listed(self, versions: Iterable[tuple[str, str, str]], now: float) -> None:
        """Compare (namespace, name, resourceVersion) from a LIST with what the watch saw."""
        with self._lock:
            current = set()
            for namespace, name, version in versions:
                key = (namespace, name)
                current.add(key)
                if self._watched.get(key) == version:
                    self._behind_since.pop(key, None)
                else:
                    self._behind_since.setdefault(key, now)
            for key in list(self._behind_since):
                if key not in current:
                    del self._behind_since[key]

    def problems(self, now: float) -> list[str]:
        """Return why the operator is not alive (empty when it is)."""
        found = []
        with self._lock:
            silence = now - self._beat
            if silence > 3 * self._resync_seconds + 30:
                found.append(f"no resync for {silence:.0f}s")
            for (namespace, name), since in sorted(self._behind_since.items()):
                if now - since > self._stall_seconds:
                    found.append(
                        f"watch has not delivered the current version of {namespace}/{name} "
                        f"for {now - since:.0f}s"
                    )
        return found
