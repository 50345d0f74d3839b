"""Streaming ZIP archives: entries are written through :mod:`zipfile` into a sink that hands the
bytes on as they are produced, so a response never holds the whole archive (only one entry's
chunk at a time).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator

# zlib level 1: the entries are JPEG/PNG, already compressed; deflate is here for the framing.
COMPRESS_LEVEL = 1


class _Sink(io.RawIOBase):
    """A write-only, unseekable file: zipfile then writes data descriptors instead of seeking back."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def stream(entries: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
    """Entries are deflated although JPEG and PNG barely compress: an unseekable stream puts each
    entry's sizes in a data descriptor after its data, and a streaming reader (Java's
    ZipInputStream, for one) can find the end of a *deflated* entry on its own but refuses a
    stored one. A low level keeps the CPU cost small."""
    sink = _Sink()
    with zipfile.ZipFile(
        sink, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
    ) as archive:
        for name, chunks in entries:
            with archive.open(name, mode="w") as member:
                for chunk in chunks:
                    member.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    yield sink.take()
