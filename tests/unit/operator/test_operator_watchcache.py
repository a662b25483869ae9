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
    assert new_watch_cache().kinds == {"PartyQuiz", *(kind for *_, kind in WATCHED_CHILDREN)}
    assert "Secret" not in new_watch_cache().kinds


def test_a_relist_drops_what_a_watch_missed_but_keeps_what_arrived_after_it() -> None:
    cache = WatchCache(frozenset({"Service"}))
    cache.put("Service", _body("quiz-web", "5"))  # deleted while the watch reconnected
    cache.put("Service", _body("quiz-ws", "6"))
    cache.put("Service", _body("quiz-redis", "30"))  # created after the list was taken
    other = _body("quiz-web", "7")
    other["metadata"]["namespace"] = "elsewhere"  # a namespace the list did not cover
    cache.put("Service", other)

    changed = cache.relisted("Service", ["ns"], [_body("quiz-ws", "9")], "20")

    # quiz-ws changed unseen by the watch and quiz-web went: both owners need a pass.
    assert [d["metadata"]["name"] for d in changed] == ["quiz-ws", "quiz-web"]
    assert cache.get("Service", "ns", "quiz-web") is None
    kept = cache.get("Service", "ns", "quiz-ws")
    assert kept is not None
    assert kept["metadata"]["resourceVersion"] == "9"  # the list's newer version is taken
    assert cache.get("Service", "ns", "quiz-redis") is not None
    assert cache.get("Service", "elsewhere", "quiz-web") is not None
    # The same list again changes nothing.
    assert cache.relisted("Service", ["ns"], [_body("quiz-ws", "9")], "20") == []


def test_a_cluster_wide_relist_covers_every_namespace() -> None:
    cache = WatchCache(frozenset({"Job"}))
    cache.put("Job", _body("quiz-migrate-1", "3"))
    assert len(cache.relisted("Job", None, [], "10")) == 1
    assert len(cache) == 0


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


def test_a_name_is_known_free_only_once_the_kind_was_listed_and_nothing_holds_it() -> None:
    cache = WatchCache(frozenset({"Service"}))
    assert not cache.known_absent("Service", "ns", "quiz-web")  # never listed: ask the API

    theirs = _body("quiz-ws", "3")
    cache.seeded("Service", [_body("quiz-db", "4")], [theirs])
    assert cache.known_absent("Service", "ns", "quiz-web")
    assert not cache.known_absent("Service", "ns", "quiz-db")  # ours, kept
    assert not cache.known_absent("Service", "ns", "quiz-ws")  # someone else's

    cache.foreign("Service", "ns", "quiz-ws", present=False)  # theirs was deleted
    assert cache.known_absent("Service", "ns", "quiz-ws")
    cache.foreign("Service", "ns", "quiz-web", present=True)  # someone created one
    assert not cache.known_absent("Service", "ns", "quiz-web")
