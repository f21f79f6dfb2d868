"""Read any supported astrometry file: format detection and dispatch to the readers.

Formats: ``obs80`` (MPC 80-column), ``ades_psv`` (ADES pipe-separated), ``ades_xml`` (ADES XML,
2017 and 2022). Every reader returns :class:`~neodefense.observations.batch.ParseResult` objects;
``iter_read`` streams a file of any size in constant memory.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from neodefense.observations.batch import ParseResult

FORMATS = ("obs80", "ades_psv", "ades_xml")
DEFAULT_CHUNK_BYTES = 8 << 20


def detect_format(head: bytes) -> str:
    """Guess the format from the first bytes of a file (obs80 unless it looks like ADES)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "ades_xml"
    for raw_line in text.splitlines()[:50]:
        line = raw_line.strip()
        if line.startswith(b"# version") or line.startswith(b"#version"):
            return "ades_psv"
        if b"|" in line and (b"stn" in line or b"obsTime" in line):
            return "ades_psv"
    return "obs80"


def _parser(fmt: str):
    if fmt == "obs80":
        from neodefense.observations import obs80

        return obs80.parse, obs80.iter_parse
    if fmt == "ades_psv":
        from neodefense.observations import ades

        return ades.parse_psv, ades.iter_parse_psv
    if fmt == "ades_xml":
        from neodefense.observations import ades

        return ades.parse_xml, ades.iter_parse_xml
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")


def read(source: bytes | str | os.PathLike, file: str | None = None,
         fmt: str | None = None) -> ParseResult:
    """Parse a whole file (path) or bytes already in memory."""
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        file = file or "<bytes>"
    else:
        path = Path(source)
        data = path.read_bytes()
        file = file or str(path)
    fmt = fmt or detect_format(data[:65536])
    parse, _ = _parser(fmt)
    return parse(data, file)


def iter_read(source: str | os.PathLike | BinaryIO | bytes, file: str | None = None,
              fmt: str | None = None,
              chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[ParseResult]:
    """Stream a file as a sequence of ParseResults, holding about ``chunk_bytes`` at a time."""
    close = False
    if isinstance(source, bytes | bytearray):
        stream: BinaryIO = io.BytesIO(source)
        file = file or "<bytes>"
    elif isinstance(source, str | os.PathLike):
        stream = open(source, "rb")  # noqa: SIM115 - closed below
        file = file or str(source)
        close = True
    else:
        stream = source
        file = file or getattr(source, "name", "<stream>")
    try:
        if fmt is None:
            head = stream.read(65536)
            fmt = detect_format(head)
            stream = _Prefixed(head, stream)
        _, iter_parse = _parser(fmt)
        yield from iter_parse(stream, file, chunk_bytes=chunk_bytes)
    finally:
        if close:
            stream.close()


class _Prefixed(io.RawIOBase):
    """A stream that first returns ``head`` and then the rest of ``stream`` (used after sniffing)."""

    def __init__(self, head: bytes, stream: BinaryIO):
        self._head = head
        self._stream = stream
        self.name = getattr(stream, "name", "<stream>")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        self._stream.close()
        super().close()
