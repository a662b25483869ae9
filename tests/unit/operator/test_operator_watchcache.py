"""The watch cache keeps the newest version of each child and forgets deleted ones."""

from __future__ import annotations

from typing import Any

from partyquiz_operator.handlers import WATCHED_CHILDREN, new_watch_cache
from partyquiz_operator.watchcache import WatchCache, only_status_changed


def _body(name: str, version: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name, "resourceVersion": version},
        "spec": {"replicas": replicas},
    }


def test_an_older_version_arriving_late_does_not_replace_a_newer_one() -> None:
    cache = WatchCache(frozenset({"Deployment"}))
    cache.put("Deployment", _body("quiz-web", "12", replicas=3))  # what our apply returned
    cache.put("Deployment", _body("quiz-web", "11", replicas=2))  # the watch catching up
    kept = cache.get("Deployment", "ns", "quiz-web")
    assert kept is not None
    assert kept["spec"]["replicas"] == 3
    cache.put("Deployment", _body("quiz-web", "13", replicas=4))
    kept = cache.get("Deployment", "ns", "quiz-web")
    assert kept is not None
    assert kept["spec"]["replicas"] == 4


def test_a_deleted_child_is_forgotten_and_others_are_kept_apart() -> None:
    cache = WatchCache(frozenset({"Deployment", "Service"}))
    cache.put("Deployment", _body("quiz-web", "5"))
    cache.put("Service", _body("quiz-web", "6"))
    cache.forget("Deployment", "ns", "quiz-web")
    assert cache.get("Deployment", "ns", "quiz-web") is None
    assert cache.get("Service", "ns", "quiz-web") is not None
    assert len(cache) == 1


def test_the_operator_caches_exactly_the_kinds_it_watches() -> None:
    assert new_watch_cache().kinds == {kind for *_, kind in WATCHED_CHILDREN}
    assert "Secret" not in new_watch_cache().kinds


def test_a_status_only_change_is_told_apart_from_drift() -> None:
    before = _body("quiz-web", "5") | {"status": {"currentHealthy": 1}}
    counted = _body("quiz-web", "6") | {"status": {"currentHealthy": 2}}
    assert only_status_changed(before, counted)
    scaled = _body("quiz-web", "7", replicas=5)
    assert not only_status_changed(before, scaled)
    relabelled = _body("quiz-web", "8")
    relabelled["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "someone-else"}
    assert not only_status_changed(before, relabelled)
    assert not only_status_changed(None, counted)  # first sight: always a pass
