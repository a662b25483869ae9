"""kopf wiring: settings that keep writes and rights minimal, and owner lookup of children."""

from __future__ import annotations

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
