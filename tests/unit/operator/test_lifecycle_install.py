"""The lifecycle of a new PartyQuiz and of its children afterwards: install, drift, removal.

Each test walks ``plan.lifecycle.decide`` through a namespace (tests.unit.operator.world) the way
the operator's passes do, playing the controllers by hand, and checks what a platform team would
see: the phase and conditions, which objects exist, what the pods run.
"""

from __future__ import annotations

import copy

from tests.unit.operator.world import World, installed, world

from partyquiz_operator.plan import lifecycle
from partyquiz_operator.plan.lifecycle import Plan


def templates(w: World) -> tuple[str, str]:
    return w.template_revision("quiz-web"), w.template_revision("quiz-ws")


def reasons(plan: Plan) -> list[str]:
    return [event.reason for event in plan.events]


def test_first_install_fences_and_starts_the_data_stores_before_anything_else() -> None:
    w = world()
    plan = w.step()
    kinds = [{m["kind"] for m in wave} for wave in plan.waves]
    assert kinds[0] == {"ServiceAccount", "Secret", "NetworkPolicy"}
    assert kinds[1] == {"StatefulSet"}
    assert "Deployment" not in w.names("Deployment") | {k for wave in kinds for k in wave}
    assert w.st.phase == "Provisioning"
    assert w.condition("DatabaseReady").status == "False"


def urgent_kinds(plan: Plan) -> list[set[str]]:
    """Return the kinds of the waves a pass sends before other passes' writes that start no pod."""
    return [{m["kind"] for m in wave} for wave in plan.waves[: plan.later]]


def test_only_the_waves_up_to_the_last_that_starts_pods_go_before_other_instances_writes() -> None:
    w = world()
    first = w.step()
    assert urgent_kinds(first) == [{"ServiceAccount", "Secret", "NetworkPolicy"}, {"StatefulSet"}]
    assert {m["kind"] for m in first.waves[2]} >= {"Service", "PodDisruptionBudget"}
    w.settle("StatefulSet")
    assert urgent_kinds(w.step()) == [{"Job"}]
    w.settle("Job")
    assert urgent_kinds(w.step()) == [{"Deployment"}]
    w.settle("Deployment")
    w.step()
    del w.objects[("Service", "quiz-web")]
    repair = w.step()
    assert w.applied(repair) == [("Service", "quiz-web")]
    assert repair.later == 0, "a pass that starts no pod waits behind those that do"


def test_first_install_migrates_once_postgresql_is_ready_then_rolls_out_and_is_ready() -> None:
    w = world()
    w.step()
    w.step()
    assert not w.names("Job"), "no migration before PostgreSQL is ready"
    w.settle("StatefulSet")
    w.step()
    (job,) = w.names("Job")
    assert job.startswith("quiz-migrate-")
    assert w.st.phase == "Migrating"
    assert not w.names("Deployment"), "workloads wait for the migration"
    w.settle("Job")
    w.step()
    assert w.names("Deployment") == {"quiz-web", "quiz-ws"}
    assert w.st.phase == "RollingOut"
    w.settle("Deployment")
    plan = w.step()
    assert w.st.phase == "Ready"
    assert w.condition("Ready").status == "True"
    revisions = w.st.revisions
    assert revisions.current == revisions.target == revisions.migrated
    assert w.st.version == "1.4.0"
    assert "PhaseReady" in reasons(plan)
    assert ("rollouts", "web", "succeeded") in plan.tallies


def test_a_ready_instance_writes_nothing_on_later_passes() -> None:
    w, _ = installed()
    for _ in range(3):
        plan = w.step()
        assert not plan.waves
        assert not plan.deletes
        assert not plan.patches
        assert not plan.status_changed


def test_a_first_install_is_ready_without_baking_there_is_nothing_to_roll_back_to() -> None:
    w, _ = installed(rollout={"bakeSeconds": 600, "progressDeadlineSeconds": 60})
    assert w.st.known_good is not None


def test_generated_credentials_are_made_once_and_never_rewritten() -> None:
    w, _ = installed()
    data = dict(w.objects[("Secret", "quiz-credentials")]["data"])
    w.edit(version="1.5.0")
    for _ in range(3):
        w.step()
        w.settle()
    assert w.objects[("Secret", "quiz-credentials")]["data"] == data


def test_a_deleted_child_comes_back_and_a_hand_edit_is_taken_back() -> None:
    w, _ = installed()
    del w.objects[("Service", "quiz-web")]
    w.objects[("Deployment", "quiz-ws")]["spec"]["replicas"] = 5
    plan = w.step()
    assert set(w.applied(plan)) == {("Service", "quiz-web"), ("Deployment", "quiz-ws")}
    assert w.objects[("Deployment", "quiz-ws")]["spec"]["replicas"] == 2


