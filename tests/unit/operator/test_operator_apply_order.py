"""The order a pass applies a new instance's children in: what fences and feeds the data
stores' pods first, then their StatefulSets, then everything else; each group at once."""

from __future__ import annotations

from tests.unit.operator.test_operator_builders import EXTERNAL, MINIMAL, counter_tokens, make

from partyquiz_operator import builders
from partyquiz_operator.reconcile import _waves


def infrastructure(spec: dict[str, object]) -> list[dict[str, object]]:
    inst = make(dict(spec))
    secret = builders.build_credentials_secret(inst, {}, counter_tokens())
    return builders.build_infrastructure(inst, credentials=secret)


def kinds(wave: list[dict[str, object]]) -> set[object]:
    return {child["kind"] for child in wave}


def test_data_stores_start_after_their_account_credentials_and_fences_and_before_the_rest() -> None:
    children = infrastructure(MINIMAL)
    first, stores, rest = _waves(children)
    assert kinds(first) == {"ServiceAccount", "Secret", "NetworkPolicy"}
    assert kinds(stores) == {"StatefulSet"}
    assert len(stores) == 2
    assert "StatefulSet" not in kinds(rest)
    assert "Service" in kinds(rest)
    assert [c for wave in (first, stores, rest) for c in wave] == children


def test_without_managed_stores_everything_goes_at_once() -> None:
    children = infrastructure(EXTERNAL)
    assert _waves(children) == [children]
