"""Quiz files with pictures against real databases: an export carries its pictures (format 2)
and restores them on another installation; format 1 files still import; a bad picture inside
a file is refused naming the question, with nothing imported; copies and deletions never
break another quiz's pictures."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image
from tests.integration.web.conftest import MakeWeb, Web, sample_quiz
from tests.integration.web.test_web_images import png
from tests.integration.web.test_web_quiz_pictures import upload, with_pictures

from partyquiz_web.migrating import upgrade_to_head


async def quiz_with_pictures(web: Web, auth: dict[str, str]) -> tuple[str, str, str]:
    cover, photo = await upload(web, auth, (120, 0, 0)), await upload(web, auth, (0, 0, 120))
    created = await web.client.post(
        "/api/quizzes", json=with_pictures(cover, photo, None, photo), headers=auth
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"]), cover, photo


async def another_installation(make_web: MakeWeb, tmp_path: Path) -> Web:
    url = f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}"
    await upgrade_to_head(url)
    return await make_web(url)


async def test_an_export_with_pictures_restores_them_on_another_installation(
    web: Web, make_web: MakeWeb, tmp_path: Path
) -> None:
    auth = await web.register_and_login()
    quiz_id, cover, photo = await quiz_with_pictures(web, auth)
    exported = await web.client.get(f"/api/quizzes/{quiz_id}/export", headers=auth)
    assert exported.status_code == 200
    document = exported.json()
    assert document["format_version"] == 2
    assert set(document["images"]) == {cover, photo}
    assert document["images"][photo]["media_type"] == "image/png"
    served = await web.client.get(f"/images/{photo}")
    assert base64.b64decode(document["images"][photo]["data"]) == served.content

    elsewhere = await another_installation(make_web, tmp_path)
    there = await elsewhere.register_and_login("other@example.org")
    imported = await elsewhere.client.post(
        "/api/quizzes/import", content=exported.content, headers=there
    )
    assert imported.status_code == 201, imported.text
    quiz = imported.json()["quiz"]
    assert (quiz["cover"], quiz["questions"][0]["image"]) == (cover, photo)
    shown = await elsewhere.client.get(f"/images/{photo}")
    assert shown.status_code == 200
    assert shown.content == served.content
    # Exported again there, it is the same file.
    again = await elsewhere.client.get(
        f"/api/quizzes/{imported.json()['id']}/export", headers=there
    )
    assert {k: v for k, v in again.json().items() if k != "title"} == {
        k: v for k, v in document.items() if k != "title"
    }


async def test_importing_pictures_already_stored_keeps_one_copy(web: Web) -> None:
    auth = await web.register_and_login()
    quiz_id, _, photo = await quiz_with_pictures(web, auth)
    exported = await web.client.get(f"/api/quizzes/{quiz_id}/export", headers=auth)
    for _ in range(2):
        imported = await web.client.post(
            "/api/quizzes/import", content=exported.content, headers=auth
        )
        assert imported.status_code == 201, imported.text
        assert imported.json()["quiz"]["questions"][0]["image"] == photo
    again = await web.client.post("/api/images", content=png(colour=(0, 0, 120)), headers=auth)
    assert again.status_code == 200  # stored already: one copy for every quiz showing it


async def test_a_picture_whose_bytes_change_on_import_is_renamed_in_the_quiz(web: Web) -> None:
    # A file written by hand (or by another tool) may carry any PNG; it is re-encoded like an
    # upload, and the quiz then names what was stored.
    auth = await web.register_and_login()
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(out, "PNG", pnginfo=None, compress_level=0)
    quiz: dict[str, Any] = sample_quiz("Hand-written")
    quiz["format_version"] = 2
    quiz["questions"][1]["image"] = "ab" * 32
    quiz["images"] = {
        "ab" * 32: {"media_type": "image/png", "data": base64.b64encode(out.getvalue()).decode()}
    }
    imported = await web.client.post("/api/quizzes/import", json=quiz, headers=auth)
    assert imported.status_code == 201, imported.text
    stored = imported.json()["quiz"]["questions"][1]["image"]
    assert stored != "ab" * 32
    shown = await web.client.get(f"/images/{stored}")
    with Image.open(io.BytesIO(shown.content)) as image:
        assert image.size == (40, 30)


async def test_a_format_1_file_still_imports(web: Web) -> None:
    auth = await web.register_and_login()
    imported = await web.client.post("/api/quizzes/import", json=sample_quiz("Old"), headers=auth)
    assert imported.status_code == 201, imported.text
    exported = await web.client.get(f"/api/quizzes/{imported.json()['id']}/export", headers=auth)
    assert exported.json()["format_version"] == 1  # no pictures: a file every version reads
    assert "images" not in exported.json()


async def test_a_bad_picture_in_a_file_is_refused_naming_the_question_and_nothing_is_kept(
    web: Web,
) -> None:
    auth = await web.register_and_login()
    good = base64.b64encode(png(colour=(1, 2, 3))).decode()
    quiz: dict[str, Any] = sample_quiz("Broken pictures")
    quiz["format_version"] = 2
    quiz["cover"] = "c" * 64
    quiz["questions"][0]["image"] = "a" * 64
    quiz["questions"][2]["image"] = "b" * 64
    quiz["images"] = {
        "a" * 64: {"media_type": "image/png", "data": good},
        "b" * 64: {"media_type": "image/png", "data": "not base64!"},
        "c" * 64: {"media_type": "image/png", "data": base64.b64encode(b"plain text").decode()},
    }
    refused = await web.client.post("/api/quizzes/import", json=quiz, headers=auth)
    assert refused.status_code == 422, refused.text
    errors = [(e["path"], e["message"]) for e in refused.json()["errors"]]
    assert errors == [
        ("questions.2.image", "question 3's picture in the file is not valid base64"),
        (
            "cover",
            "the cover in the file cannot be used: "
            "only PNG, JPEG, WebP and GIF images can be uploaded",
        ),
    ]
    assert (await web.client.get("/api/quizzes", headers=auth)).json() == []
    # Not even the good picture was kept.
    first = await web.client.post("/api/images", content=png(colour=(1, 2, 3)), headers=auth)
    assert first.status_code == 201

    quiz["images"]["b" * 64]["data"] = good
    del quiz["images"]["c" * 64]
    missing = await web.client.post("/api/quizzes/import", json=quiz, headers=auth)
    assert missing.status_code == 422
    assert [e["path"] for e in missing.json()["errors"]] == ["cover"]
    assert (await web.client.get("/api/quizzes", headers=auth)).json() == []


async def test_a_copy_keeps_its_pictures_and_deleting_either_quiz_never_breaks_the_other(
    web: Web,
) -> None:
    # Pictures are stored once by content and shared by every quiz that shows them; deleting a
    # quiz leaves them in place.
    auth = await web.register_and_login()
    quiz_id, cover, photo = await quiz_with_pictures(web, auth)
    copy = await web.client.post(f"/api/quizzes/{quiz_id}/duplicate", headers=auth)
    assert copy.status_code == 201
    assert copy.json()["quiz"]["cover"] == cover
    assert copy.json()["quiz"]["questions"][0]["image"] == photo
    assert (await web.client.delete(f"/api/quizzes/{quiz_id}", headers=auth)).status_code == 204
    for digest in (cover, photo):
        assert (await web.client.get(f"/images/{digest}")).status_code == 200
    exported = await web.client.get(f"/api/quizzes/{copy.json()['id']}/export", headers=auth)
    assert set(exported.json()["images"]) == {cover, photo}


async def test_a_file_larger_than_the_import_limit_is_refused(web: Web) -> None:
    auth = await web.register_and_login()
    headers = {**auth, "Content-Type": "application/json"}
    refused = await web.client.post(
        "/api/quizzes/import", content=b" " * (32 * 1024 * 1024 + 1), headers=headers
    )
    assert refused.status_code == 413
