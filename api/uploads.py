"""Upload validation: every image is decoded with Pillow and normalised to an RGB PNG before anything is stored.

Checks, in order, each failing with an error that names the form field:

1. bytes per file (read at most the limit + 1 bytes, so an oversize file is never held whole);
2. the format, by content and not by name or header: JPEG, PNG or WebP only;
3. the pixel count from the header, *before* decoding (decompression bombs);
4. the shape: an aspect ratio no engine can resize to (``check_image_shape``; 422);
5. a full decode (truncated or corrupt files fail here).

The decoded image then gets its EXIF orientation applied and is converted to 8-bit RGB (CMYK,
grayscale, palette, alpha and 16-bit images) and stored as a PNG, so engines see one kind of
input. One exception, for speed: an 8-bit RGB JPEG that needs no rotation already *is* that input,
so it is stored as it came minus its metadata (:func:`api.jpeg.strip_metadata`: no EXIF, GPS,
ICC or comments), after a full decode of exactly those bytes. Same pixels, a sixth of the bytes,
and no 35 ms PNG encode per image.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from api.jpeg import strip_metadata
from stylequeue.config import ApiConfig
from stylequeue.errors import ValidationError
from stylequeue.params.images import check_image_shape

FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
# Modes holding more than 8 bits per sample: scaled down, not clipped (Pillow's convert clips).
WIDE_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# EXIF orientation values that leave the image as it is stored.
UPRIGHT = (None, 0, 1)


class BadRequest(ValidationError):
    """A required part is missing, empty or cannot be decoded (HTTP 400)."""

    code = "bad_request"


class TooLarge(ValidationError):
    """A file, the request or an image's pixel count is over its limit (HTTP 413)."""

    code = "too_large"


class UnsupportedImage(ValidationError):
    """The file is not a JPEG, PNG or WebP image (HTTP 415)."""

    code = "unsupported_media_type"


@dataclass(frozen=True)
class Upload:
    """An accepted image: the normalised file (RGB PNG, or an upright RGB JPEG as sent) and what it was."""

    data: bytes
    width: int
    height: int
    source_format: str  # jpeg, png or webp
    source_mode: str  # Pillow mode before conversion (CMYK, P, I;16 …)
    source_bytes: int
    stored_format: str = "png"  # png or jpeg

    @property
    def media_type(self) -> str:
        return f"image/{self.stored_format}"

    @property
    def suffix(self) -> str:
        return ".jpg" if self.stored_format == "jpeg" else ".png"


def _open(data: bytes, field: str, limits: ApiConfig) -> Image.Image:
    """Identify the format and check the pixel count, without decoding the pixels yet."""
    try:
        with warnings.catch_warnings():
            # Our own limit (below) decides; Pillow's global one only as a last resort.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except UnidentifiedImageError:
        raise UnsupportedImage("not a JPEG, PNG or WebP image", field=field) from None
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"image is too large to decode ({exc})", field=field) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadRequest(f"cannot read the image header: {exc}", field=field) from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise TooLarge(
            f"image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}",
            field=field,
        )
    if width < 1 or height < 1:
        raise BadRequest("image has no pixels", field=field)
    # EXIF orientation may swap the sides later, but not their ratio: checking now saves a decode.
    check_image_shape(width, height, field)
    return image


def _decode(image: Image.Image, field: str) -> None:
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadRequest(f"image is truncated or corrupt ({exc})", field=field) from None


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB: alpha composited on white, 16-bit scaled, CMYK/grayscale/palette converted."""
    if image.mode == "RGB":
        return image
    if image.mode in WIDE_MODES:
        # 16-bit grayscale (PNG) opens as I;16 or I; scale 0..65535 to 0..255.
        values = np.asarray(image, dtype=np.float64)
        eight = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(eight).convert("RGB")
    # Palette images may carry transparency; they go through RGBA so it is composited like alpha.
    if image.mode in ("P", "RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _as_sent(data: bytes, image: Image.Image, field: str) -> Upload | None:
    """The upload kept as a JPEG (module docstring), or None when it must be converted."""
    if image.format != "JPEG" or image.mode != "RGB" or image.getexif().get(0x0112) not in UPRIGHT:
        return None
    stripped = strip_metadata(data)
    if stripped is None:
        return None
    kept = Image.open(io.BytesIO(stripped), formats=["JPEG"])
    _decode(kept, field)  # the bytes that are stored are the bytes that were decoded
    if kept.size != image.size or kept.mode != "RGB":
        return None
    return Upload(stripped, kept.width, kept.height, "jpeg", "RGB", len(data), "jpeg")


def normalise(data: bytes, field: str, limits: ApiConfig) -> Upload:
    """Validate one uploaded file and return it as the engines' input (see the module docstring)."""
    image = _open(data, field, limits)
    source_format, source_mode = FORMATS[image.format], image.mode
    kept = _as_sent(data, image, field)
    if kept is not None:
        return kept
    _decode(image, field)
    image = ImageOps.exif_transpose(image)
    rgb = to_rgb(image)
    out = io.BytesIO()
    rgb.save(out, format="PNG", compress_level=3)  # fast: the images are stored, not archived
    return Upload(out.getvalue(), rgb.width, rgb.height, source_format, source_mode, len(data))


def accept(stream: IO[bytes], field: str, limits: ApiConfig) -> Upload:
    """Read and normalise one uploaded file, never reading more than the per-file limit + 1 bytes."""
    limit = limits.max_file_bytes
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"file is larger than the limit of {limit} bytes", field=field)
    if not data:
        raise BadRequest("file is empty", field=field)
    return normalise(data, field, limits)
