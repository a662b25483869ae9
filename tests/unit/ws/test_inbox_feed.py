"""The shared inbox read's bookkeeping of one game: entries fetched for its owner, handed out
once each, in id order, whatever a read fetched again."""

from __future__ import annotations

from partyquiz_ws.redis_backend import _entries, _Feed


def _ids(entries: list[tuple[str, bytes]]) -> list[str]:
    return [entry_id for entry_id, _ in entries]


def test_entries_fetched_again_are_kept_once_and_handed_out_in_order() -> None:
    feed = _Feed("inbox", consumed="5-0", tail="5-0")
    feed.accept([("4-0", b"old"), ("5-0", b"old"), ("6-0", b"a"), ("6-1", b"b")])
    assert feed.arrived.is_set()
    feed.accept([("6-1", b"b"), ("7-0", b"c")])  # a read that overlaps the last one
    feed.accept([("3-0", b"old")])  # nothing new
    feed.accept([])
    assert feed.tail == "7-0"
    assert _ids(feed.take(2)) == ["6-0", "6-1"]
    assert feed.consumed == "6-1"
    assert _ids(feed.take(10)) == ["7-0"]
    assert feed.consumed == "7-0"
    assert feed.take(10) == []
    assert feed.consumed == "7-0"


def test_ids_compare_as_numbers_not_text() -> None:
    feed = _Feed("inbox", consumed="9-0", tail="9-9")
    feed.accept([("9-10", b"a"), ("10-0", b"b")])
    assert _ids(feed.take(5)) == ["9-10", "10-0"]


def test_an_xread_reply_is_read_as_the_parser_gives_it_over_resp2_and_resp3() -> None:
    entries = [
        [b"1-0", [b"c", b"one"]],
        [b"2-0", [b"x", b"y", b"c", b"two"]],  # the command among other fields
        [b"3-0", [b"x", b"y"]],  # no command: skipped
        [b"4-0", None],
    ]
    expected = {"pq:{g}:inbox": [("1-0", b"one"), ("2-0", b"two")]}
    assert _entries([[b"pq:{g}:inbox", entries]]) == expected  # RESP2: [stream, entries] pairs
    assert _entries({b"pq:{g}:inbox": entries}) == expected  # RESP3: a map of streams
    assert _entries(None) == {}  # nothing came
