"""docs/protocol.md documents every wire message, its fields and every error code."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from partyquiz_core import protocol

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "protocol.md").read_text()
SOURCES = [ROOT / "services" / "core" / "partyquiz_core", ROOT / "services" / "ws" / "partyquiz_ws"]


def _members(union: object) -> list[type[BaseModel]]:
    inner = typing.get_args(union)[0]  # Annotated[A | B | ..., Field(...)]
    return list(typing.get_args(inner))


def _type_name(model: type[BaseModel]) -> str:
    return str(model.model_fields["type"].default)


ALL_MESSAGES = _members(protocol.ClientMessage) + _members(protocol.ServerMessage)


def _error_codes() -> set[str]:
    codes: set[str] = set()
    for folder in SOURCES:
        for path in folder.glob("*.py"):
            text = path.read_text()
            codes.update(re.findall(r'code="([a-z_]+)"', text))
            codes.update(re.findall(r'^\s+code = "([a-z_]+)"', text, flags=re.MULTILINE))
    return codes


def test_both_unions_have_members() -> None:
    assert len(_members(protocol.ClientMessage)) >= 10
    assert len(_members(protocol.ServerMessage)) >= 15


@pytest.mark.parametrize("model", ALL_MESSAGES, ids=_type_name)
def test_every_message_has_a_section_naming_all_its_fields(model: type[BaseModel]) -> None:
    name = _type_name(model)
    heading = re.search(rf"^#{{3,4}} `{name}`$", DOC, flags=re.MULTILINE)
    assert heading, f"docs/protocol.md has no section for message {name!r}"
    section = DOC[heading.end() :]
    end = re.search(r"^#{2,4} ", section, flags=re.MULTILINE)
    section = section[: end.start()] if end else section
    for field in model.model_fields:
        if field in ("type", "version"):
            continue
        assert f"`{field}`" in section, f"field {field!r} of {name!r} is not documented"


def test_every_error_code_is_documented() -> None:
    codes = _error_codes()
    assert {"late", "duplicate", "bad_frame", "rate_limited"} <= codes
    missing = sorted(c for c in codes if f"`{c}`" not in DOC)
    assert not missing, f"error codes missing from docs/protocol.md: {missing}"


def test_every_close_code_the_service_sends_is_documented() -> None:
    sent: set[str] = {"1009", "1012", "1007"}  # websockets' own, for the causes the doc names
    for path in SOURCES[1].glob("*.py"):
        sent.update(re.findall(r"^CLOSE_[A-Z_]+ = (\d{4})$", path.read_text(), re.MULTILINE))
    assert {"4001", "4003", "4008", "4009", "4029"} <= sent
    table = DOC[DOC.index("## 7. Close codes") : DOC.index("## 8.")]
    missing = sorted(code for code in sent if not re.search(rf"^\| {code}\b", table, re.M))
    assert not missing, f"close codes missing from docs/protocol.md section 7: {missing}"


def test_every_snapshot_field_is_documented() -> None:
    section = DOC[DOC.index("### Snapshot") : DOC.index("### PlayerSummary")]
    missing = [f for f in protocol.Snapshot.model_fields if f"| `{f}` |" not in section]
    assert not missing, f"Snapshot fields missing from docs/protocol.md: {missing}"
