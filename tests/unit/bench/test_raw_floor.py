"""The raw floor's WebSocket handshake and framing (the parts that must match RFC 6455)."""

from __future__ import annotations

import struct

from bench.raw_floor import accept_key, encode_text_frame, parse_client_frames


def test_accept_key_matches_the_rfc_6455_example() -> None:
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_text_frames_use_the_shortest_length_encoding() -> None:
    assert encode_text_frame(b"hi") == b"\x81\x02hi"
    medium = encode_text_frame(b"x" * 300)
    assert medium[:4] == b"\x81\x7e" + struct.pack("!H", 300)
    large = encode_text_frame(b"x" * 70_000)
    assert large[:10] == b"\x81\x7f" + struct.pack("!Q", 70_000)


def _masked(payload: bytes, key: bytes, opcode: int = 0x1) -> bytes:
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    length = struct.pack("!B", 0x80 | n) if n < 126 else b"\xfe" + struct.pack("!H", n)
    return bytes([0x80 | opcode]) + length + key + body


def test_masked_client_frames_are_unmasked_and_consumed() -> None:
    buf = bytearray(_masked(b'{"type":"host"}', b"\x01\x02\x03\x04") + _masked(b"x" * 200, b"abcd"))
    assert parse_client_frames(buf) == [(0x1, b'{"type":"host"}'), (0x1, b"x" * 200)]
    assert buf == bytearray()


def test_a_partial_frame_stays_in_the_buffer_until_it_is_complete() -> None:
    frame = _masked(b"hello", b"\x09\x08\x07\x06", opcode=0x8)
    buf = bytearray(frame[:4])
    assert parse_client_frames(buf) == []
    buf += frame[4:]
    assert parse_client_frames(buf) == [(0x8, b"hello")]
