"""Join codes: format, alphabet, normalisation of what players type."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partyquiz_core.codes import (
    JOIN_CODE_ALPHABET,
    JOIN_CODE_LENGTH,
    generate_join_code,
    is_join_code,
    normalize_join_code,
)
from partyquiz_core.errors import ValidationError


def test_codes_are_six_unambiguous_characters() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        code = generate_join_code(rng)
        assert len(code) == JOIN_CODE_LENGTH == 6
        assert is_join_code(code)
    assert not set(JOIN_CODE_ALPHABET) & set("0O1IL")


def test_the_same_seed_gives_the_same_codes_and_codes_rarely_repeat() -> None:
    assert [generate_join_code(random.Random(1)) for _ in range(3)] == [
        generate_join_code(random.Random(1)) for _ in range(3)
    ]
    rng = random.Random(2)
    codes = {generate_join_code(rng) for _ in range(5000)}
    assert len(codes) > 4990


@pytest.mark.parametrize("typed", ["abc def", "ABC-DEF", " abcdef ", "AbCdEf"])
def test_typed_codes_are_normalised(typed: str) -> None:
    assert normalize_join_code(typed) == "ABCDEF"


@pytest.mark.parametrize("typed", ["", "ABCDE", "ABCDEFG", "ABCDE0", "ABCDEI", "ABC!EF", "ÄBCDEF"])
def test_impossible_codes_are_refused(typed: str) -> None:
    with pytest.raises(ValidationError) as err:
        normalize_join_code(typed)
    assert err.value.code == "invalid_join_code"


@given(st.randoms(use_true_random=False))
def test_every_generated_code_normalises_to_itself(rng: random.Random) -> None:
    code = generate_join_code(rng)
    assert normalize_join_code(code.lower()) == code
