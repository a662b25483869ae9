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
