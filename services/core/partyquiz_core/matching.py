"""How a typed answer is compared with the accepted ones: case, accents and spaces do not count.

Owns the one normalisation both sides go through (the quiz's accepted answers when it is
authored, a player's text when it arrives), so "Zürich", "zurich" and " ZU RICH " are the same
answer. Everything else counts: letters, digits and punctuation. Pure string work, no I/O.
"""

from __future__ import annotations

import unicodedata


def answer_key(text: str) -> str:
    """Return the form of ``text`` that typed answers are compared in.

    Compatibility forms are unified (NFKC: full-width letters, ligatures), accents and other
    combining marks are dropped, case is folded (``ß`` is ``ss``) and every space is removed,
    invisible ones (zero-width spaces and joiners) included.
    """
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKC", bare.casefold())
    return "".join(c for c in folded if not c.isspace() and unicodedata.category(c) != "Cf")
