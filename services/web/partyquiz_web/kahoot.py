"""Import of Kahoot!'s quiz spreadsheet template (.xlsx) into the quiz format.

Owns reading the template with openpyxl: the header row (found by its titles, wherever the
template's instructions above it end), then one question per row: question text, answers 1-4,
time limit in seconds and the correct answer numbers ("1" or "1,3"). Every bad row is reported
with its row number as the spreadsheet shows it, and nothing is imported unless every row is
good. A file that is not a spreadsheet, or one that unpacks to far more than its size, is
refused before openpyxl reads it. It stores nothing.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any, Final

from openpyxl import load_workbook
from pydantic import ValidationError as PydanticValidationError

from partyquiz_core.quiz import MAX_QUESTIONS, Quiz
from partyquiz_web.http_errors import FieldErrorsError

MAX_UNPACKED_BYTES: Final = 32 * 1024 * 1024
"""A spreadsheet that unpacks to more than this is refused (a decompression bomb)."""
MAX_ROWS_READ: Final = 2000
"""Rows looked at before giving up; a quiz has at most 100 questions."""
_ANSWER_COLUMNS: Final = 4
_CORRECT_SEPARATORS = re.compile(r"[,;\s]+")


def _refuse(message: str) -> FieldErrorsError:
    return FieldErrorsError(message, [("(file)", message)])


def _open_rows(data: bytes) -> list[tuple[int, list[Any]]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise _refuse("the file is not an .xlsx spreadsheet") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise _refuse(
            f"the spreadsheet unpacks to {unpacked} bytes; at most {MAX_UNPACKED_BYTES} are read"
        )
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise _refuse(f"the spreadsheet cannot be read: {type(exc).__name__}") from None
    try:
        sheet = workbook.worksheets[0]
        rows = []
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number > MAX_ROWS_READ:
                break
            rows.append((number, list(row)))
        return rows
    finally:
        workbook.close()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _columns(header: list[Any]) -> dict[str, int] | None:
    """Column positions by role, from a header row of the template (None if it is not one)."""
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        title = _text(cell).lower()
        if title.startswith("question") and "question" not in found:
            found["question"] = index
        elif title.startswith("answer"):
            match = re.match(r"answer\s*(\d)", title)
            if match and 1 <= int(match.group(1)) <= _ANSWER_COLUMNS:
                found[f"answer{match.group(1)}"] = index
        elif title.startswith("time limit"):
            found["time"] = index
        elif title.startswith("correct answer"):
            found["correct"] = index
    needed = {"question", "answer1", "answer2", "time", "correct"}
    return found if needed <= found.keys() else None


def _question(row: list[Any], columns: dict[str, int]) -> tuple[dict[str, Any] | None, list[str]]:
    def cell(role: str) -> Any:
        index = columns.get(role)
        return row[index] if index is not None and index < len(row) else None

    problems = []
    text = _text(cell("question"))
    if not text:
        problems.append("the question is empty")
    answers = [_text(cell(f"answer{n}")) for n in range(1, _ANSWER_COLUMNS + 1)]
    # Kahoot! lets answers 3 and 4 be empty; the numbers of the others stay as written.
    numbered = {n: a for n, a in enumerate(answers, start=1) if a}
    if len(numbered) < 2:
        problems.append("a question needs at least two answers")
    raw_time = cell("time")
    time_text = _text(raw_time)
    time_limit: int | None = None
    if not re.fullmatch(r"\d+", time_text):
        problems.append(f"the time limit {time_text!r} is not a whole number of seconds")
    else:
        time_limit = int(time_text)
        if not 5 <= time_limit <= 240:
            problems.append(f"the time limit {time_limit} s is not between 5 and 240 seconds")
    raw_correct = _text(cell("correct"))
    numbers = [p for p in _CORRECT_SEPARATORS.split(raw_correct) if p]
    if not numbers or not all(re.fullmatch(r"\d", p) for p in numbers):
        problems.append(f"the correct answers {raw_correct!r} are not answer numbers like 1 or 1,3")
        numbers = []
    for number in numbers:
        if int(number) not in numbered:
            problems.append(f"correct answer {number} is not one of the filled-in answers")
    if problems:
        return None, problems
    order = sorted(numbered)
    correct = sorted({order.index(int(n)) for n in numbers})
    return {
        "kind": "multiple" if len(correct) > 1 else "single",
        "text": text,
        "choices": [{"text": numbered[n]} for n in order],
        "correct": correct,
        "time_limit_seconds": time_limit,
    }, []


def quiz_from_kahoot_xlsx(data: bytes, title: str) -> Quiz:
    """Turn a filled-in Kahoot! template into a quiz called ``title``; every bad row is listed
    (``row 12: ...``) and nothing is returned unless all rows are good."""
    rows = _open_rows(data)
    columns = None
    start = 0
    for position, (_number, row) in enumerate(rows):
        columns = _columns(row)
        if columns is not None:
            start = position + 1
            break
    if columns is None:
        raise _refuse(
            "no header row with Question, Answer 1, Answer 2, Time limit and Correct answer(s) "
            "was found: is this Kahoot!'s quiz template?"
        )
    errors: list[tuple[str, str]] = []
    questions: list[tuple[int, dict[str, Any]]] = []
    for number, row in rows[start:]:
        if all(_text(value) == "" for value in row):
            continue
        question, problems = _question(row, columns)
        errors += [(f"row {number}", problem) for problem in problems]
        if question is not None:
            questions.append((number, question))
    if not questions and not errors:
        raise _refuse("the spreadsheet has no questions under its header row")
    if len(questions) > MAX_QUESTIONS:
        errors.append(("(file)", f"a quiz has at most {MAX_QUESTIONS} questions"))
    if not errors:
        try:
            return Quiz.model_validate(
                {"title": title, "questions": [q for _number, q in questions]}
            )
        except PydanticValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                location = [str(part) for part in error["loc"]]
                if len(location) >= 2 and location[0] == "questions":
                    where = f"row {questions[int(location[1])][0]}"
                else:
                    where = ".".join(location) or "(file)"
                errors.append((where, str(error["msg"])))
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    raise FieldErrorsError(f"{first[0]}: {first[1]}{more}; nothing was imported", errors)
