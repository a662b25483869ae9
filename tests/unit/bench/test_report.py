"""Rendering of the benchmark tables and of the owned sections of docs/benchmarks.md."""

from __future__ import annotations

import pytest
from bench.report import (
    csv_text,
    format_cell,
    format_ratio,
    render_table,
    replace_section,
    session_rows,
)


def test_table_aligns_numbers_right_and_text_left() -> None:
    table = render_table(["server", "CPU ms"], [["PartyQuiz", 12.345], ["Node ws", 1234.5]])
    assert table.splitlines() == [
        "| server    |  CPU ms |",
        "| --------- | ------: |",
        "| PartyQuiz |    12.3 |",
        "| Node ws   | 1,234.5 |",
    ]


def test_missing_values_render_as_a_dash_and_count_as_numbers() -> None:
    table = render_table(["server", "p99"], [["raw floor", None], ["ws", 3]])
    assert "| raw floor |   — |" in table
    assert "| --: |" in table


def test_a_row_with_the_wrong_number_of_cells_is_refused() -> None:
    with pytest.raises(ValueError, match="one cell per header"):
        render_table(["a", "b"], [["only one"]])


def test_a_column_can_ask_for_more_decimals() -> None:
    table = render_table(["server", "CPU ms", "share"], [["ws", 12.345, 0.876]], [1, 1, 2])
    assert table.splitlines()[-1] == "| ws     |   12.3 |  0.88 |"


def test_cells_and_ratios_are_formatted_for_reading() -> None:
    assert format_cell(True) == "yes"
    assert format_cell(10_000) == "10,000"
    assert format_cell(0.5, digits=2) == "0.50"
    assert format_ratio(0.8449) == "0.84x"
    assert format_ratio(None) == "—"


DOC = """# PartyQuiz benchmarks

Intro text.

## Images

| image | size |
| --- | --- |
| web | 80 MB |

## Game service

old numbers

## Operator

old operator numbers
"""


def test_replacing_a_section_keeps_every_other_section_intact() -> None:
    updated = replace_section(DOC, "Game service", "new numbers")
    assert "new numbers" in updated
    assert "old numbers\n" not in updated.replace("old operator numbers", "")
    assert "| web | 80 MB |" in updated
    assert updated.startswith("# PartyQuiz benchmarks\n\nIntro text.\n\n## Images\n")
    assert updated.endswith("## Operator\n\nold operator numbers\n")


def test_replacing_is_idempotent() -> None:
    once = replace_section(DOC, "Operator", "ops")
    assert replace_section(once, "Operator", "ops") == once


def test_a_missing_section_is_appended_after_the_others() -> None:
    doc = "# PartyQuiz benchmarks\n\n## Images\n\nsizes\n"
    updated = replace_section(doc, "Game service", "numbers")
    assert updated == "# PartyQuiz benchmarks\n\n## Images\n\nsizes\n\n## Game service\n\nnumbers\n"


def test_an_empty_document_gets_a_title_and_the_section() -> None:
    assert replace_section("", "Operator", "x") == "# PartyQuiz benchmarks\n\n## Operator\n\nx\n"


def test_a_level_three_heading_stays_inside_its_section() -> None:
    doc = "# T\n\n## Game service\n\nold\n\n### Detail\n\nmore\n\n## Images\n\nkeep\n"
    updated = replace_section(doc, "Game service", "new")
    assert updated == "# T\n\n## Game service\n\nnew\n\n## Images\n\nkeep\n"


def test_formatted_figures_align_right_like_numbers() -> None:
    table = render_table(["server", "CPU ms"], [["ws", "12.3 (11.0 to 14.2)"], ["pq", "—"]])
    assert table.splitlines()[1] == "| ------ | ------------------: |"


def test_raw_figures_are_one_csv_row_per_session_failures_included() -> None:
    from tests.unit.bench.test_summary import _raw

    records = [
        {"scenario": "game", "kind": "partyquiz", "size": 4, "players": 4, "run": 0, "raw": _raw()},
        {"scenario": "game", "kind": "ws", "size": 4, "players": 4, "run": 0, "error": "boom\nx"},
    ]
    tables = session_rows(records)
    headers, rows = tables["game"]
    assert headers[:7] == ["scenario", "kind", "size", "players", "run", "load", "error"]
    lines = csv_text(headers, rows).splitlines()
    assert len(lines) == 3
    ok = dict(zip(headers, rows[0], strict=True))
    assert ok["answer_cpu_ms_per_1000"] == 2000.0
    failed = dict(zip(headers, rows[1], strict=True))
    assert (failed["error"], failed["answer_cpu_ms_per_1000"]) == ("boom", None)
    assert lines[2].startswith("game,ws,4,4,0,,boom,")
