"""Streaming ZIP archives: entries are written through :mod:`zipfile` into a sink that hands the
bytes on as they are produced, so a response never holds the whole archive (only one entry's
chunk at a time).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator


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
    """The ZIP of ``(name, chunks)`` entries, in order, as a byte stream.

    Entries are stored, not deflated: JPEG and PNG do not compress further.
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, chunks in entries:
            with archive.open(name, mode="w") as member:
                for chunk in chunks:
                    member.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    yield sink.take()
