"""Nickname rules: normalisation, length in characters, invisible names, look-alikes, filter."""

from __future__ import annotations

import pytest
from tests.unit.core.core_builders import make_game

from partyquiz_core.errors import ConflictError, ValidationError
from partyquiz_core.game import Join, apply
from partyquiz_core.ids import DeviceId, PlayerId
from partyquiz_core.nicknames import NicknameFilter, nickname_keys, normalize_nickname

TECHNOLOGIST = "\U0001f469\u200d\U0001f4bb"  # woman, zero-width joiner, laptop
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"  # white flag, VS16, joiner, rainbow
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"


@pytest.mark.parametrize(
    "nickname",
    [
        TECHNOLOGIST,
        RAINBOW_FLAG,
        SCOTLAND,
        "1\ufe0f\u20e3",  # keycap one
        f"Ada {TECHNOLOGIST}{RAINBOW_FLAG}",
        "\U0001f44d" * 20,
        RAINBOW_FLAG * 16,
        FAMILY * 9,
    ],
)
def test_joined_emoji_are_one_character_each_and_welcome(nickname: str) -> None:
    assert normalize_nickname(nickname) == nickname


def test_twenty_characters_is_the_limit_whatever_their_code_points() -> None:
    assert normalize_nickname("x" * 20) == "x" * 20
    for too_long in ("x" * 21, "\U0001f44d" * 21, TECHNOLOGIST * 21):
        with pytest.raises(ValidationError, match="1 to 20"):
            normalize_nickname(too_long)
    with pytest.raises(ValidationError):
        normalize_nickname(RAINBOW_FLAG * 17)  # 17 characters, but 68 code points


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("  Ada  ", "Ada"),
        ("\uff21lice", "Alice"),  # fullwidth A
        ("\u210c\U0001d522\U0001d529\U0001d529\U0001d52c", "Hello"),  # styled letters
        ("Ada\u3000Lovelace", "Ada Lovelace"),  # ideographic space
        ("Ada \u00a0  Lovelace", "Ada Lovelace"),
        ("Zoe\u0308", "Zo\u00eb"),  # decomposed and composed spellings are one
        ("Nguy\u1ec5n", "Nguy\u1ec5n"),
        ("\uff83\uff7d\uff84", "\u30c6\u30b9\u30c8"),  # half-width katakana
    ],
)
def test_nicknames_are_stored_in_their_compatibility_normal_form(raw: str, stored: str) -> None:
    assert normalize_nickname(raw) == stored


def test_scripts_that_stack_a_few_marks_are_welcome() -> None:
    for nickname in ("\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd", "\u0915\u094d\u0937\u093f"):
        stored = normalize_nickname(nickname)
        assert normalize_nickname(stored) == stored


@pytest.mark.parametrize(
    "nickname",
    [
        "\u3164",  # Hangul filler
        "\u3164\u3164\u3164",
        "\u2800",  # braille blank
        "A\u2800B",
        "\uffa0",
        "\u115f\u1160",
        "\u00ad",
        "Ti\u00adm",
        "zero\u200bwidth",
        "a\u200db",  # a joiner outside an emoji
        "rtl\u202eevil",
        "\ufeffBOM",
        "\u034f",
        "a\u2028b",  # line separator
        "\u2029",
        "tab\tname",
        "bad\x00name",
        "\ue000private",
        "   ",
        "",
        "\u0301\u0301",
        "Z" + "\u0301" * 8,  # stacked combining marks
        "Z\u0351\u0352\u0353\u0354\u0355\u0356a",
    ],
)
def test_invisible_separator_and_mark_stacked_names_are_refused(nickname: str) -> None:
    with pytest.raises(ValidationError) as err:
        normalize_nickname(nickname)
    assert err.value.code == "invalid_nickname"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Alice", "\u0410lice"),  # Cyrillic A
        ("Alice", "\uff21lice"),  # fullwidth A
        ("Alice", "ALICE"),
        ("Alice", "AIice"),  # capital I for l
        ("Il", "il"),
        ("Bob", "B0b"),
        ("Sam", "Sarn"),
        ("paypal", "\u0440\u0430yp\u0430l"),  # Cyrillic r and a
    ],
)
def test_look_alike_nicknames_are_the_same_nickname(first: str, second: str) -> None:
    game = make_game(first)
    second_player = Join(player_id=PlayerId("p-new"), device_id=DeviceId("d2"), nickname=second)
    with pytest.raises(ConflictError) as err:
        apply(game.state, second_player, game.now)
    assert err.value.code == "nickname_taken"


@pytest.mark.parametrize(
    ("first", "second"), [("Zoe", "Zo\u00eb"), ("Ann", "Anna"), ("Ada L", "AdaL"), ("Jo", "J0e")]
)
def test_names_that_only_resemble_each_other_in_part_stay_distinct(first: str, second: str) -> None:
    assert nickname_keys(normalize_nickname(first)) != nickname_keys(normalize_nickname(second))


def test_the_word_filter_is_off_by_default() -> None:
    assert not NicknameFilter([])
    assert not NicknameFilter(["", "  ", "# only a comment"])
    assert not NicknameFilter([]).refuses("anything at all")


@pytest.mark.parametrize(
    ("nickname", "refused_"),
    [
        ("BadWord", True),
        ("bad word", True),
        ("b.a.d.w.o.r.d", True),
        ("\u0412\u0410DWORD", True),  # Cyrillic Ve and A
        ("I am badword", True),
        ("b\u00e4dw\u00f6rd", True),  # accents do not get a word past the list
        ("badwords", False),
        ("goodword", False),
        ("hateful", True),
        ("ihate", False),
        ("Ada", False),
    ],
)
def test_the_word_filter_refuses_listed_words_however_they_are_written(
    nickname: str, refused_: bool
) -> None:
    words = NicknameFilter.from_text("# a comment line\nbadword\n\nhate*\n")
    assert words.refuses(normalize_nickname(nickname)) is refused_
