"""The kopf shell: settings that keep writes and rights minimal, watches only of our children."""

from __future__ import annotations

import kopf

from partyquiz_operator import handlers
from partyquiz_operator.plan.rollout import stuck_pod
from partyquiz_operator.settings import OperatorSettings


def test_kopf_settings_use_our_finalizer_and_annotations_and_post_no_events_of_their_own() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure(settings, OperatorSettings(watch_server_timeout_seconds=120))
    assert settings.persistence.finalizer == "partyquiz.dev/cleanup"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.AnnotationsDiffBaseStorage)
    assert settings.posting.enabled is False
    assert settings.watching.server_timeout == 120
    assert settings.scanning.disabled is True


def test_the_retry_annotation_is_a_change_kopf_reacts_to() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure(settings, OperatorSettings())
    storage = settings.persistence.diffbase_storage
    plain = kopf.Body({"metadata": {"name": "quiz"}, "spec": {"version": "1.4.0"}})
    patch = kopf.Patch()
    storage.store(body=plain, patch=patch, essence=storage.build(body=plain))
    annotations = {**patch["metadata"]["annotations"], "partyquiz.dev/retry": "1"}
    handled = kopf.Body({"metadata": {"name": "quiz", "annotations": annotations}, "spec": {}})
    essence = storage.build(body=handled)
    assert essence["metadata"]["annotations"] == {"partyquiz.dev/retry": "1"}


def test_pods_and_claims_are_watched_only_when_ours_every_other_kind_whole() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure(settings, OperatorSettings())
    for group, version, plural, kind, every in handlers.WATCHED_CHILDREN:
        resource = kopf.Resource(group, version, plural, kind=kind, namespaced=True)
        selectors = list(settings.watching.label_selectors.collect(resource))
        ours = ["app.kubernetes.io/managed-by=partyquiz-operator"]
        assert selectors == ([] if every else ours), plural
    assert {kind for *_, kind, every in handlers.WATCHED_CHILDREN if not every} == {
        "Pod",
        "PersistentVolumeClaim",
    }
    partyquizzes = kopf.Resource("partyquiz.dev", "v1alpha1", "partyquizzes", namespaced=True)
    assert not list(settings.watching.label_selectors.collect(partyquizzes))


def test_a_pod_is_kept_with_only_what_passes_read_and_still_tells_a_stuck_container() -> None:
    pod = {
        "metadata": {
            "name": "quiz-web-1",
            "labels": {"app.kubernetes.io/component": "web"},
            "annotations": {"partyquiz.dev/revision": "r1"},
            "managedFields": [{"manager": "kubelet"}] * 20,
        },
        "spec": {"containers": [{"name": "web", "image": "x"}]},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"name": "web", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ],
        },
    }
    kept = handlers._kept("Pod", pod)
    assert "spec" not in kept
    assert "managedFields" not in kept["metadata"]
    assert stuck_pod([kept], "r1") is not None
    deployment = {"metadata": {"name": "quiz-web"}, "spec": {"replicas": 2}}
    assert handlers._kept("Deployment", deployment) == {**deployment, "kind": "Deployment"}


def test_the_diff_base_is_kopfs_own_essence_of_a_full_partyquiz() -> None:
    settings = kopf.OperatorSettings()
    handlers.configure(settings, OperatorSettings())
    ours = settings.persistence.diffbase_storage
    kopfs = kopf.AnnotationsDiffBaseStorage(
        prefix=handlers.KOPF_PREFIX, key="last-handled-configuration"
    )
    body = kopf.Body(
        {
            "apiVersion": "partyquiz.dev/v1alpha1",
            "kind": "PartyQuiz",
            "metadata": {
                "name": "quiz",
                "namespace": "games",
                "uid": "u1",
                "resourceVersion": "77",
                "generation": 3,
                "labels": {"team": "a"},
                "annotations": {
                    "partyquiz.dev/retry": "2",
                    "kubectl.kubernetes.io/last-applied-configuration": "{}",
                    "kopf.partyquiz.dev/last-handled-configuration": "{}",
                },
                "managedFields": [{"manager": "partyquiz-operator", "fieldsV1": {"f:status": {}}}],
            },
            "spec": {"version": "1.4.0", "web": {"replicas": 3}},
            "status": {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    assert ours.build(body=body) == kopfs.build(body=body)
    assert ours.build(body=body) == {
        "spec": {"version": "1.4.0", "web": {"replicas": 3}},
        "metadata": {"labels": {"team": "a"}, "annotations": {"partyquiz.dev/retry": "2"}},
    }
