"""The spec model parses what the API server stores and refuses what it must never see."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from partyquiz_operator import api

REPO = Path(__file__).resolve().parents[3]


def test_minimal_spec_gets_every_default() -> None:
    spec = api.parse_spec(
        {"version": "1.4.0", "database": {"managed": {}}, "redis": {"managed": {}}}
    )
    assert spec.web.replicas == 2
    assert spec.ws.replicas == 2
    assert spec.ws.drain_seconds == 30
    assert spec.database.managed is not None
    assert spec.database.managed.storage == "10Gi"
    assert spec.retain_data_on_delete is True
    assert spec.suspend is False
    assert spec.images.pull_policy == "IfNotPresent"


@pytest.mark.parametrize("store", ["database", "redis"])
def test_a_store_needs_exactly_one_of_managed_or_external(store: str) -> None:
    base = {"version": "1.4.0", "database": {"managed": {}}, "redis": {"managed": {}}}
    both = {"managed": {}, "external": {"secretRef": {"name": "s", "key": "k"}}}
    with pytest.raises(ValidationError, match=f"exactly one of {store}.managed"):
        api.parse_spec({**base, store: both})
    with pytest.raises(ValidationError, match=f"exactly one of {store}.managed"):
        api.parse_spec({**base, store: {}})


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        api.parse_spec(
            {"version": "1.4.0", "database": {"managed": {}}, "redis": {"managed": {}}, "x": 1}
        )


def test_status_parsing_ignores_foreign_keys() -> None:
    status = api.parse_status({"phase": "Ready", "kopf": {"progress": {}}})
    assert status.phase == "Ready"


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == api.KIND]
    assert docs
    for doc in docs:
        api.PartyQuiz.model_validate({"spec": doc["spec"]})
        assert len(doc["metadata"]["name"]) <= api.MAX_NAME_LENGTH
