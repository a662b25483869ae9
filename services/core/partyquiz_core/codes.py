"""Join codes: the short code players type on their phones to find a game.

Owns the alphabet and the format (6 characters, no look-alikes such as 0/O, 1/I/L). It does not
know which codes are taken: the caller checks for collisions and asks again. Randomness comes
in as a ``random.Random`` (use ``random.SystemRandom()`` in production).
"""

from __future__ import annotations

import random

from partyquiz_core.errors import ValidationError
from partyquiz_core.ids import JoinCode

JOIN_CODE_LENGTH = 6
# Upper-case letters without I, L, O and digits without 0, 1, 2, 5, 6, 8 (I/L/1, O/0, Z/2, S/5,
# G/6, B/8 look alike on a projector). 27 symbols, so 27**6 = 387 million codes.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ3479"
# Characters players add that mean nothing: spaces and dashes from codes shown as "ABC DEF".
_IGNORED = str.maketrans("", "", " -\t")


def generate_join_code(rng: random.Random) -> JoinCode:
    """Return a fresh random code; the caller retries while it collides with a live game."""
    return JoinCode("".join(rng.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH)))


def normalize_join_code(text: str) -> JoinCode:
    """Return the canonical form of a typed code (case, spaces and dashes ignored).

    Raises ``ValidationError`` (code ``invalid_join_code``) when it cannot be a join code.
    """
    code = text.translate(_IGNORED).upper()
    if len(code) != JOIN_CODE_LENGTH or any(c not in JOIN_CODE_ALPHABET for c in code):
        raise ValidationError(
            f"a join code is {JOIN_CODE_LENGTH} characters from {JOIN_CODE_ALPHABET}",
            code="invalid_join_code",
        )
    return JoinCode(code)


def is_join_code(text: str) -> bool:
    """Tell whether ``text`` is already a canonical join code."""
    return len(text) == JOIN_CODE_LENGTH and all(c in JOIN_CODE_ALPHABET for c in text)