def test_a_name_held_by_someone_elses_object_is_never_taken_over() -> None:
    w = world()
    w.objects[("Service", "quiz-web")] = {
        "kind": "Service",
        "metadata": {"name": "quiz-web", "labels": {}},
        "spec": {"ports": [{"port": 80}]},
    }
    plan = w.step()
    assert ("Service", "quiz-web") not in w.applied(plan)
    assert w.condition("Degraded").reason == "NameConflict"
    assert plan.retry_after is not None
    assert w.objects[("Service", "quiz-web")]["spec"] == {"ports": [{"port": 80}]}


def test_a_new_instance_creates_its_credentials_without_reading_them_first() -> None:
    w = world()
    decided = lifecycle.decide(w.body, w.seen(), now=w.now, new_token=w.tokens)
    assert isinstance(decided, Plan), "the first pass applies at once, no read round before"
    credentials = ("Secret", "quiz-credentials")
    assert decided.creates == {credentials}
    assert credentials in {(m["kind"], m["metadata"]["name"]) for m in decided.waves[0]}


def test_an_instance_with_kept_volumes_reads_its_credentials_before_anything() -> None:
    w, _ = installed()
    delete_partyquiz(w)
    decided = lifecycle.decide(w.body, w.seen(), now=w.now, new_token=w.tokens)
    assert isinstance(decided, lifecycle.Reads)
    assert ("Secret", "quiz-credentials") in decided.names


def test_a_secret_of_the_credentials_name_made_by_someone_else_is_never_taken_over() -> None:
    w = world()
    foreign = {
        "kind": "Secret",
        "metadata": {"name": "quiz-credentials", "labels": {}},
        "data": {"password": "bWluZQ=="},
    }
    w.objects[("Secret", "quiz-credentials")] = copy.deepcopy(foreign)
    plan = w.step()
    assert w.condition("Degraded").reason == "NameConflict"
    assert "Secret quiz-credentials" in w.condition("Degraded").message
    assert plan.retry_after is not None
    assert w.objects[("Secret", "quiz-credentials")] == foreign
    assert not w.names("StatefulSet")


def test_kept_credentials_without_volumes_are_taken_over_unchanged() -> None:
    w, _ = installed()
    secret = copy.deepcopy(w.objects[("Secret", "quiz-credentials")])
    delete_partyquiz(w)
    for claim in w.names("PersistentVolumeClaim"):
        del w.objects[("PersistentVolumeClaim", claim)]
    w.install()
    assert w.objects[("Secret", "quiz-credentials")]["data"] == secret["data"]


def test_dropping_the_ingress_and_autoscaling_removes_them_and_restores_replicas() -> None:
    w, _ = installed(ingress={"host": "quiz.example.com"}, web={"autoscaling": {}})
    assert w.names("Ingress") == {"quiz"}
    assert w.names("HorizontalPodAutoscaler") == {"quiz-web"}
    w.edit(ingress=None, web={"replicas": 3})
    w.step()
    assert not w.names("Ingress")
    assert not w.names("HorizontalPodAutoscaler")
    w.settle("Job")
    w.run_until("Ready", settle=("Deployment",))
    assert w.objects[("Deployment", "quiz-web")]["spec"]["replicas"] == 3


