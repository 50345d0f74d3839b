"""A JPEG without its metadata, losslessly: the segments a decoder needs, byte for byte, and no others.

Why: re-encoding a 100 KB photo as PNG took ~35 ms of CPU per image and stored 640 KB; it was
two thirds of a submission's cost (``bench/submit_bench.py``). An 8-bit RGB JPEG that needs no
rotation decodes to exactly the pixels its PNG would hold, so :mod:`api.uploads` keeps it as a
JPEG and only drops what the engines never read and a client should not leak: EXIF (camera,
GPS position), XMP, ICC profiles, comments, vendor segments, and anything after the end marker.

Kept: SOI, the JFIF header (APP0) and Adobe's colour-transform flag (APP14, which changes how the
decoder converts colours), tables (DQT, DHT, DAC, DRI), frame and scan headers with their entropy-
coded data, and EOI. A file whose structure is not understood here yields None, and the caller
falls back to decoding and re-encoding it.
"""

from __future__ import annotations

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
APP0, APP14, COM = 0xE0, 0xEE, 0xFE
# Segments kept only with their standard identifier: a vendor's APP0 or APP14 is dropped too.
KEEP_APP = {APP0: b"JFIF\x00", APP14: b"Adobe"}


def _standalone(marker: int) -> bool:
    """Markers without a length: restart markers and TEM."""
    return 0xD0 <= marker <= 0xD7 or marker == 0x01


def _keep(marker: int, segment: bytes) -> bool:
    if marker in KEEP_APP:
        return segment[4:].startswith(KEEP_APP[marker])
    return not (0xE0 <= marker <= 0xEF or marker == COM)


def _scan_end(data: bytes, pos: int) -> int:
    """Where the entropy-coded data starting at ``pos`` ends: the next marker that is not a
    stuffed 0xFF00, a restart marker or a fill byte."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or _standalone(following) or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def strip_metadata(data: bytes) -> bytes | None:
    """``data`` with only the segments a decoder needs; None when it is not a well-formed JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    out, pos = [data[:2]], 2
    while pos + 1 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == EOI:
            out.append(data[pos : pos + 2])
            return b"".join(out)
        if _standalone(marker):
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        if _keep(marker, data[pos:end]):
            out.append(data[pos:end])
        pos = end
        if marker == SOS:
            scan_end = _scan_end(data, pos)
            out.append(data[pos:scan_end])
            pos = scan_end
    return None  # no end marker: truncated
