"""Tiny image files for upload tests, made in memory in the formats and modes clients send."""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def rgb(size=(24, 16), color=(200, 40, 10)) -> Image.Image:
    return Image.new("RGB", size, color)


def jpeg(size=(24, 16), color=(200, 40, 10)) -> bytes:
    return encode(rgb(size, color), "JPEG", quality=90)


def png(size=(24, 16), color=(200, 40, 10)) -> bytes:
    return encode(rgb(size, color), "PNG")


def noise_png(side: int, seed: int = 0) -> bytes:
    """An incompressible RGB PNG of about 3 * side**2 bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG", compress_level=0)


def tiny_png(seed: int, size: int = 32) -> bytes:
    """A small random-looking RGB PNG, the same for the same seed: the inputs of the tests' and the
    benchmarks' jobs (the API normalises and stores it like any upload)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size * size)])
    return encode(image, "PNG")


def left_right(size=(20, 10)) -> Image.Image:
    """Red left half, blue right half: shows where a rotation moved things."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return image


def exif_rotated_jpeg(orientation: int = 6) -> bytes:
    """A 20x10 JPEG whose EXIF says "rotate" (6: the camera was turned 90° clockwise)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(left_right(), "JPEG", quality=95, exif=exif.tobytes())


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: bytes | None = None) -> bytes:
    """A PNG written chunk by chunk: 16-bit RGB, or a huge header over a stream of zeros (a bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    if rows is None:  # all-zero scanlines, compressed as they are produced
        channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
        line = b"\x00" * (1 + (width * channels * bit_depth + 7) // 8)
        packer = zlib.compressobj(9)
        idat = b"".join(packer.compress(line) for _ in range(height)) + packer.flush()
    else:
        idat = zlib.compress(rows)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def png16_rgb(width: int = 4, height: int = 2, value=(40000, 1000, 65535)) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one)."""
    pixel = struct.pack(">HHH", *value)
    rows = b"".join(b"\x00" + pixel * width for _ in range(height))
    return raw_png(width, height, 16, 2, rows)


def bomb_png(side: int) -> bytes:
    """A small file declaring side x side 1-bit pixels."""
    return raw_png(side, side, 1, 0)


def noise_jpeg(side: int = 64, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG", quality=90)
