"""Import of Kahoot!'s quiz spreadsheet template: good files become quizzes, bad rows are named
by their row number, and nothing is half-imported."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from openpyxl import Workbook
from tests.integration.web.conftest import MakeWeb

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = [
    None,
    "Question - max 120 characters",
    "Answer 1 - max 75 characters",
    "Answer 2 - max 75 characters",
    "Answer 3 - max 75 characters",
    "Answer 4 - max 75 characters",
    "Time limit (sec) - 5, 10, 20, 30, 60, 90, 120, or 240 secs",
    "Correct answer(s) - choose at least one",
]


def template(rows: list[list[Any]]) -> bytes:
    """A spreadsheet laid out like Kahoot!'s template: instructions, a header, questions."""
    book = Workbook()
    sheet = book.active
    sheet.append(["Quiz template"])
    sheet.append(["Add questions, at least two answer alternatives, time limit and choose"])
    sheet.append([])
    sheet.append(HEADER)
    for number, row in enumerate(rows, start=1):
        sheet.append([number, *row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_kahoot_spreadsheet_becomes_a_quiz(make_web: MakeWeb, database_url: str) -> None:
    web = await make_web(database_url)
    auth = await web.register_and_login()
    data = template(
        [
            ["Capital of Italy?", "Milan", "Rome", "Turin", "Naples", 20, 2],
            ["Prime numbers?", "2", "4", "5", "9", 30, "1,3"],
            ["Is the sky blue?", "Yes", "No", None, None, 10, "1"],
        ]
    )
    response = await web.client.post(
        "/api/quizzes/import/kahoot",
        params={"title": "Kahoot night"},
        content=data,
        headers={**auth, "Content-Type": XLSX},
    )
    assert response.status_code == 201, response.text
    quiz = response.json()["quiz"]
    assert quiz["title"] == "Kahoot night"
    assert [(q["kind"], q["correct"], q["time_limit_seconds"]) for q in quiz["questions"]] == [
        ("single", [1], 20),
        ("multiple", [0, 2], 30),
        ("single", [0], 10),
    ]
    assert [c["text"] for c in quiz["questions"][2]["choices"]] == ["Yes", "No"]


async def test_bad_rows_are_named_by_number_and_nothing_is_imported(
    make_web: MakeWeb, database_url: str
) -> None:
    web = await make_web(database_url)
    auth = await web.register_and_login()
    data = template(
        [
            ["Fine question?", "A", "B", None, None, 20, 1],
            ["", "A", "B", None, None, 20, 1],
            ["Only one answer?", "A", None, None, None, 20, 1],
            ["Too slow?", "A", "B", None, None, 600, 1],
            ["Wrong key?", "A", "B", None, None, 20, "3"],
        ]
    )
    response = await web.client.post(
        "/api/quizzes/import/kahoot", content=data, headers={**auth, "Content-Type": XLSX}
    )
    assert response.status_code == 422
    errors = [(e["path"], e["message"]) for e in response.json()["errors"]]
    assert errors == [
        ("row 6", "the question is empty"),
        ("row 7", "a question needs at least two answers"),
        ("row 8", "the time limit 600 s is not between 5 and 240 seconds"),
        ("row 9", "correct answer 3 is not one of the filled-in answers"),
    ]
    assert response.json()["message"].endswith("nothing was imported")
    assert (await web.client.get("/api/quizzes", headers=auth)).json() == []


async def test_files_that_are_not_the_template_are_refused_clearly(
    make_web: MakeWeb, database_url: str
) -> None:
    web = await make_web(database_url)
    auth = await web.register_and_login()
    headers = {**auth, "Content-Type": XLSX}
    not_xlsx = await web.client.post("/api/quizzes/import/kahoot", content=b"a,b", headers=headers)
    assert not_xlsx.status_code == 422
    assert not_xlsx.json()["errors"][0]["message"] == "the file is not an .xlsx spreadsheet"

    book = Workbook()
    book.active.append(["just", "some", "cells"])
    plain = io.BytesIO()
    book.save(plain)
    other = await web.client.post(
        "/api/quizzes/import/kahoot", content=plain.getvalue(), headers=headers
    )
    assert other.status_code == 422
    assert "is this Kahoot!'s quiz template?" in other.json()["message"]

    # A small file that unpacks to a huge one is refused before it is read.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (40 * 1024 * 1024))
    refused = await web.client.post(
        "/api/quizzes/import/kahoot", content=bomb.getvalue(), headers=headers
    )
    assert refused.status_code == 422
    assert "unpacks to" in refused.json()["message"]
    assert (await web.client.get("/api/quizzes", headers=auth)).json() == []
