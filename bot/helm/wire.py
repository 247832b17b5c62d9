"""Frames between the renderer and its child process: a JSON header and a byte body.

`[4-byte header length][4-byte body length][header JSON][body]`, big-endian. A chart's
files travel as the body, so nothing is base64-encoded or written to disk.
"""

from __future__ import annotations

import struct
from typing import IO, Any

import orjson

_LENGTHS = struct.Struct(">II")


class FrameTooLarge(Exception):
    pass


def write_frame(stream: IO[bytes], header: dict[str, Any], body: bytes = b"") -> None:
    data = orjson.dumps(header)
    stream.write(_LENGTHS.pack(len(data), len(body)))
    stream.write(data)
    if body:
        stream.write(body)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    chunks = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: IO[bytes], limit: int) -> tuple[dict[str, Any], bytes] | None:
    """The next frame, or None at the end of the stream. A frame larger than `limit`
    raises FrameTooLarge before it is read."""
    lengths = _read_exactly(stream, _LENGTHS.size)
    if lengths is None:
        return None
    header_size, body_size = _LENGTHS.unpack(lengths)
    if header_size + body_size > limit:
        raise FrameTooLarge(f"{header_size + body_size} bytes")
    data = _read_exactly(stream, header_size)
    body = _read_exactly(stream, body_size) if body_size else b""
    if data is None or body is None:
        return None
    header = orjson.loads(data)
    if not isinstance(header, dict):
        raise ValueError("frame header is not an object")
    return header, body
