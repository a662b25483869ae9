"""Rendering of benchmark results: Markdown tables, the sections of docs/benchmarks.md and the
CSV files of raw figures published beside it.

Pure string functions, unit-tested in tests/unit/bench. ``replace_section`` rewrites only the
named ``## `` section and keeps every other section (the "Images" section belongs to the image
build) byte for byte.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Cell = str | float | int | None


def format_cell(value: Cell, digits: int = 1) -> str:
    """Format one table cell: None as an em dash, floats with ``digits`` decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return value


def format_ratio(value: float | None) -> str:
    """Format a PartyQuiz / peer ratio like ``0.84x``."""
    return "—" if value is None else f"{value:.2f}x"


def _numeric(cell: Cell) -> bool:
    """Whether a cell reads as a number (formatted figures like ``12.3 (11.0 to 14.2)``,
    ``0.84x`` or a dash for a missing one included): those columns align right."""
    if cell is None or isinstance(cell, int | float):
        return True
    return bool(cell) and (cell[0].isdigit() or cell[0] in "-—")


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[Cell]], digits: Sequence[int] = ()
) -> str:
    """Render a Markdown table; numbers are right-aligned, text left-aligned.

    ``digits`` gives the decimals of each column's floats (1 for columns it does not reach).
    """
    if any(len(row) != len(headers) for row in rows):
        raise ValueError("every row needs one cell per header")
    decimals = [*digits, *[1] * (len(headers) - len(digits))]
    text = [[format_cell(cell, decimals[i]) for i, cell in enumerate(row)] for row in rows]
    numeric = [bool(rows) and all(_numeric(row[i]) for row in rows) for i in range(len(headers))]
    widths = [max([len(headers[i])] + [len(row[i]) for row in text]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if numeric[i] else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(headers), line(rule), *(line(row) for row in text)]) + "\n"


def replace_section(document: str, title: str, body: str) -> str:
    """Return ``document`` with the ``## title`` section's content replaced by ``body``.

    A section runs from its heading to the next level-2 heading. A missing section is
    appended; an empty document gets a title first. Other sections are left untouched.
    """
    heading = f"## {title}"
    section = f"{heading}\n\n{body.strip()}\n"
    if not document.strip():
        return f"# PartyQuiz benchmarks\n\n{section}"
    lines = document.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == heading), None)
    if start is None:
        return document.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


# The raw figures kept in the repo: who ran, then every metric of the session.
SESSION_COLUMNS = ("scenario", "kind", "size", "players", "run", "load", "error")


def session_rows(
    records: Iterable[Mapping[str, Any]],
) -> dict[str, tuple[list[str], list[list[Cell]]]]:
    """One table per scenario, one row per session with its figures (``summary``'s metrics;
    a failed session keeps its error), for the small CSV files published with the report."""
    from bench.summary import summarize_session

    tables: dict[str, list[dict[str, Cell]]] = {}
    for rec in records:
        row: dict[str, Cell] = {k: rec.get(k) for k in SESSION_COLUMNS}
        if "error" in rec:
            row["error"] = str(rec["error"]).splitlines()[0][:200] if rec["error"] else ""
        elif "raw" in rec:
            for key, value in summarize_session(rec["raw"]).items():
                row[key] = None if value is None else round(value, 4)
        tables.setdefault(str(rec["scenario"]), []).append(row)
    out: dict[str, tuple[list[str], list[list[Cell]]]] = {}
    for scenario, rows in tables.items():
        metrics = sorted({k for r in rows for k in r} - set(SESSION_COLUMNS))
        headers = [*SESSION_COLUMNS, *metrics]
        out[scenario] = (headers, [[r.get(h) for h in headers] for r in rows])
    return out


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """CSV with a header line; empty cells for missing values, no thousands separators."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return buffer.getvalue()
