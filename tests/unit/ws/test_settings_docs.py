"""Every setting of both services is documented with its default, and the README links them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from partyquiz_web.settings import WebSettings
from partyquiz_ws.settings import WsSettings

ROOT = Path(__file__).resolve().parents[3]


def _rows(doc: str) -> dict[str, str]:
    """The configuration table of ``doc``: variable (as written, without the prefix) -> row."""
    rows: dict[str, str] = {}
    for line in (ROOT / "docs" / doc).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([A-Z_]+)`", cells[0]):
                rows[name] = cells[1]
    return rows


@pytest.mark.parametrize(
    ("settings", "doc"), [(WsSettings, "ws.md"), (WebSettings, "api.md")], ids=["ws", "web"]
)
def test_every_setting_has_a_row_with_its_default(settings: type[BaseSettings], doc: str) -> None:
    rows = _rows(doc)
    missing = [name.upper() for name in settings.model_fields if name.upper() not in rows]
    assert not missing, f"docs/{doc} lacks {missing}"
    for name, field in settings.model_fields.items():
        default = field.default
        if isinstance(default, bool):
            expected = str(default).lower()
        elif isinstance(default, int):
            expected = str(default)
        elif isinstance(default, float):
            expected = f"{default:g}"
        else:
            continue  # text, unset and computed defaults are described in words
        assert expected in rows[name.upper()], f"{name}: default {expected} not in docs/{doc}"


def test_the_readme_points_at_both_configuration_references() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/ws.md" in readme
    assert "docs/api.md" in readme
