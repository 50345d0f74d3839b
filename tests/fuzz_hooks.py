"""Schemathesis hooks for the fuzz test (tests/test_api_fuzz.py): image parts are real images.

A JSON Schema cannot say "a decodable image". The OpenAPI document declares each file part's
media types (``encoding.contentType``: image/jpeg, image/png, image/webp); registering a strategy
for those media types makes schemathesis send real images in positive cases (negative cases still
send anything), so submissions succeed and the links of their 202 answers lead the job routes to
real ids. Undecodable, truncated and hostile files are the table of tests/test_api_validation.py.
"""

from __future__ import annotations

import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image


def _image(fmt: str, index: int) -> bytes:
    image = Image.new("RGB", (48, 32), ((40 * index) % 256, 90, 200))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


for _fmt, _media_type in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
    schemathesis.openapi.media_type(_media_type, st.sampled_from([_image(_fmt, i) for i in range(4)]))
