"""Drift detection: equal children are left alone; hand edits and spec changes are re-applied."""

from __future__ import annotations

from decimal import Decimal

import pytest

from partyquiz_operator.plan import drift


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1", Decimal(1)),
        ("1Gi", Decimal(2**30)),
        ("1e3", Decimal(1000)),
        ("5e-3", Decimal("0.005")),
        ("1E", Decimal(10**18)),
        ("1Ei", Decimal(2**60)),
        ("2Pi", Decimal(2 * 2**50)),
    ],
)
def test_quantities_parse_to_their_value(text: str, value: Decimal) -> None:
    assert drift.parse_quantity(text) == value


def test_words_are_not_quantities() -> None:
    assert drift.parse_quantity("web") is None


DESIRED = {
    "kind": "Deployment",
    "metadata": {"name": "a", "labels": {"x": "1"}},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {"containers": [{"name": "web", "resources": {"limits": {"cpu": "1"}}}]}
        },
    },
}


def live_from(desired: dict[str, object]) -> dict[str, object]:
    hashed = drift.with_hash(desired)
    live = {
        **hashed,
        "metadata": {**hashed["metadata"], "uid": "u", "resourceVersion": "7"},
        "status": {"readyReplicas": 2},
    }
    live["spec"] = {  # type: ignore[index]
        "replicas": 2,
        "revisionHistoryLimit": 10,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "resources": {"limits": {"cpu": "1000m"}},
                        "terminationMessagePath": "/dev/termination-log",
                    }
                ],
                "dnsPolicy": "ClusterFirst",
            }
        },
    }
    return live


def test_a_live_object_with_server_defaults_is_up_to_date() -> None:
    assert drift.is_up_to_date(live_from(DESIRED), drift.with_hash(DESIRED))


def test_a_hand_edited_field_we_own_is_drift() -> None:
    live = live_from(DESIRED)
    live["spec"]["replicas"] = 5  # type: ignore[index]
    assert not drift.is_up_to_date(live, drift.with_hash(DESIRED))


def test_a_changed_desired_object_is_not_up_to_date() -> None:
    changed = {**DESIRED, "metadata": {"name": "a", "labels": {"x": "2"}}}
    assert not drift.is_up_to_date(live_from(DESIRED), drift.with_hash(changed))


def test_a_missing_object_is_not_up_to_date() -> None:
    assert not drift.is_up_to_date(None, drift.with_hash(DESIRED))


def test_ownership_requires_a_controller_reference_with_the_uid() -> None:
    owned = {"metadata": {"ownerReferences": [{"uid": "u1", "controller": True}]}}
    assert drift.is_owned_by(owned, "u1")
    assert not drift.is_owned_by(owned, "u2")
    assert not drift.is_owned_by({"metadata": {}}, "u1")
