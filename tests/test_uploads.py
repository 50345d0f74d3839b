"""api.uploads: decoding, limits and normalisation of uploaded images (Pillow only, no services)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import imagefiles as files
import numpy as np
import pytest
from PIL import Image

from api.uploads import BadRequest, TooLarge, UnsupportedImage, accept, normalise
from stylequeue.errors import ValidationError


@dataclass(frozen=True)
class Limits:
    """The limits api.uploads reads from its ApiConfig."""

    max_file_bytes: int
    max_request_bytes: int
    max_pixels: int


LIMITS = Limits(max_file_bytes=200_000, max_request_bytes=500_000, max_pixels=40_000_000)


def pixels(upload) -> np.ndarray:
    image = Image.open(io.BytesIO(upload.data))
    assert image.format == upload.stored_format.upper() and image.mode == "RGB"
    return np.asarray(image)


@pytest.mark.parametrize(("fmt", "name"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp")])
def test_accepted_formats_become_rgb_png(fmt, name):
    upload = normalise(files.encode(files.rgb((30, 20)), fmt), "content", LIMITS)
    assert (upload.source_format, upload.width, upload.height) == (name, 30, 20)
    assert pixels(upload).shape == (20, 30, 3)


def test_exif_orientation_is_applied():
    upload = normalise(files.exif_rotated_jpeg(6), "content", LIMITS)
    assert (upload.width, upload.height) == (10, 20)  # 20x10 turned a quarter
    array = pixels(upload)
    # Orientation 6 means "rotate 90° clockwise to view": the red left half ends up on top.
    assert array[2, 5, 0] > 200 and array[2, 5, 2] < 60
    assert array[17, 5, 2] > 200 and array[17, 5, 0] < 60


def test_cmyk_jpeg_is_converted():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    upload = normalise(files.encode(cmyk, "JPEG", quality=95), "content", LIMITS)
    assert upload.source_mode == "CMYK"
    red, green, blue = pixels(upload)[8, 8].astype(int)
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_is_converted(mode):
    image = Image.new("L", (16, 16), 255 if mode == "1" else 90).convert(mode)
    upload = normalise(files.encode(image, "PNG"), "style", LIMITS)
    assert upload.source_mode == mode
    assert set(pixels(upload)[0, 0]) == {255 if mode == "1" else 90}


def test_alpha_is_composited_on_white():
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    image.paste((0, 128, 0, 255), (0, 0, 4, 8))
    array = pixels(normalise(files.encode(image, "PNG"), "style", LIMITS))
    assert tuple(array[4, 6]) == (255, 255, 255)  # transparent → white, not black
    assert tuple(array[4, 1]) == (0, 128, 0)


def test_palette_with_transparency_is_converted():
    image = Image.new("P", (8, 8), 0)
    image.putpalette([10, 20, 30] + [200, 100, 50] * 255)
    image.paste(1, (4, 0, 8, 8))
    data = files.encode(image, "PNG", transparency=0)
    upload = normalise(data, "style", LIMITS)
    array = pixels(upload)
    assert upload.source_mode == "P"
    assert tuple(array[0, 0]) == (255, 255, 255) and tuple(array[0, 7]) == (200, 100, 50)


def test_16_bit_grayscale_is_scaled_not_clipped():
    values = np.array([[0, 257 * 128, 65535, 1000]], dtype=np.uint16)
    upload = normalise(files.encode(Image.fromarray(values), "PNG"), "content", LIMITS)
    assert upload.source_mode.startswith("I")
    assert list(pixels(upload)[0, :, 0]) == [0, 128, 255, 4]


def test_16_bit_rgb_is_reduced_to_8_bit():
    upload = normalise(files.png16_rgb(value=(40000, 1000, 65535)), "content", LIMITS)
    assert tuple(int(v) for v in pixels(upload)[0, 0]) == pytest.approx((156, 4, 255), abs=1)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (files.encode(files.rgb(), "GIF"), UnsupportedImage, "not a JPEG, PNG or WebP"),
        (files.encode(files.rgb(), "BMP"), UnsupportedImage, "not a JPEG, PNG or WebP"),
        (b"hello, this is text", UnsupportedImage, "not a JPEG, PNG or WebP"),
        (files.noise_jpeg()[:2000], BadRequest, "truncated or corrupt"),
        (files.jpeg((64, 64))[:300], BadRequest, "cannot read the image header"),
        (files.png((64, 64))[:60], BadRequest, "truncated or corrupt"),
        (files.bomb_png(8000), TooLarge, "8000x8000 = 64000000 pixels; the limit is 40000000"),
        (files.bomb_png(20000), TooLarge, "too large"),
    ],
    ids=[
        "gif",
        "bmp",
        "text",
        "truncated-jpeg",
        "truncated-jpeg-header",
        "truncated-png",
        "bomb",
        "pillow-bomb",
    ],
)
def test_bad_files_are_refused_naming_the_field(data, error, message):
    with pytest.raises(error, match=message) as excinfo:
        normalise(data, "style", LIMITS)
    assert excinfo.value.field == "style"


def test_per_file_byte_limit_reads_no_more_than_the_limit_plus_one():
    stream = io.BytesIO(b"x" * 1_000_000)
    with pytest.raises(TooLarge, match="200000 bytes") as excinfo:
        accept(stream, "content", LIMITS)
    assert excinfo.value.field == "content"
    assert stream.tell() == LIMITS.max_file_bytes + 1


def test_empty_file_is_refused():
    with pytest.raises(BadRequest, match="empty"):
        accept(io.BytesIO(b""), "content", LIMITS)


@pytest.mark.parametrize("field", ["content", "style", "init_image"])
@pytest.mark.parametrize(("width", "height"), [(1_000_000, 1), (1, 1_000_000), (2049, 16)])
def test_shapes_thinner_than_128_to_1_are_refused_naming_the_field(field, width, height):
    data = files.raw_png(width, height, 8, 2)  # a few KB: within the byte and pixel limits
    with pytest.raises(ValidationError, match="128:1") as excinfo:
        accept(io.BytesIO(data), field, LIMITS)
    assert excinfo.value.field == field and excinfo.value.code == "invalid"


@pytest.mark.parametrize(("width", "height"), [(2048, 16), (16, 2048), (256, 2)])
def test_shapes_up_to_128_to_1_are_accepted(width, height):
    upload = normalise(files.raw_png(width, height, 8, 2), "content", LIMITS)
    assert (upload.width, upload.height) == (width, height)


# -- upright RGB JPEGs are kept as sent, without their metadata (api.jpeg) ----------------------


def jpeg_with_metadata(**options) -> bytes:
    """A noisy RGB JPEG carrying EXIF (a GPS block), an ICC profile and a comment, then junk."""
    image = Image.fromarray(np.random.default_rng(3).integers(0, 256, (24, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (52.0, 31.0, 0.0)}  # GPSInfo: latitude
    data = files.encode(image, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=b"ICCPROFILE" * 20,
                        comment=b"my home address", **options)  # fmt: skip
    return data + b"<script>trailing junk</script>"


@pytest.mark.parametrize("progressive", [False, True])
def test_an_upright_rgb_jpeg_is_kept_without_its_metadata_and_decodes_to_the_same_pixels(progressive):
    data = jpeg_with_metadata(progressive=progressive)
    upload = normalise(data, "content", LIMITS)
    assert (upload.stored_format, upload.media_type, upload.suffix) == ("jpeg", "image/jpeg", ".jpg")
    for secret in (b"Exif", b"SecretCam", b"ICC_PROFILE", b"my home address", b"<script>"):
        assert secret not in upload.data, secret
    assert upload.data.endswith(b"\xff\xd9") and len(upload.data) < len(data)
    original = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.array_equal(pixels(upload), original)


@pytest.mark.parametrize(
    "data",
    [files.exif_rotated_jpeg(6), files.encode(Image.new("L", (16, 16), 90), "JPEG")],
    ids=["rotated", "grayscale"],
)
def test_a_jpeg_that_needs_converting_becomes_a_png(data):
    upload = normalise(data, "content", LIMITS)
    assert (upload.stored_format, upload.media_type) == ("png", "image/png")


def test_strip_metadata_refuses_what_it_does_not_understand():
    from api.jpeg import strip_metadata

    good = files.jpeg()
    assert strip_metadata(good) is not None
    assert strip_metadata(b"not a jpeg") is None
    assert strip_metadata(good[:-2]) is None  # no end marker: truncated
    assert strip_metadata(good[:40]) is None  # a segment runs past the end
