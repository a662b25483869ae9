"""The CRD is generated from the model: committed copies match, the schema is structural."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from partyquiz_operator import api
from partyquiz_operator.generate import __main__ as generate
from partyquiz_operator.generate import crd as crdgen

REPO = Path(__file__).resolve().parents[3]


def walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from walk(prop, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("path", [*crdgen.CRD_PATHS, crdgen.DOCS_PATH], ids=str)
def test_committed_generated_files_match_the_model(path: Path) -> None:
    expected = crdgen.expected_files(REPO)[REPO / path]
    assert (REPO / path).read_text() == expected, (
        f"{path} is out of date: run `uv run python -m partyquiz_operator.generate`"
    )


def test_check_mode_reports_drift_without_writing(tmp_path: Path) -> None:
    assert generate.main(["--root", str(tmp_path), "--check"]) == 1
    assert not (tmp_path / crdgen.CRD_PATHS[0]).exists()
    assert generate.main(["--root", str(tmp_path)]) == 0
    assert generate.main(["--root", str(tmp_path), "--check"]) == 0


def test_schema_is_structural_and_every_field_is_described() -> None:
    schema = crdgen.crd_schema()
    for path, node in walk(schema):
        assert not {"$ref", "anyOf", "allOf"} & set(node), path
        assert "type" in node, f"{path} has no type"
        assert "title" not in node, path
        if not path.endswith("{}") and path != ".metadata":  # map values; implicit metadata
            assert node.get("description"), f"{path} has no description"
        assert "x-kubernetes-preserve-unknown-fields" not in node, path


def test_crd_names_scope_subresources_and_printer_columns() -> None:
    crd = yaml.safe_load(crdgen.render_crd_yaml())
    assert crd["metadata"]["name"] == "partyquizzes.partyquiz.dev"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        "PartyQuiz",
        "partyquizzes",
        ["pq"],
    )
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Version", "Target", "Phase", "Ready", "Web", "WS", "Age"]
    assert columns["Version"]["jsonPath"] == ".status.version", "what runs, not what is asked"
    assert columns["Target"]["jsonPath"] == ".spec.version"
    assert columns["Target"]["priority"] == 1, "shown with -o wide"


def test_every_status_field_of_the_model_is_declared() -> None:
    status = crdgen.crd_schema()["properties"]["status"]["properties"]
    for name, field in api.PartyQuizStatus.model_fields.items():
        assert (field.alias or name) in status
    assert set(status["revisions"]["properties"]) == {"current", "target", "migrated", "failed"}
    conditions = status["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["items"]["properties"]["type"]["enum"] == list(api.CONDITION_TYPES)
    assert status["phase"]["enum"] == list(api.PHASES)


def test_exactly_one_store_and_immutable_storage_rules_are_present() -> None:
    spec = crdgen.crd_schema()["properties"]["spec"]["properties"]
    for store in ("database", "redis"):
        rules = [r["rule"] for r in spec[store]["x-kubernetes-validations"]]
        assert "has(self.managed) != has(self.external)" in rules
        assert any("oldSelf" in r for r in rules)
        managed_rules = spec[store]["properties"]["managed"]["x-kubernetes-validations"]
        messages = " ".join(r["message"] for r in managed_rules)
        assert "cannot shrink" in messages
        assert "immutable" in messages


def test_defaults_are_filled_for_nested_objects() -> None:
    spec = crdgen.crd_schema()["properties"]["spec"]["properties"]
    assert spec["web"]["default"]["replicas"] == 2
    assert spec["web"]["properties"]["resources"]["default"]["requests"]["cpu"] == "100m"
    assert spec["retainDataOnDelete"]["default"] is True
    assert spec["suspend"]["default"] is False
    assert spec["ws"]["properties"]["drainSeconds"]["default"] == 30


def test_reference_docs_list_every_spec_field() -> None:
    reference = crdgen.render_reference()
    for path, _ in walk(crdgen.crd_schema()["properties"]["spec"], "spec"):
        if "{" in path or path == "spec":
            continue
        assert f"`{path}`" in reference, path


def test_the_chart_accepts_the_same_reaper_schedules_as_the_crd_accepts_backup_schedules() -> None:
    schema = json.loads((REPO / "charts/partyquiz-operator/values.schema.json").read_text())
    schedule = schema["properties"]["finalizerReaper"]["properties"]["schedule"]
    assert schedule["pattern"] == api.CRON_PATTERN