def test_storage_growth_is_patched_onto_the_claim_not_the_immutable_template() -> None:
    w, _ = installed(database={"managed": {"storage": "1Gi"}})
    w.edit(database={"managed": {"storage": "3Gi"}})
    plan = w.step()
    claim = ("PersistentVolumeClaim", "data-quiz-postgres-0")
    assert plan.patches == ((claim, {"spec": {"resources": {"requests": {"storage": "3Gi"}}}}),)
    assert w.objects[claim]["spec"]["resources"]["requests"]["storage"] == "3Gi"
    template = w.objects[("StatefulSet", "quiz-postgres")]["spec"]["volumeClaimTemplates"][0]
    assert template["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_storage_of_any_size_the_api_takes_never_takes_a_pass_down() -> None:
    for size in ("1E", "1Ei"):
        w, _ = installed(database={"managed": {"storage": "1Gi"}})
        w.edit(database={"managed": {"storage": size}})
        plan = w.step()
        assert plan.patches[0][1] == {"spec": {"resources": {"requests": {"storage": size}}}}


# --- retained data ----------------------------------------------------------------------------


def delete_partyquiz(w: World) -> None:
    """Delete the PartyQuiz: the garbage collector takes every child it controls."""
    for key, obj in list(w.objects.items()):
        refs = obj["metadata"].get("ownerReferences") or []
        if any(ref.get("uid") == w.uid for ref in refs):
            del w.objects[key]
    w.status, w.generation, w.uid = None, 1, "uid-quiz-again"


def test_retained_data_keeps_its_credentials_and_backups_and_comes_back_usable() -> None:
    w, _ = installed(database={"managed": {"backup": {"schedule": "0 3 * * *"}}})
    secret = copy.deepcopy(w.objects[("Secret", "quiz-credentials")])
    assert "quiz-backups" in w.names("PersistentVolumeClaim")
    delete_partyquiz(w)
    assert w.objects[("Secret", "quiz-credentials")] == secret, "the password outlives it"
    assert w.names("PersistentVolumeClaim") == {
        "data-quiz-postgres-0",
        "data-quiz-redis-0",
        "quiz-backups",
    }
    w.install()
    assert w.objects[("Secret", "quiz-credentials")]["data"] == secret["data"]


def test_data_not_retained_goes_with_the_partyquiz_credentials_included() -> None:
    w, _ = installed(retainDataOnDelete=False)
    delete_partyquiz(w)
    assert ("Secret", "quiz-credentials") not in w.objects


def test_a_volume_whose_credentials_are_gone_is_reported_and_no_new_password_is_made() -> None:
    w, _ = installed()
    delete_partyquiz(w)
    del w.objects[("Secret", "quiz-credentials")]
    plan = w.step()
    assert plan.retry_after is not None
    assert w.st.phase != "Ready"
    assert w.condition("Degraded").reason == "CredentialsMissing"
    assert "data-quiz-postgres-0" in w.condition("Degraded").message
    assert ("Secret", "quiz-credentials") not in w.objects


def test_a_volume_initialised_with_another_password_is_reported_not_ready() -> None:
    w, _ = installed()
    secret = w.objects[("Secret", "quiz-credentials")]
    secret["data"]["postgres-password"] = "b3RoZXI="  # "other"
    w.step()
    assert w.condition("Degraded").reason == "CredentialsMismatch"
    assert w.condition("Ready").status == "False"


# --- honest status ------------------------------------------------------------------------------


def test_a_blocked_instance_is_degraded_with_a_warning_and_its_stores_stay_current() -> None:
    w = world()
    w.step()
    w.settle("StatefulSet")
    w.objects[("Service", "quiz-web")] = {
        "kind": "Service",
        "metadata": {"name": "quiz-web", "labels": {}},
        "spec": {"ports": [{"port": 80}]},
    }
    plan = w.step()
    assert w.st.phase == "Degraded"
    assert w.condition("Degraded").reason == "NameConflict"
    assert ("Warning", "PhaseDegraded") in [(e.type, e.reason) for e in plan.events]
    assert w.condition("DatabaseReady").status == "True", "not frozen at 'waiting for the pod'"


def test_a_data_store_waiting_for_its_volume_says_so() -> None:
    w = world()
    w.step()
    w.objects[("PersistentVolumeClaim", "data-quiz-postgres-0")] = {
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "data-quiz-postgres-0",
            "labels": {
                "app.kubernetes.io/instance": "quiz",
                "app.kubernetes.io/managed-by": "partyquiz-operator",
            },
        },
        "spec": {"resources": {"requests": {"storage": "10Gi"}}},
        "status": {"phase": "Pending"},
    }
    plan = w.step()
    database = w.condition("DatabaseReady")
    assert database.reason == "ClaimPending"
    assert "data-quiz-postgres-0 is Pending" in database.message
    assert "no default StorageClass" in database.message
    assert "data-quiz-postgres-0 is Pending" in w.condition("Ready").message
    assert any(e.type == "Warning" and e.reason == "DatabaseReadyFalse" for e in plan.events)


def test_a_data_store_pod_that_cannot_be_scheduled_says_why() -> None:
    w = world()
    w.step()
    w.objects[("Pod", "quiz-redis-0")] = {
        "kind": "Pod",
        "metadata": {
            "name": "quiz-redis-0",
            "labels": {
                "app.kubernetes.io/instance": "quiz",
                "app.kubernetes.io/managed-by": "partyquiz-operator",
                "app.kubernetes.io/component": "cache",
            },
        },
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 Insufficient memory.",
                }
            ]
        },
    }
    w.step()
    assert w.condition("CacheReady").reason == "Unschedulable"
    assert "Insufficient memory" in w.condition("CacheReady").message


def test_an_instance_scaled_to_zero_is_not_ready() -> None:
    w, _ = installed()
    w.edit(ws={"replicas": 0})
    w.step()
    w.settle("Deployment")
    w.step()
    assert w.st.phase == "Degraded"
    assert w.condition("Ready").status == "False"
    assert w.condition("Ready").reason == "ScaledToZero"


def test_the_planner_keeps_one_rendering_per_instance_however_often_its_inputs_change() -> None:
    w, _ = installed()
    w.edit(version="1.5.0")
    for _ in range(3):
        w.step()
        w.settle()
    kept = [ident for ident in lifecycle._RENDERED if ident == ("games", "quiz", w.uid)]
    assert len(kept) == 1
