"""Pictures in quizzes, in Chromium: the editor uploads, previews and removes them and says
clearly what it refused; the big screen shows them large beside the answers at every TV size
(and the cover in the lobby); phones show them only when the quiz says so, with every answer
and the lock button still on screen. Checked on what is visible: each picture really loaded,
inside the viewport, clear of the answers.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.flows import api, host_token
from tests.browser.geometry import (
    SCREENS,
    box,
    fits,
    legible,
    small_text,
)
from tests.browser.room import Room

PHONE_SIZES = ("320x568", "390x844", "844x390")


def picture(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    """A picture with a frame and a diagonal, so a screenshot shows how it was fitted."""
    image = Image.new("RGB", size, colour)
    for x in range(size[0]):
        y = x * size[1] // size[0]
        for dy in range(-3, 4):
            if 0 <= y + dy < size[1]:
                image.putpixel((x, y + dy), (255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def upload(page: Page, data: bytes) -> str:
    response = page.request.post(
        "/api/images",
        headers={"Authorization": f"Bearer {host_token(page)}"},
        data=data,
    )
    assert response.ok, response.text()
    digest = response.json()["id"]
    assert isinstance(digest, str)
    return digest


def loaded(page: Page, selector: str) -> bool:
    """Wait until the image at ``selector`` has loaded: a broken one never has a natural size,
    and the wait fails."""
    page.wait_for_function(
        "sel => { const img = document.querySelector(sel);"
        " return img !== null && img.complete && img.naturalWidth > 0; }",
        arg=selector,
    )
    return True


def apart(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] + a["width"] <= b["x"] + 0.5
        or b["x"] + b["width"] <= a["x"] + 0.5
        or a["y"] + a["height"] <= b["y"] + 0.5
        or b["y"] + b["height"] <= a["y"] + 0.5
    )


def picture_quiz(page: Page, title: str, *, on_phones: bool) -> dict[str, Any]:
    cover = upload(page, picture((1600, 900), (30, 90, 160)))
    slide = upload(page, picture((1200, 1200), (140, 40, 120)))
    photo = upload(page, picture((1920, 1080), (20, 130, 60)))
    return {
        "title": title,
        "cover": cover,
        "settings": {"get_ready_seconds": 0, "images_on_phones": on_phones},
        "questions": [
            {
                "kind": "info",
                "text": "Round one: cities",
                "image": slide,
                "time_limit_seconds": 120,
            },
            {
                "kind": "multiple",
                "text": "Which of these cities are capitals?",
                "image": photo,
                "choices": [
                    {"text": "Rome"},
                    {"text": "Milan"},
                    {"text": "Madrid"},
                    {"text": "Barcelona"},
                ],
                "correct": [0, 2],
                "time_limit_seconds": 120,
                "read_seconds": 0,
            },
        ],
    }


def test_the_big_screen_shows_pictures_large_and_phones_keep_to_the_answers(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[..., Any]
) -> None:
    quiz = picture_quiz(host_page, "Pictures for screens", on_phones=False)
    room = Room(host_page, new_context, quiz, phones=PHONE_SIZES)
    for size, page in room.screens.items():
        expect(page.get_by_test_id("cover")).to_be_visible()
        assert loaded(page, "#cover"), size
        assert fits(page, ["#cover", "#join-code", "#qr"]) == [], size
        shoot(page, f"screen-lobby-cover-{size}")
    for size, phone in room.phones.items():
        expect(phone.get_by_role("heading", name="You're in!")).to_be_visible()
        assert phone.locator("img.cover, #cover").count() == 0, size

    room.host.get_by_role("button", name="Start the game").click()
    for size, page in room.screens.items():
        expect(page.locator(".info-slide #q-picture")).to_be_visible()
        assert loaded(page, "#q-picture"), size
        assert fits(page, ["#q-picture", "#q-text"]) == [], size
        assert apart(box(page, "#q-picture"), box(page, "#q-text")), size
        shoot(page, f"screen-info-picture-{size}")
    for size, phone in room.phones.items():
        expect(phone.locator("#q-text")).to_have_text("Round one: cities")
        assert phone.locator("#q-picture").count() == 0, size

    room.host.get_by_role("button", name="Continue").click()
    for size, page in room.screens.items():
        width, height = SCREENS[size]["width"], SCREENS[size]["height"]
        expect(page.locator("#tiles")).to_be_visible()
        expect(page.locator("#q-picture")).to_be_visible()
        assert loaded(page, "#q-picture"), size
        shoot(page, f"screen-question-picture-{size}")
        assert fits(page, ["#q-picture", "#tiles .tile", "#q-text", "#timer"]) == [], size
        shown, tiles = box(page, "#q-picture"), box(page, "#tiles")
        assert apart(shown, tiles), size
        assert apart(shown, box(page, "#q-text")), size
        # Large: beside the answers, as tall as they are and a third of the screen wide; the
        # answers keep half the width.
        assert shown["width"] >= 0.33 * width, size
        assert shown["height"] >= 0.95 * tiles["height"], size
        assert tiles["width"] >= 0.45 * width, size
        assert tiles["height"] >= 0.25 * height, size
        assert small_text(page, "#stage", legible(page)) == [], size
    for size, phone in room.phones.items():
        expect(phone.locator("#choices .choice")).to_have_count(4)
        assert phone.locator("#q-picture").count() == 0, size
        assert fits(phone, ["#choices .choice", "#lock-in"]) == [], size

    room.host.get_by_role("button", name="Skip to the answer").click()
    for size, page in room.screens.items():
        expect(page.get_by_test_id("distribution")).to_be_visible()
        assert loaded(page, "#q-picture"), size
        assert fits(page, ["#q-picture", "#tiles .tile"]) == [], size
        assert apart(box(page, "#q-picture"), box(page, "#tiles")), size
        shoot(page, f"screen-reveal-picture-{size}")
    # What the phones were sent: never a picture (nor a cover), never what is right early.
    for size, log in room.frames.items():
        expect(room.phones[size].get_by_role("heading", name="No answer")).to_be_visible()
        assert log.messages, size
        assert not any("image" in m or "cover" in _state(m) for m in log.messages), size
        assert not any("image" in (_state(m).get("question") or {}) for m in log.messages), size
        reveal = next(i for i, m in enumerate(log.messages) if m["type"] == "reveal")
        assert not any("correct" in m for m in log.messages[:reveal]), size


def _state(message: dict[str, Any]) -> dict[str, Any]:
    state = message.get("state")
    return state if isinstance(state, dict) else {}


def test_phones_show_the_picture_when_the_quiz_says_so_and_every_answer_still_fits(
    host_page: Page, new_context: Callable[..., BrowserContext], shoot: Callable[..., Any]
) -> None:
    quiz = picture_quiz(host_page, "Pictures for phones", on_phones=True)
    room = Room(host_page, new_context, quiz, screens=("1280x720",), phones=PHONE_SIZES)
    room.host.get_by_role("button", name="Start the game").click()
    for size, phone in room.phones.items():
        expect(phone.locator("#q-picture")).to_be_visible()
        assert loaded(phone, "#q-picture"), size
    room.host.get_by_role("button", name="Continue").click()
    for size, phone in room.phones.items():
        expect(phone.locator("#choices .choice")).to_have_count(4)
        expect(phone.locator("#q-picture")).to_be_visible()
        assert loaded(phone, "#q-picture"), size
        assert fits(phone, ["#q-picture", "#choices .choice", "#lock-in"]) == [], size
        assert apart(box(phone, "#q-picture"), box(phone, "#choices")), size
        assert apart(box(phone, "#q-picture"), box(phone, "#lock-in")), size
        shoot(phone, f"phone-question-picture-{size}")
    phone = room.phones["320x568"]
    phone.locator("#choices").get_by_role("button", name="Rome", exact=True).click()
    phone.locator("#choices").get_by_role("button", name="Madrid", exact=True).click()
    phone.locator("#lock-in").click()
    expect(phone.get_by_test_id("receipt")).to_contain_text("Answer locked at")
    room.host.get_by_role("button", name="Skip to the answer").click()
    expect(phone.get_by_role("heading", name="Correct!")).to_be_visible()
    for size, log in room.frames.items():
        if size != "320x568":
            expect(room.phones[size].get_by_role("heading", name="No answer")).to_be_visible()
        question = next(q for q in log.questions() if q["index"] == 1)
        assert re.fullmatch(r"/images/[0-9a-f]{64}", question["image"]), size
        reveal = next(i for i, m in enumerate(log.messages) if m["type"] == "reveal")
        assert not any("correct" in m for m in log.messages[:reveal]), size


def test_the_editor_uploads_previews_and_removes_pictures_and_says_what_it_refused(
    host_page: Page, tmp_path: Path, shoot: Callable[..., Any]
) -> None:
    page = host_page
    photo = tmp_path / "IMG_0042.JPG"  # a phone's name for a PNG: the bytes decide
    photo.write_bytes(picture((800, 600), (200, 120, 20)))
    cover = tmp_path / "cover.webp"
    Image.new("RGB", (640, 360), (20, 60, 140)).save(cover, "WEBP")
    not_a_picture = tmp_path / "notes.png"
    not_a_picture.write_text("these are notes, not a picture")
    too_big = tmp_path / "huge.png"
    too_big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024 + 16))

    page.get_by_role("link", name="New quiz").click()
    page.get_by_role("heading", name="New quiz").wait_for()
    page.locator("#f-title").fill("Pictures from the editor")
    page.locator("#f-questions-0-text").fill("Which fruit is orange?")
    for j, text in enumerate(["Orange", "Apple", "Pear", "Plum"]):
        page.locator(f"#f-questions-0-choices-{j}-text").fill(text)
    file_input = page.locator("#f-questions-0-image-file")
    # The picker takes pictures only, and no "capture": a phone offers its photo library too.
    expect(file_input).to_have_attribute("accept", "image/png,image/jpeg,image/webp,image/gif")
    assert file_input.get_attribute("capture") is None

    file_input.set_input_files(str(not_a_picture))
    error = page.locator("#f-questions-0-image-error")
    expect(error).to_contain_text("cannot be used")
    expect(error).to_contain_text("only PNG, JPEG, WebP and GIF")
    expect(page.locator("#f-questions-0-image")).to_have_attribute("aria-invalid", "true")
    shoot(page, "host-editor-picture-refused")
    file_input.set_input_files(str(too_big))
    expect(error).to_have_text("This file is larger than 5 MB. Choose a smaller picture.")

    file_input.set_input_files(str(photo))
    preview = page.locator(".question .picture-preview")
    expect(preview).to_be_visible()
    assert loaded(page, ".question .picture-preview")
    expect(error).to_have_text("")
    page.locator("#f-cover-file").set_input_files(str(cover))
    cover_preview = page.get_by_role(
        "img", name="Cover picture (shown while players join) (preview)"
    )
    expect(cover_preview).to_be_visible()
    page.locator("#f-settings-images_on_phones").check()
    page.get_by_role("button", name="Save quiz").click()
    expect(page.locator("#form-status")).to_contain_text("Saved")
    page.locator(".question .picture-preview").scroll_into_view_if_needed()
    shoot(page, "host-editor-pictures")

    quiz_id = re.search(r"/host/quizzes/([0-9a-f]+)$", page.url)
    assert quiz_id
    stored = api(page, "GET", f"/api/quizzes/{quiz_id.group(1)}")["quiz"]
    assert re.fullmatch(r"[0-9a-f]{64}", stored["questions"][0]["image"])
    assert re.fullmatch(r"[0-9a-f]{64}", stored["cover"])
    assert stored["settings"]["images_on_phones"] is True

    page.reload()
    expect(page.locator(".question .picture-preview")).to_be_visible()
    assert loaded(page, ".question .picture-preview")
    page.get_by_role("button", name="Remove picture of question 1").click()
    expect(page.locator(".question .picture-preview")).to_have_count(0)
    page.get_by_role("button", name="Save quiz").click()
    expect(page.locator("#form-status")).to_contain_text("Saved")
    stored = api(page, "GET", f"/api/quizzes/{quiz_id.group(1)}")["quiz"]
    assert "image" not in stored["questions"][0]
    assert stored["cover"]
