"""Nickname rules: what a player may be called, and when two nicknames count as the same.

Owns normalisation (NFKC, trimmed, one space between words), the length in grapheme clusters
(a joined emoji such as a technologist or a rainbow flag is one), the refusal of invisible,
separator-only and mark-stacked names, the confusable-folded keys that uniqueness and the word
filter compare, and the word filter itself. Pure: the look-alike table is the Unicode
confusables data shipped with the ``confusable_homoglyphs`` package, read once on first use.

Two nicknames are the same when either of their keys is equal: the first folds look-alikes
case-sensitively and then case ("AIice" with a capital I is "Alice"), the second folds case
first ("Il" is "il"). A key is for comparing only, never for display.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

import regex

from partyquiz_core.errors import ValidationError

MAX_GRAPHEMES = 20
"""Longest nickname, in user-perceived characters (grapheme clusters)."""
MAX_CODE_POINTS = 64
"""Longest nickname in code points (what results storage holds); a joined emoji takes 2-10."""
MAX_MARKS_PER_CHARACTER = 4
"""Most combining marks one character may carry (Vietnamese or Hebrew need two or three)."""

_CLUSTER = regex.compile(r"\X")
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}]")
_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}")
_IGNORABLE_RUN = regex.compile(r"\p{Default_Ignorable_Code_Point}+")
# Join and presentation controls that belong inside an emoji: zero-width joiner, variation
# selectors 15/16 and the tag characters of subdivision flags.
_EMOJI_CONTROLS = frozenset(
    {"\u200d", "\ufe0e", "\ufe0f", *(chr(c) for c in range(0xE0020, 0xE0080))}
)
_KEYCAP = "\u20e3"
# Shown as blank space yet neither a space nor ignorable by Unicode's properties.
_BLANK = frozenset({"\u2800", "\u3164", "\u115f", "\u1160", "\uffa0"})
_SPACE = " "


class NicknameKeys(NamedTuple):
    """The two folded forms a nickname is compared on (see the module docstring)."""

    look_alike: str
    case_first: str


def _refuse(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_nickname")


# A join's nickname is normalised where the join arrives and again where its game applies it,
# often the same process: the second time is looked up (refusals are not kept). A few
# thousand joins in flight fit; a frame bounds each nickname to 256 characters.
@functools.lru_cache(maxsize=1 << 12)
def normalize_nickname(raw: str) -> str:
    """Return ``raw`` as stored and shown, or raise ``ValidationError`` (``invalid_nickname``).

    NFKC turns full-width and styled letters into plain ones; every kind of space becomes one
    ordinary space between words; line and paragraph separators, control, private-use and
    unassigned characters, invisible fillers and more than ``MAX_MARKS_PER_CHARACTER`` stacked
    combining marks are refused; 1 to ``MAX_GRAPHEMES`` characters must remain, at least one
    of them visible.
    """
    text = unicodedata.normalize("NFKC", raw)
    chars: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Zs":
            chars.append(_SPACE)
        elif category in ("Zl", "Zp"):
            raise _refuse("a nickname is one line: no line or paragraph separators")
        elif category in ("Cc", "Co", "Cs", "Cn"):
            raise _refuse("a nickname cannot contain control or unassigned characters")
        else:
            chars.append(char)
    nickname = _SPACE.join(part for part in "".join(chars).split(_SPACE) if part)
    clusters = _CLUSTER.findall(nickname)
    if not 1 <= len(clusters) <= MAX_GRAPHEMES or len(nickname) > MAX_CODE_POINTS:
        raise _refuse(f"a nickname is 1 to {MAX_GRAPHEMES} characters")
    visible = False
    for cluster in clusters:
        visible = _check_cluster(cluster) or visible
    if not visible:
        raise _refuse("a nickname needs at least one visible character")
    return nickname


def _check_cluster(cluster: str) -> bool:
    """Refuse a character hidden controls or stacked marks could abuse; return whether it shows."""
    emoji = _EMOJI.search(cluster) is not None or cluster.endswith(_KEYCAP)
    marks = 0
    shows = False
    for char in cluster:
        if char in _BLANK:
            raise _refuse("a nickname cannot contain invisible characters")
        if _IGNORABLE.match(char):
            if emoji and char in _EMOJI_CONTROLS:
                continue
            raise _refuse("a nickname cannot contain invisible characters")
        category = unicodedata.category(char)
        if category.startswith("C"):  # format characters left: bidi and other overrides
            raise _refuse("a nickname cannot contain invisible characters")
        if category.startswith("M"):
            if char != _KEYCAP:
                marks += 1
            continue
        shows = shows or char != _SPACE
    if marks > MAX_MARKS_PER_CHARACTER:
        raise _refuse(f"a character carries at most {MAX_MARKS_PER_CHARACTER} accents or marks")
    return shows


@functools.cache
def _fold_table() -> dict[int, str | None]:
    """A ``str.translate`` table: each confusable character to the one string every look-alike
    of it maps to, and each default-ignorable character to nothing.

    The shipped data is Unicode's confusables table as an undirected graph: a prototype is
    linked to each of its look-alikes and a look-alike to its prototype alone. A pair linked
    only to each other maps to the smaller of the two, which keeps equality what it should be.
    """
    data = json.loads(
        importlib.resources.files("confusable_homoglyphs")
        .joinpath("confusables.json")
        .read_text(encoding="utf-8")
    )

    def clean(text: str) -> str:  # the table wraps right-to-left text in direction marks
        return text.replace("\u200e", "").replace("\u200f", "")

    graph: dict[str, list[str]] = {}
    for key, entries in data.items():
        graph.setdefault(clean(key), []).extend(clean(entry["c"]) for entry in entries)
    table: dict[int, str | None] = {}
    for char, linked in graph.items():
        if len(char) != 1 or len(linked) != 1:
            continue  # a prototype maps to itself
        (other,) = linked
        if len(other) > 1 or len(graph.get(other, ())) > 1:
            table[ord(char)] = other
        elif other != char:
            table[ord(char)] = min(char, other)
    # Default-ignorable code points live in planes 0, 1 and 14 only.
    planes = (range(0x20000), range(0xE0000, 0xE1000))
    every = "".join(chr(c) for plane in planes for c in plane if not 0xD800 <= c < 0xE000)
    for run in _IGNORABLE_RUN.finditer(every):
        for char in run.group():
            table[ord(char)] = None
    return table


def _skeleton(text: str) -> str:
    """Fold look-alikes (UTS #39's skeleton: NFD, map each character, NFD again)."""
    table = _fold_table()
    folded = unicodedata.normalize("NFD", text)
    for _ in range(3):  # a mapped string can hold characters that map again
        mapped = unicodedata.normalize("NFD", folded.translate(table))
        if mapped == folded:
            break
        folded = mapped
    return folded


@functools.lru_cache(maxsize=1 << 16)
def nickname_keys(nickname: str) -> NicknameKeys:
    """Return the folded forms a (normalised) nickname is compared on."""
    return NicknameKeys(
        look_alike=_skeleton(_skeleton(nickname).casefold()),
        case_first=_skeleton(_skeleton(nickname.casefold()).casefold()),
    )


class NicknameFilter:
    """Refuses nicknames that contain a listed word; empty (the default) refuses nothing.

    A listed word matches a whole word of the nickname, or the whole nickname with its spaces
    and punctuation taken out, compared without case, accents and look-alikes: the entry
    ``badword`` refuses "BadWord", "bad word", "b.a.d.w.o.r.d" and a Cyrillic look-alike, but
    not "badwords". A ``*`` at either end of an entry also matches inside a longer word at
    that end (``badword*`` refuses "badwords").
    """

    def __init__(self, words: Iterable[str]) -> None:
        self._exact: set[str] = set()
        self._patterns: list[regex.Pattern[str]] = []
        for word in words:
            word = word.strip()
            if not word or word.startswith("#"):
                continue
            prefix, suffix = word.startswith("*"), word.endswith("*")
            core = _fold_word(word.strip("*"))
            if not core:
                continue
            if prefix or suffix:
                pattern = regex.escape(core)
                self._patterns.append(
                    regex.compile(("" if prefix else r"\b") + pattern + ("" if suffix else r"\b"))
                )
            else:
                self._exact.add(core)

    @classmethod
    def from_text(cls, text: str) -> NicknameFilter:
        """Build a filter from a word list: one word per line, ``#`` starts a comment line."""
        return cls(text.splitlines())

    def __bool__(self) -> bool:
        return bool(self._exact or self._patterns)

    def refuses(self, nickname: str) -> bool:
        """Whether ``nickname`` (normalised) contains a listed word."""
        if not self:
            return False
        folded = _fold_word(nickname)
        words = regex.findall(r"[\p{L}\p{N}]+", folded)
        squashed = "".join(words)
        if squashed in self._exact or any(word in self._exact for word in words):
            return True
        spaced = " ".join(words)
        return any(pattern.search(spaced) or pattern.search(squashed) for pattern in self._patterns)


def _fold_word(text: str) -> str:
    folded = _skeleton(_skeleton(unicodedata.normalize("NFKC", text)).casefold())
    # Marks are dropped for matching words, so an accent does not get a word past the list.
    return "".join(c for c in folded if not unicodedata.category(c).startswith("M"))
