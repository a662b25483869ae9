"""kopf wiring: settings that keep writes and rights minimal, and owner lookup of children."""

from __future__ import annotations

import logging

import kopf

from partyquiz_operator import handlers
from partyquiz_operator.settings import OperatorSettings


def test_kopf_settings_use_our_finalizer_and_annotations_and_post_no_events() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure(settings, OperatorSettings(watch_server_timeout_seconds=120))
    assert settings.persistence.finalizer == "partyquiz.dev/cleanup"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.posting.enabled is False
    assert settings.watching.server_timeout == 120
    assert settings.scanning.disabled is True


def test_children_are_routed_to_their_partyquiz_owner_only() -> None:
    owned = {
        "metadata": {
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x"},
                {"apiVersion": "partyquiz.dev/v1alpha1", "kind": "PartyQuiz", "name": "quiz"},
            ]
        }
    }
    assert handlers.owner_of(owned) == "quiz"
    assert handlers.owner_of({"metadata": {}}) is None
    foreign = {"metadata": {"ownerReferences": [{"apiVersion": "x.io/v1", "kind": "PartyQuiz"}]}}
    assert handlers.owner_of(foreign) is None


def test_bookkeeping_event_handlers_do_not_log_each_success_but_failures_still_show() -> None:
    handlers.configure(kopf.OperatorSettings(), OperatorSettings())
    log = logging.getLogger("kopf.objects")

    def shown(level: int, message: str) -> bool:
        record = log.makeRecord("kopf.objects", level, __file__, 1, message, (), None)
        return bool(log.filter(record))

    assert not shown(logging.INFO, "Handler 'child-deployments' succeeded.")
    assert not shown(logging.INFO, "Handler 'instance-event' succeeded.")
    assert shown(logging.INFO, "Handler 'reconcile' succeeded.")
    assert shown(logging.ERROR, "Handler 'child-deployments' failed with an exception.")
